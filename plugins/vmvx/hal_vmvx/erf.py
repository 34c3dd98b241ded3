"""erf with numpy alone (scipy is not a dependency): piecewise polynomials, evaluated in
cache-sized blocks with Horner's rule.

For |x| < split, erf(x) = x * P(u) with u = 2 x^2 / split^2 - 1; for split <= |x| <= top,
erf(|x|) = 1 - exp(-x^2) * Q(u) with u = (2 |x| - split - top) / (top - split), Q fitting
erfc(x) exp(x^2), which varies slowly; above ``top`` erf is 1 in the precision at hand. The
tables come from ``plugins/vmvx/tools/fit_erf.py`` (Chebyshev fits against mpmath). All is
computed in float64: float64 to a few ulp; float16 and float32 with shorter polynomials good
to 1e-9, then rounded once (at most 1e-7 relative for float32).
"""

from __future__ import annotations

import numpy as np

#: Elements per block: the dozen block-sized temporaries stay in L2.
BLOCK = 1 << 14

F64_SPLIT, F64_TOP = 2.0, 6.0
F64_P = (
        0.6749332360396553, -0.2611118609312454, 0.11947913860985643,
        -0.048662777449152955, 0.01712834457167548, -0.005234875836130938,
        0.0014050914248544253, -0.00033514353409794397, 7.180100372989949e-05,
        -1.3946270650500133e-05, 2.4758118123790275e-06, -4.0451733223531833e-07,
        6.1184717047125e-08, -8.607223027021764e-09, 1.1409086216951234e-09,
        -1.4718513222582614e-10, 1.5284673900786782e-11,
    )
F64_Q = (
        0.13699945762506147, -0.0647670121900276, 0.02986173297987585,
        -0.013449456615117025, 0.005925639505020723, -0.0025570841450112958,
        0.0010819615351223264, -0.0004493271746321421, 0.00018330783048204312,
        -7.352006829334152e-05, 2.901128968094484e-05, -1.1275119566019686e-05,
        4.315336263327757e-06, -1.6186296118414258e-06, 6.017612675185571e-07,
        -2.3276683144804274e-07, 8.460966630934683e-08, -2.0814956922111146e-08,
        7.23804482794197e-09, -6.730935323180586e-09, 2.3450363305481825e-09,
    )

F32_SPLIT, F32_TOP = 1.5, 4.0
F32_P = (
        0.8168361623440594, -0.2252525408646694, 0.06590919128170628,
        -0.01628759584429364, 0.0033830820209621226, -0.0006012978364255223,
        9.618421711812518e-05, -1.3099488088118102e-05,
    )
F32_Q = (
        0.19366209598834508, -0.07904706838145531, 0.03087282232102448,
        -0.011590079366027344, 0.004197958028497374, -0.0014738835977768923,
        0.0005014269616836183, -0.0001602365455786674, 5.139229870168002e-05,
        -2.1709481600159893e-05, 6.741138383600932e-06,
    )

_PLANS = {np.dtype(np.float64): (F64_SPLIT, F64_TOP, F64_P, F64_Q),
          np.dtype(np.float32): (F32_SPLIT, F32_TOP, F32_P, F32_Q)}


def _horner(coeffs, u: np.ndarray, r: np.ndarray) -> np.ndarray:
    r.fill(coeffs[-1])
    for c in coeffs[-2::-1]:
        np.multiply(r, u, out=r)
        np.add(r, c, out=r)
    return r


def _block(x: np.ndarray, out: np.ndarray, plan) -> None:
    split, top, p, q = plan
    a = np.abs(x)
    small = a < split
    n_small = np.count_nonzero(small)
    u, r = np.empty_like(a), np.empty_like(a)
    if n_small:
        np.multiply(a, a, out=u)
        np.multiply(u, 2 / (split * split), out=u)
        np.subtract(u, 1, out=u)
        np.multiply(_horner(p, u, r), a, out=r)  # x * P: odd, so the sign comes later
        if n_small == a.size:
            np.copysign(r, x, out=out)
            return
        res = r.copy()
    if n_small < a.size:
        # clamping at top keeps Q's argument in its range (and NaN stays NaN)
        np.minimum(a, top, out=a)
        np.multiply(a, 2 / (top - split), out=u)
        np.subtract(u, (split + top) / (top - split), out=u)
        _horner(q, u, r)
        np.multiply(a, a, out=u)
        np.negative(u, out=u)
        np.exp(u, out=u)
        np.multiply(r, u, out=r)
        np.subtract(1, r, out=r)
        if n_small:
            np.copyto(r, res, where=small)
    np.copysign(r, x, out=out)


def erf(x: np.ndarray, out: np.ndarray) -> None:
    """Write erf(x) into ``out`` (same shape; float16, float32 or float64)."""
    plan = _PLANS[np.dtype(np.float64) if x.dtype == np.float64 else np.dtype(np.float32)]
    flat_x = x.reshape(-1) if x.flags.c_contiguous else x.ravel()  # a copy if strided
    in_place = out.flags.c_contiguous
    flat_out = out.reshape(-1) if in_place else np.empty(flat_x.size, out.dtype)
    # Always computed in float64: for float32 the shorter polynomials then cost less than
    # scipy's erf and the result is rounded once (float32 arithmetic would add 2-3 ulp).
    wide = None if flat_out.dtype == np.float64 else np.empty(min(BLOCK, flat_x.size))
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        for b0 in range(0, flat_x.size, BLOCK):
            xb, ob = flat_x[b0:b0 + BLOCK], flat_out[b0:b0 + BLOCK]
            xb = xb if xb.dtype == np.float64 else xb.astype(np.float64)
            if wide is None:
                _block(xb, ob, plan)
            else:
                _block(xb, wide[:xb.size], plan)
                np.copyto(ob, wide[:xb.size], casting="unsafe")
    if not in_place:
        np.copyto(out, flat_out.reshape(out.shape))

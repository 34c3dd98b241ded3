"""Fit the polynomials of hal_vmvx.erf (run by hand; needs mpmath, not a dependency of hal).

erf(x) for 0 <= x < split is x * P(u), u = 2 x^2 / split^2 - 1; for split <= x <= top it is
1 - exp(-x^2) * Q(u), u = (2 x - split - top) / (top - split), where Q approximates the
scaled complementary error function erfc(x) exp(x^2), which is smooth and slowly varying. Both
are least-squares Chebyshev fits at Chebyshev nodes against 40-digit mpmath values, converted to
powers of u for Horner's rule. Above ``top`` erf rounds to 1 in the target precision.

    python plugins/vmvx/tools/fit_erf.py        # prints the tables and their measured error
"""

from __future__ import annotations

import mpmath
import numpy as np
from numpy.polynomial import chebyshev as C

mpmath.mp.dps = 40
#: precision -> (split, top, degree of P, degree of Q)
PLANS = {"float64": (2.0, 6.0, 16, 20), "float32": (1.5, 4.0, 7, 10)}


def _fit(f, lo: float, hi: float, degree: int, nodes: int = 2000) -> list[float]:
    u = np.cos(np.pi * (np.arange(nodes) + 0.5) / nodes)
    x = lo + (u + 1) * (hi - lo) / 2
    y = np.array([float(f(mpmath.mpf(float(v)))) for v in x])
    return [float(c) for c in C.cheb2poly(C.chebfit(u, y, degree))]


def _small(z):
    return mpmath.erf(mpmath.sqrt(z)) / mpmath.sqrt(z) if z else 2 / mpmath.sqrt(mpmath.pi)


def main() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    for name, (split, top, dp, dq) in PLANS.items():
        p = _fit(_small, 0.0, split * split, dp)
        q = _fit(lambda x: mpmath.erfc(x) * mpmath.exp(x * x), split, top, dq)
        print(f"{name}: split={split}, top={top}\n  P={p!r}\n  Q={q!r}")
    from hal_vmvx import erf as E

    for dt in (np.float64, np.float32):
        x = np.linspace(-7, 7, 40001).astype(dt)
        truth = np.array([float(mpmath.erf(mpmath.mpf(float(v)))) for v in x])
        got = np.empty_like(x)
        E.erf(x, got)
        ok = truth != 0
        print(np.dtype(dt).name, "max relative error",
              float(np.max(np.abs(got[ok].astype(np.float64) - truth[ok]) / np.abs(truth[ok]))))


if __name__ == "__main__":
    main()

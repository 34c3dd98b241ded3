"""hal_vmvx.erf (numpy only) against the C library's erf (math.erf) and through a kernel."""

from __future__ import annotations

import math

import numpy as np
import pytest
from harness import TILINGS, run, unary_kernel

from hal_vmvx import erf as E

_ERF = np.vectorize(math.erf, otypes=[np.float64])


def _points(dtype) -> np.ndarray:
    # dense over [-7, 7] (both pieces, the split and the top), the tails, tiny values
    dense = np.linspace(-7, 7, 30001)
    tiny = np.array([1e-300, 1e-30, 1e-8, 2.0 ** -60]) if dtype == np.float64 else \
        np.array([1e-30, 1e-8, 1e-40])
    pts = np.concatenate([dense, tiny, -tiny, np.geomspace(1e-6, 1, 500)])
    return pts.astype(dtype)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-15), (np.float32, 1e-7)])
def test_relative_accuracy(dtype, rtol):
    x = _points(dtype)
    got = np.empty_like(x)
    E.erf(x, got)
    want = _ERF(x.astype(np.float64))
    info = np.finfo(dtype)
    nz = np.abs(want) >= info.tiny  # subnormal results carry fewer digits
    sub = np.abs(got[~nz].astype(np.float64) - want[~nz])
    assert sub.max() <= 2 * float(info.smallest_subnormal)
    rel = np.abs(got[nz].astype(np.float64) - want[nz]) / np.abs(want[nz])
    assert rel.max() <= rtol, f"worst at x={x[nz][rel.argmax()]!r}: {rel.max():.3g}"
    assert np.all(np.abs(got) <= 1)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_special_values(dtype):
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 30, -30, 1e4], dtype)
    got = np.empty_like(x)
    E.erf(x, got)
    np.testing.assert_array_equal(got[2:4], [1, -1])
    assert np.isnan(got[4])
    np.testing.assert_array_equal(got[5:], [1, -1, 1])
    assert got[0] == 0 and not np.signbit(got[0]) and got[1] == 0 and np.signbit(got[1])


def test_float16_rounds_once_from_float32():
    x = np.linspace(-4, 4, 2001).astype(np.float16)
    got = np.empty_like(x)
    E.erf(x, got)
    np.testing.assert_array_equal(got, _ERF(x.astype(np.float64)).astype(np.float16))


def test_blocks_strides_and_scalars():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, E.BLOCK + 77)) * 2  # several blocks, a partial last one
    out = np.empty((3, 2 * (E.BLOCK + 77)))[:, ::2]  # a strided destination
    E.erf(x[:, ::-1], out)
    np.testing.assert_allclose(out, _ERF(x[:, ::-1]), rtol=1e-15, atol=1e-300)
    zero_d = np.empty((), np.float32)
    E.erf(np.array(0.5, np.float32), zero_d)
    assert zero_d == np.float32(math.erf(0.5))
    small = np.array([1.0, 2.5], np.float32)  # blocks wholly in one piece or the other
    for x in (small[:1], small[1:], np.zeros(0, np.float32)):
        got = np.empty_like(x)
        E.erf(x, got)
        np.testing.assert_allclose(got, _ERF(x), rtol=1.5e-7)


@pytest.mark.parametrize("tiling", TILINGS)
@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_erf_kernel(dtype, tiling):
    x = (np.random.default_rng(4).standard_normal((70, 1500)) * 2).astype(dtype)
    got = run(unary_kernel("erf", x.shape, dtype), {0: x}, {1: (x.shape, dtype)}, tiling)[1]
    want = _ERF(x.astype(np.float64))
    tol = {"float16": 1e-3, "float32": 1e-7, "float64": 1e-15}[dtype]
    np.testing.assert_allclose(got.astype(np.float64), want, rtol=tol, atol=tol * 1e-3)

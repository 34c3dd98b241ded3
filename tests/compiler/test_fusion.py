"""Fusion's reshape analysis: which reshapes only split dims, and the maps they give."""

from __future__ import annotations

import pytest

from hal_core.compiler.kernel_ir import AffineExpr, IndexingMap
from hal_core.compiler.passes.fusion import _split_map, split_groups


@pytest.mark.parametrize("old, new, groups", [
    ((4, 3), (2, 2, 3), [[0, 1], [2]]),
    ((6,), (2, 3), [[0, 1]]),
    ((6, 4), (1, 2, 3, 4), [[1, 2], [3]]),
    ((4,), (2, 1, 2), [[0, 2]]),
    ((1, 6), (6,), [[], [0]]),
    ((), (1, 1), []),
    ((2, 3), (3, 2), None),      # regrouping
    ((2, 3), (6,), None),        # merge
    ((6, 4), (2, 12), None),     # split and merge
    ((0, 2), (0, 1, 2), None),   # empty
])
def test_split_groups(old, new, groups) -> None:
    assert split_groups(old, new) == groups


def test_split_map_weights_each_group_by_row_major_strides() -> None:
    # (6, 4) -> (2, 3, 4) read at identity: old0 = 3*p0 + p1, old1 = p2
    m = _split_map(IndexingMap.identity(3), [[0, 1], [2]], (2, 3, 4))
    assert m == IndexingMap(3, (AffineExpr((3, 1, 0)), AffineExpr((0, 0, 1))))
    # composed with an offset read of the new dims, the constants are weighted the same way
    shifted = IndexingMap(3, tuple(AffineExpr.dim(d, 3, 1, 1) for d in range(3)))
    assert _split_map(shifted, [[0, 1], [2]], (2, 3, 4)).exprs[0] == AffineExpr((3, 1, 0), 4)

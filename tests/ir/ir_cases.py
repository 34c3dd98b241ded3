"""One case per op configuration: operand types, attributes, and a hand-written numpy reference.

Shared by the round-trip and reference-evaluator tests so that every op is covered by both.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Case:
    op: str
    inputs: list[tuple[tuple[int, ...], str]]
    attrs: dict[str, Any] = field(default_factory=dict)
    ref: Callable[..., np.ndarray] | None = None
    positive: bool = False          # draw strictly positive floats (log, sqrt, pow)
    data: list[np.ndarray] | None = None  # fixed inputs instead of random ones

    @property
    def id(self) -> str:
        sig = ",".join("x".join(map(str, s)) + d for s, d in self.inputs)
        extra = ",".join(f"{k}={v}" for k, v in self.attrs.items() if k != "value")
        return f"{self.op}[{sig}{';' + extra if extra else ''}]"

    def make_inputs(self, rng: np.random.Generator) -> list[np.ndarray]:
        if self.data is not None:
            return self.data
        out = []
        for shape, dtype in self.inputs:
            npd = {"f16": "float16", "f32": "float32", "f64": "float64", "i1": "bool",
                   "u8": "uint8"}.get(dtype, "int" + dtype[1:])
            if dtype == "i1":
                a = rng.random(shape) < 0.5
            elif dtype[0] == "f":
                a = rng.standard_normal(shape) * 2
                if self.positive:
                    a = np.abs(a) + 0.1
            elif dtype[0] == "u":
                a = rng.integers(0, 10, shape)
            else:
                a = rng.integers(-6, 7, shape)
                if self.positive:
                    a = np.abs(a) + 1
            out.append(np.asarray(a).astype(npd))
        return out


def naive_conv2d(x, w, b=None, strides=(1, 1), padding=(0, 0, 0, 0), dilations=(1, 1),
                 groups=1):
    x, w = x.astype(np.float64), w.astype(np.float64)
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    oh = (h + padding[0] + padding[2] - dilations[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (wd + padding[1] + padding[3] - dilations[1] * (kw - 1) - 1) // strides[1] + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for ni in range(n):
        for oi in range(o):
            g = oi // og
            for y in range(oh):
                for z in range(ow):
                    acc = 0.0
                    for ci in range(cg):
                        for i in range(kh):
                            for j in range(kw):
                                yy = y * strides[0] - padding[0] + i * dilations[0]
                                zz = z * strides[1] - padding[1] + j * dilations[1]
                                if 0 <= yy < h and 0 <= zz < wd:
                                    acc += x[ni, g * cg + ci, yy, zz] * w[oi, ci, i, j]
                    out[ni, oi, y, z] = acc + (b[oi] if b is not None else 0.0)
    return out


def _pool_len(size, k, s, lo, hi, ceil_mode):
    span = size + lo + hi - k
    out = (math.ceil(span / s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= size + lo:
        out -= 1
    return out


def naive_pool(x, kernel, strides=(1, 1), padding=(0, 0, 0, 0), ceil_mode=False,
               count_include_pad=False, kind="max"):
    n, c, h, w = x.shape
    oh = _pool_len(h, kernel[0], strides[0], padding[0], padding[2], ceil_mode)
    ow = _pool_len(w, kernel[1], strides[1], padding[1], padding[3], ceil_mode)
    out = np.zeros((n, c, oh, ow))
    for y in range(oh):
        for z in range(ow):
            y0, z0 = y * strides[0] - padding[0], z * strides[1] - padding[1]
            y1 = min(y0 + kernel[0], h + padding[2])
            z1 = min(z0 + kernel[1], w + padding[3])
            area = (y1 - y0) * (z1 - z0)
            ys, zs = max(y0, 0), max(z0, 0)
            ye, ze = min(y1, h), min(z1, w)
            win = x[:, :, ys:ye, zs:ze].astype(np.float64)
            if kind == "max":
                out[:, :, y, z] = win.max(axis=(2, 3))
            else:
                div = area if count_include_pad else (ye - ys) * (ze - zs)
                out[:, :, y, z] = win.sum(axis=(2, 3)) / div
    return out


def _softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


F = "f32"
_erf = np.vectorize(math.erf)

CASES: list[Case] = [
    Case("add", [((3, 4), F), ((4,), F)], ref=np.add),
    Case("add", [((2, 1, 3), "i32"), ((4, 1), "i32")], ref=np.add),
    Case("sub", [((2, 3), "f64"), ((), "f64")], ref=np.subtract),
    Case("mul", [((4, 4), "f16"), ((4, 1), "f16")], ref=np.multiply),
    Case("mul", [((5,), "u8"), ((5,), "u8")], ref=np.multiply),
    Case("div", [((3, 3), F), ((3, 3), F)], ref=np.divide, positive=True),
    Case("div", [((6,), "i32"), ((6,), "i32")], ref=lambda a, b: np.array([2, -2, -2, 2, 0, 0]),
         data=[np.array([7, -7, 7, -7, 0, 5], np.int32), np.array([3, 3, -3, -3, 1, 0], np.int32)]),
    Case("pow", [((2, 3), F), ((3,), F)], ref=np.power, positive=True),
    Case("maximum", [((2, 3), F), ((2, 1), F)], ref=np.maximum),
    Case("minimum", [((2, 3), "i8"), ((3,), "i8")], ref=np.minimum),
    Case("eq", [((3, 3), "i32"), ((3,), "i32")], ref=np.equal),
    Case("ne", [((4,), "i1"), ((4,), "i1")], ref=np.not_equal),
    Case("lt", [((2, 2), F), ((2, 2), F)], ref=np.less),
    Case("le", [((2, 2), "i64"), ((2, 2), "i64")], ref=np.less_equal),
    Case("gt", [((2, 2), F), ((), F)], ref=np.greater),
    Case("ge", [((2, 2), "u8"), ((2, 2), "u8")], ref=np.greater_equal),
    Case("logical_and", [((3, 2), "i1"), ((2,), "i1")], ref=np.logical_and),
    Case("logical_or", [((3, 2), "i1"), ((3, 2), "i1")], ref=np.logical_or),
    Case("logical_xor", [((3, 2), "i1"), ((3, 2), "i1")], ref=np.logical_xor),
    Case("logical_not", [((3, 2), "i1")], ref=np.logical_not),
    Case("exp", [((2, 3), F)], ref=np.exp),
    Case("log", [((2, 3), F)], ref=np.log, positive=True),
    Case("sqrt", [((2, 3), "f64")], ref=np.sqrt, positive=True),
    Case("rsqrt", [((2, 3), F)], ref=lambda a: 1 / np.sqrt(a), positive=True),
    Case("tanh", [((2, 3), F)], ref=np.tanh),
    Case("sigmoid", [((2, 3), F)], ref=lambda a: 1 / (1 + np.exp(-a.astype(np.float64)))),
    Case("erf", [((2, 3), F)], ref=_erf),
    Case("erf", [((3,), "f64")], ref=lambda a: np.array([0.0, 0.8427007929497149,
                                                          -0.9953222650189527]),
         data=[np.array([0.0, 1.0, -2.0])]),
    Case("floor", [((5,), F)], ref=np.floor),
    Case("ceil", [((5,), F)], ref=np.ceil),
    Case("round", [((4,), F)], ref=lambda a: np.array([0.0, 2.0, -2.0, 4.0]),
         data=[np.array([0.5, 1.5, -2.5, 3.7], np.float32)]),
    Case("neg", [((3,), "i8")], ref=np.negative),
    Case("abs", [((3, 2), F)], ref=np.abs),
    Case("relu", [((3, 2), F)], ref=lambda a: np.where(a > 0, a, 0)),
    Case("relu", [((6,), "i32")], ref=lambda a: np.where(a > 0, a, 0)),
    Case("clip", [((8,), F)], {"min": -1.0, "max": 0.5}, ref=lambda a: np.clip(a, -1, 0.5)),
    Case("clip", [((8,), "i8")], {"min": -2.5}, ref=lambda a: np.maximum(a, -2)),
    Case("cast", [((3, 2), F)], {"to": "i32"}, ref=lambda a: a.astype(np.int32)),
    Case("cast", [((3, 2), "i32")], {"to": "f16"}, ref=lambda a: a.astype(np.float16)),
    Case("cast", [((3, 2), F)], {"to": "i1"}, ref=lambda a: a != 0),
    Case("select", [((2, 3), "i1"), ((2, 3), F), ((3,), F)], ref=np.where),
    Case("reduce_sum", [((3, 4, 5), F)], {"axes": (1,)}, ref=lambda a: a.sum(1)),
    Case("reduce_sum", [((3, 4), "i32")], {"axes": (0, 1), "keepdims": True},
         ref=lambda a: a.sum(keepdims=True)),
    Case("reduce_prod", [((3, 4), F)], {"axes": (-1,)}, ref=lambda a: a.prod(-1)),
    Case("reduce_max", [((3, 4), F)], {"axes": (0,), "keepdims": True},
         ref=lambda a: a.max(0, keepdims=True)),
    Case("reduce_min", [((3, 4), "i16")], {"axes": (1,)}, ref=lambda a: a.min(1)),
    Case("reduce_mean", [((2, 3, 4), F)], {"axes": (0, 2)}, ref=lambda a: a.mean((0, 2))),
    Case("argmax", [((3, 5), F)], {"axis": 1}, ref=lambda a: a.argmax(1)),
    Case("argmin", [((3, 5), "i32")], {"axis": 0, "keepdims": True},
         ref=lambda a: a.argmin(0, keepdims=True)),
    Case("softmax", [((2, 5), F)], ref=lambda a: _softmax(a.astype(np.float64), -1)),
    Case("softmax", [((4, 3), F)], {"axis": 0}, ref=lambda a: _softmax(a.astype(np.float64), 0)),
    Case("log_softmax", [((2, 5), F)], ref=lambda a: np.log(_softmax(a.astype(np.float64), -1))),
    Case("matmul", [((3, 4), F), ((4, 5), F)], ref=np.matmul),
    Case("matmul", [((2, 1, 3, 4), F), ((5, 4, 6), F)], ref=np.matmul),
    Case("matmul", [((4, 3), F), ((5, 4), F)], {"transpose_a": True, "transpose_b": True},
         ref=lambda a, b: a.T @ b.T),
    Case("matmul", [((2, 3), "i32"), ((3, 2), "i32")], ref=np.matmul),
    Case("conv2d", [((1, 3, 6, 6), F), ((4, 3, 3, 3), F)], ref=naive_conv2d),
    Case("conv2d", [((2, 4, 7, 6), F), ((6, 2, 3, 2), F), ((6,), F)],
         {"strides": (2, 1), "padding": (1, 0, 2, 1), "dilations": (1, 2), "groups": 2},
         ref=lambda x, w, b: naive_conv2d(x, w, b, (2, 1), (1, 0, 2, 1), (1, 2), 2)),
    Case("conv2d", [((1, 3, 5, 5), F), ((3, 1, 3, 3), F)], {"padding": (1, 1, 1, 1), "groups": 3},
         ref=lambda x, w: naive_conv2d(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 3)),
    Case("max_pool2d", [((1, 2, 6, 6), F)], {"kernel": (2, 2), "strides": (2, 2)},
         ref=lambda x: naive_pool(x, (2, 2), (2, 2))),
    Case("max_pool2d", [((1, 2, 7, 5), "i32")],
         {"kernel": (3, 2), "strides": (2, 2), "padding": (1, 1, 1, 0), "ceil_mode": True},
         ref=lambda x: naive_pool(x, (3, 2), (2, 2), (1, 1, 1, 0), True)),
    Case("avg_pool2d", [((1, 2, 7, 7), F)],
         {"kernel": (3, 3), "strides": (2, 2), "padding": (1, 1, 1, 1), "ceil_mode": True},
         ref=lambda x: naive_pool(x, (3, 3), (2, 2), (1, 1, 1, 1), True, kind="avg")),
    Case("avg_pool2d", [((2, 1, 6, 5), F)],
         {"kernel": (3, 3), "strides": (2, 2), "padding": (1, 1, 1, 1), "ceil_mode": True,
          "count_include_pad": True},
         ref=lambda x: naive_pool(x, (3, 3), (2, 2), (1, 1, 1, 1), True, True, kind="avg")),
    Case("global_max_pool2d", [((2, 3, 4, 5), F)], ref=lambda x: x.max((2, 3), keepdims=True)),
    Case("global_avg_pool2d", [((2, 3, 4, 5), F)], ref=lambda x: x.mean((2, 3), keepdims=True)),
    Case("transpose", [((2, 3, 4), F)], {"perm": (2, 0, 1)}, ref=lambda x: x.transpose(2, 0, 1)),
    Case("reshape", [((2, 3, 4), "i64")], {"shape": (4, 6)}, ref=lambda x: x.reshape(4, 6)),
    Case("expand", [((3, 1), F)], {"shape": (2, 3, 4)},
         ref=lambda x: np.broadcast_to(x, (2, 3, 4))),
    Case("concat", [((2, 3), F), ((2, 1), F), ((2, 2), F)], {"axis": 1},
         ref=lambda *xs: np.concatenate(xs, 1)),
    Case("slice", [((6, 5), F)], {"starts": (1, 0), "ends": (5, 5), "steps": (2, 1)},
         ref=lambda x: x[1:5:2, 0:5]),
    Case("slice", [((6, 5), F)], {"starts": (-1, 4), "ends": (-7, 0), "steps": (-2, -1)},
         ref=lambda x: x[::-2, 4:0:-1]),
    Case("pad", [((2, 3), F)], {"low": (1, 0), "high": (0, 2), "value": 1.5},
         ref=lambda x: np.pad(x, ((1, 0), (0, 2)), constant_values=1.5)),
    Case("gather", [((5, 3), F), ((2, 2), "i32")], {"axis": 0},
         ref=lambda x, i: np.take(x, i, 0),
         data=[np.arange(15, dtype=np.float32).reshape(5, 3), np.array([[0, 4], [-1, 2]], np.int32)]),
    Case("gather", [((2, 4), "i8"), ((3,), "i64")], {"axis": 1}, ref=lambda x, i: np.take(x, i, 1),
         data=[np.arange(8, dtype=np.int8).reshape(2, 4), np.array([3, 0, 3])]),
    Case("constant", [], {"value": np.arange(6, dtype=np.float32).reshape(2, 3)},
         ref=lambda: np.arange(6, dtype=np.float32).reshape(2, 3)),
    Case("constant", [], {"value": np.full((3, 2), 7, np.int16)},
         ref=lambda: np.full((3, 2), 7, np.int16)),
    Case("constant", [], {"value": np.array([True, False])}, ref=lambda: np.array([True, False])),
]

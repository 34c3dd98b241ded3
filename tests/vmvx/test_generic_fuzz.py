"""Random generic kernels (maps with transposes, broadcasts, steps, offsets, reversed dims;
parallel and reduction iterators; zero- and one-sized dims) run by vmvx against a direct
point-by-point evaluation of kernel IR's definition with numpy fancy indexing."""

from __future__ import annotations

from unittest import mock

import numpy as np
from hal_vmvx import lowering
from harness import TILINGS, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hal_core.compiler import kernel_ir as K

_OPS = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "max": np.maximum,
        "min": np.minimum}
_UNARY = {"neg": np.negative, "abs": np.abs}
_REDUCE = {"sum": np.add, "prod": np.multiply, "max": np.maximum, "min": np.minimum}
_INIT = {"sum": 0, "prod": 1, "max": np.iinfo(np.int64).min, "min": np.iinfo(np.int64).max}


def _coords(m: K.IndexingMap, idx: np.ndarray) -> tuple:
    return tuple(e.constant + sum(c * idx[i] for i, c in enumerate(e.coeffs)) for e in m.exprs)


def reference(k: K.GenericKernel, arrays: dict[int, np.ndarray],
              outs: dict[int, np.ndarray]) -> None:
    """Evaluate ``k`` straight from its definition (int64 data), writing into ``outs``."""
    idx = np.indices(k.iteration_space) if k.iteration_space else np.zeros((0,), np.int64)
    shape = tuple(k.iteration_space)
    vals: list[np.ndarray] = []

    def get(ref):
        if isinstance(ref, K.Input):
            m = k.inputs[ref.index]
            a = arrays[m.operand.binding]
            return np.broadcast_to(a[_coords(m.map, idx)], shape)
        if isinstance(ref, K.Result):
            return vals[ref.index]
        if isinstance(ref, K.Const):
            return np.full(shape, ref.value, np.int64)
        return idx[ref.dim]

    for op in k.body:
        args = [get(a) for a in op.args]
        fn = _OPS.get(op.opcode) or _UNARY[op.opcode]
        vals.append(np.asarray(fn(*args), np.int64))
    for y, m, comb in zip(k.yields, k.outputs, k.combiners or (None,) * len(k.outputs)):
        out = outs[m.operand.binding]
        v = np.broadcast_to(get(y), shape)
        where = _coords(m.map, idx)
        if comb is None:
            out[where] = v
            continue
        # Every element the map reaches from the parallel dims starts at the identity (so an
        # empty reduction leaves the identity there), then takes each point's yield.
        pshape = tuple(n if t == "parallel" else 1 for n, t in zip(shape, k.iterator_types))
        out[_coords(m.map, np.indices(pshape))] = _INIT[comb]
        if out.ndim == 0:
            out[()] = _REDUCE[comb].reduce(v.ravel(), initial=out[()])
        else:
            _REDUCE[comb].at(out, tuple(np.broadcast_to(w, shape) for w in where), v)


@st.composite
def kernels(draw):
    nd = draw(st.integers(1, 3))
    space = tuple(draw(st.sampled_from([0, 1, 1, 2, 3, 4, 5])) for _ in range(nd))
    kinds = tuple(draw(st.sampled_from(["parallel", "parallel", "reduction"])) for _ in space)
    inputs = []
    for b in range(draw(st.integers(1, 3))):
        exprs, shape = [], []
        dims = draw(st.permutations(range(nd)))[:draw(st.integers(0, nd))]
        for d in dims:
            n = space[d]
            kind = draw(st.sampled_from(["id", "rev", "step", "off"]))
            coeff = {"id": 1, "rev": -1, "step": 2, "off": 1}[kind]
            off = draw(st.integers(0, 2)) if kind in ("step", "off") else 0
            const = off + (max(n - 1, 0) if kind == "rev" else 0)
            exprs.append(K.AffineExpr.dim(d, nd, coeff, const))
            span = abs(coeff) * max(n - 1, 0) + 1 + off
            shape.append(span + draw(st.integers(0, 1)))
        if draw(st.booleans()):  # a broadcast (size-1) operand dim
            pos = draw(st.integers(0, len(exprs)))
            exprs.insert(pos, K.AffineExpr.const(0, nd))
            shape.insert(pos, 1)
        op = K.KernelOperand(b, tuple(shape), "int64")
        inputs.append(K.MappedOperand(op, K.IndexingMap(nd, tuple(exprs))))
    body, n_vals = [], 0
    for _ in range(draw(st.integers(1, 4))):
        refs = [K.Input(i) for i in range(len(inputs))] + [K.Result(j) for j in range(n_vals)]
        refs += [K.Const(draw(st.integers(-3, 3)), "int64"), K.IterIndex(draw(
            st.integers(0, nd - 1)))]
        if draw(st.booleans()):
            opcode = draw(st.sampled_from(sorted(_UNARY)))
            args = (draw(st.sampled_from(refs)),)
        else:
            opcode = draw(st.sampled_from(sorted(_OPS)))
            args = (draw(st.sampled_from(refs)), draw(st.sampled_from(refs)))
        body.append(K.ScalarOp(opcode, args, "int64"))
        n_vals += 1
    par = [d for d in range(nd) if kinds[d] == "parallel"]
    order = draw(st.permutations(par))
    window = draw(st.integers(0, 2))
    out_exprs = tuple(K.AffineExpr.dim(d, nd, 1, window) for d in order)
    out_shape = tuple(space[d] + 2 * window for d in order)
    out = K.MappedOperand(K.KernelOperand(len(inputs), out_shape, "int64"),
                          K.IndexingMap(nd, out_exprs))
    red = len(par) < nd
    comb = (draw(st.sampled_from(sorted(_REDUCE))),) if red else ()
    yields = (draw(st.sampled_from([K.Result(n_vals - 1), K.Input(0)])),)
    if red and comb[0] == "prod":  # keep products small enough not to wrap differently
        body = [K.ScalarOp("max", (K.Input(0), K.Const(-2, "int64")), "int64"),
                K.ScalarOp("min", (K.Result(0), K.Const(2, "int64")), "int64")]
        yields = (K.Result(1),)
    return K.GenericKernel("fuzz", space, kinds, tuple(inputs), (out,), tuple(body), yields,
                           comb)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kernels(), st.sampled_from(TILINGS), st.integers(0, 2**31), st.booleans())
def test_random_generic_kernels_match_the_definition(kernel, tiling, seed, tiny_chunks):
    K.validate(kernel)
    rng = np.random.default_rng(seed)
    arrays = {m.operand.binding: rng.integers(-9, 9, m.operand.shape).astype(np.int64)
              for m in kernel.inputs}
    out = kernel.outputs[0].operand
    # Tiny chunks and workgroups make these small kernels take every tiling path.
    sizes = {"CHUNK_ELEMENTS": 4, "WORKGROUP_ELEMENTS": 2} if tiny_chunks else {
        "CHUNK_ELEMENTS": lowering.CHUNK_ELEMENTS}
    with mock.patch.multiple(lowering, **sizes):
        got = run(kernel, arrays, {out.binding: (out.shape, "int64")}, tiling)[out.binding]
    want = np.frombuffer(np.full(out.byte_size, 0xAB, np.uint8).tobytes(),
                         np.int64).reshape(out.shape).copy()
    reference(kernel, arrays, {out.binding: want})
    np.testing.assert_array_equal(got, want)

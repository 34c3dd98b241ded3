"""The dispatch ABI promises non-overlapping bindings per dispatch; host emission checks it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from compiler_support import build

from hal_core.compiler.passes.host import emit_program
from hal_core.compiler.pipeline import compile
from hal_core.errors import CompileError
from hal_core.ir import ops as O
from hal_core.module.model import BufferRef, Dispatch, Slot


def _emit(refs, writes):
    values = [SimpleNamespace(name=f"v{i}") for i in range(len(refs))]
    step = SimpleNamespace(kernel=SimpleNamespace(name="k"), buffers=values,
                           writes=frozenset(writes), window=None)
    plan = SimpleNamespace(refs={v.name: r for v, r in zip(values, refs)}, copies=[], scratch={})
    return emit_program(SimpleNamespace(steps=[step]), plan, [(0, 0)])


def test_a_written_binding_overlapping_another_is_refused():
    a = BufferRef(Slot.TRANSIENT, 0, 0, 128)
    b = BufferRef(Slot.TRANSIENT, 0, 64, 128)
    with pytest.raises(CompileError, match="bindings 0 and 1 of the dispatch of kernel 'k' "
                                           "overlap"):
        _emit([a, b], writes={1})


def test_disjoint_or_read_only_sharing_is_fine():
    a = BufferRef(Slot.TRANSIENT, 0, 0, 64)
    b = BufferRef(Slot.TRANSIENT, 0, 64, 64)
    c = BufferRef(Slot.CONSTANT, 0, 0, 64)
    (op,) = _emit([a, b], writes={1})
    assert isinstance(op, Dispatch) and op.executable == 0
    _emit([c, c, b], writes={2})  # one constant read twice: no write overlaps it


def test_compiled_programs_keep_bindings_apart():
    # Transient space reused by liveness, a concat writing windows of one buffer, epilogues.
    def prog(a, b):
        t = O.exp(a) + 1.0
        u = O.concat([t, O.sum(t, axis=1, keepdims=True)], axis=1)
        return O.matmul(u, b) * 2.0, O.relu(t - a)

    m = compile(build(prog, ((4, 6), "float32"), ((7, 3), "float32")))
    for op in m.functions[0].program:
        if isinstance(op, Dispatch):
            refs = op.bindings
            for i, x in enumerate(refs):
                for y in refs[i + 1:]:
                    same = (x.slot, x.index) == (y.slot, y.index)
                    assert not (same and x.offset < y.offset + y.length
                                and y.offset < x.offset + x.length) or x == y


def test_a_binding_offset_off_the_abi_alignment_is_refused():
    a = BufferRef(Slot.TRANSIENT, 0, 32, 64)
    b = BufferRef(Slot.OUTPUT, 0, 0, 64)
    with pytest.raises(CompileError, match="binding 0 of the dispatch of kernel 'k' starts at "
                                           "offset 32"):
        _emit([a, b], writes={1})

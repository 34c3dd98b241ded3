"""Host programs: every hazard is separated by a barrier, and every barrier guards a hazard."""

from __future__ import annotations

import numpy as np
import pytest
from compiler_support import build

from hal_core.compiler.passes.buffers import ConstantPool, plan_buffers
from hal_core.compiler.passes.dispatch import form_dispatches
from hal_core.compiler.passes.folding import fold_constants
from hal_core.compiler.passes.fusion import plan_fusion
from hal_core.compiler.passes.host import emit_program
from hal_core.ir import ops as O
from hal_core.module.model import Barrier, Copy, Dispatch

F = "float32"


def _mlp(x, w1, w2):
    h = O.relu(O.matmul(x, w1))
    return O.softmax(O.matmul(h, w2)), O.sum(h, axis=0)


def _diamond(x):
    a = O.matmul(x, x)
    b = O.matmul(a, x)
    c = O.matmul(a, a)
    return O.concat([O.pad(b, (1, 0), (0, 0)), O.pad(c, (0, 0), (1, 0))], 1)


def _many_transients(x):
    ys = [O.matmul(x, x)]
    for _ in range(5):
        ys.append(O.matmul(ys[-1], x) + ys[0])
    return ys[-1], ys[2]


PROGRAMS = {
    "mlp": (_mlp, ((2, 4), F), ((4, 8), F), ((8, 3), F)),
    "diamond": (_diamond, ((3, 3), F)),
    "transients": (_many_transients, ((4, 4), F)),
    "concat-copies": (lambda x: (x, O.concat([x, O.exp(x), x], 0), x), ((2, 2), F)),
    "reshape-chain": (lambda x: O.reshape(O.matmul(O.reshape(x, (2, 6)), O.reshape(x, (6, 2))),
                                          (4,)), ((3, 4), F)),
}


def _lower(fn_spec):
    fn, *specs = fn_spec
    ir = fold_constants(build(fn, *specs)).functions[0]
    fd = form_dispatches(ir, plan_fusion(ir))
    bplan = plan_buffers(fd, ConstantPool())
    program = emit_program(fd, bplan, list(range(len(fd.steps))))
    access = []  # per host command: (reads, writes, window)
    steps = iter(fd.steps)
    for op in program:
        if isinstance(op, Dispatch):
            step = next(steps)
            refs = [bplan.refs[v.name] for v in step.buffers]
            access.append(([r for b, r in enumerate(refs) if b not in step.writes],
                           [r for b, r in enumerate(refs) if b in step.writes], step.window))
        elif isinstance(op, Copy):
            access.append(([op.source], [op.target], None))
        else:
            access.append(None)
    return program, access, bplan


def _overlap(a, b) -> bool:
    return (a.slot, a.index) == (b.slot, b.index) and a.length and b.length and \
        a.offset < b.offset + b.length and b.offset < a.offset + a.length


def _conflict(first, second) -> bool:
    r1, w1, win1 = first
    r2, w2, win2 = second
    waw = any(_overlap(a, b) for a in w1 for b in w2) and (win1 is None or win1 != win2)
    return waw or any(_overlap(a, b) for a in w1 for b in r2) or \
        any(_overlap(a, b) for a in r1 for b in w2)


@pytest.mark.parametrize("name", PROGRAMS)
def test_hazards_and_barriers(name: str) -> None:
    program, access, _ = _lower(PROGRAMS[name])
    barriers = [i for i, op in enumerate(program) if isinstance(op, Barrier)]
    for j, acc_j in enumerate(access):
        for i in range(j):
            if access[i] is None or acc_j is None:
                continue
            if not any(i < b < j for b in barriers) and _conflict(access[i], acc_j):
                pytest.fail(f"{name}: commands {i} and {j} conflict with no barrier between")
    for k, b in enumerate(barriers):  # each barrier is needed by some later command
        lo = barriers[k - 1] if k else -1
        hi = barriers[k + 1] if k + 1 < len(barriers) else len(program)
        before = [a for a in access[lo + 1:b] if a is not None]
        after = [a for a in access[b + 1:hi] if a is not None]
        assert any(_conflict(x, y) for x in before for y in after), \
            f"{name}: barrier at {b} separates no conflicting commands"
    assert not isinstance(program[0], Barrier) and not isinstance(program[-1], Barrier)


def test_transients_never_share_space_while_both_alive() -> None:
    for name, spec in PROGRAMS.items():
        _, _, bplan = _lower(spec)
        items = [(bplan.refs[n], life) for n, life in bplan.lifetimes.items()]
        for i, (ra, la) in enumerate(items):
            assert ra.offset % 64 == 0
            assert ra.offset + ra.length <= bplan.transient_size
            for rb, lb in items[i + 1:]:
                alive_together = not (la[1] < lb[0] or lb[1] < la[0])
                assert not (alive_together and _overlap(ra, rb)), name
    _, _, bplan = _lower(PROGRAMS["transients"])
    total = sum(bplan.refs[n].length for n in bplan.lifetimes)
    assert bplan.transient_size < total  # space was reused
    assert np.isfinite(bplan.transient_size)

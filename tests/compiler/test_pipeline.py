"""The compiler pipeline: module structure, buffer planning, barriers, copies, variants."""

from __future__ import annotations

import numpy as np
import pytest
from compiler_support import build, kinds

import hal_core
from hal_core.compiler import kernel_ir as K
from hal_core.compiler.pipeline import compile, compile_ir
from hal_core.errors import CompileError, OptionError, UsageError
from hal_core.ir import ops as O
from hal_core.module.model import BufferRef, Copy, Dispatch, ExecutionModel, Slot

F32 = "float32"


def run(module, *args, device="local-sync"):
    loaded = hal_core.load_module(module, device=device)
    try:
        return loaded.main(*args)
    finally:
        loaded.close()


def test_compile_returns_a_module_with_one_vmvx_variant() -> None:
    m = compile(build(lambda a, b: a + b, ((4,), F32), ((4,), F32)))
    assert m.execution_model is ExecutionModel.ASYNC
    (exe,) = m.executables
    (variant,) = exe.variants
    assert variant.target_backend == "vmvx" and variant.format == "vmvx-bytecode"
    fn = m.functions[0]
    assert [t.shape for t in fn.inputs] == [(4,), (4,)] and fn.outputs[0].dtype == F32
    (d,) = fn.program
    assert d.bindings == (BufferRef(Slot.INPUT, 0, 0, 16), BufferRef(Slot.INPUT, 1, 0, 16),
                          BufferRef(Slot.OUTPUT, 0, 0, 16))


def test_hal_core_compile_is_the_pipeline_and_accepts_text_and_paths(tmp_path) -> None:
    text = ("func.func @main(%a: tensor<3xf32>) -> tensor<3xf32> {\n"
            "  %0 = exp %a\n  return %0 : tensor<3xf32>\n}\n")
    path = tmp_path / "prog.mlir"
    path.write_text(text)
    out = tmp_path / "prog.halm"
    m1 = hal_core.compile(text)
    m2 = hal_core.compile(path, output=out)
    assert m2.name == "prog" and out.stat().st_size > 0
    x = np.array([0.0, 1.0, -1.0], np.float32)
    np.testing.assert_allclose(run(m1, x), np.exp(x), rtol=1e-6)
    np.testing.assert_allclose(run(str(out), x), np.exp(x), rtol=1e-6)


def test_inline_execution_model_runs_the_same_host_program() -> None:
    ir = build(lambda a: O.relu(O.matmul(a, a)) + 1.0, ((3, 3), F32))
    sync, inline = compile(ir), compile(ir, execution_model="inline")
    assert inline.execution_model is ExecutionModel.INLINE
    assert inline.functions == sync.functions
    x = np.arange(9, dtype=np.float32).reshape(3, 3) - 4
    np.testing.assert_allclose(run(inline, x), np.maximum(x @ x, 0) + 1, rtol=1e-6)


def test_unknown_target_and_execution_model_are_usage_errors() -> None:
    ir = build(lambda a: -a, ((2,), F32))
    with pytest.raises(UsageError, match="did you mean 'vmvx'"):
        compile(ir, target_backends=("vmxv",))
    with pytest.raises(UsageError, match="execution model"):
        compile(ir, execution_model="eager")
    with pytest.raises(UsageError, match="no target backend"):
        compile(ir, target_backends=())
    with pytest.raises(UsageError, match="not among the requested"):
        compile(ir, target_options={"llvm-cpu": {"cpu": "x"}})
    with pytest.raises(OptionError, match="vmvx has no options"):
        compile(ir, target_options={"vmvx": {"bogus": "1"}})


def test_bad_sources_give_clear_errors(tmp_path) -> None:
    with pytest.raises(UsageError, match="does not exist|cannot read"):
        compile(tmp_path / "missing.mlir")
    with pytest.raises(UsageError, match="no importer handles"):
        compile(tmp_path / "model.xyz")
    with pytest.raises(CompileError, match="2:"):
        compile("func.func @main(%a: tensor<2xf32>) -> tensor<2xf32> {\n  %0 = exq %a\n"
                "  return %0 : tensor<2xf32>\n}\n")
    with pytest.raises(UsageError, match="cannot compile a int"):
        compile(42)


def test_transient_space_is_reused_by_liveness() -> None:
    def chain(a, w):  # four matmuls in a row: each intermediate dies after the next one
        x = a
        for _ in range(4):
            x = O.matmul(x, w)
        return x

    m = compile(build(chain, ((16, 16), F32), ((16, 16), F32)))
    fn = m.functions[0]
    dispatches = [op for op in fn.program if isinstance(op, Dispatch)]
    assert len(dispatches) == 4
    transients = [b for d in dispatches for b in d.bindings if b.slot == Slot.TRANSIENT]
    assert all(b.offset % 64 == 0 for b in transients)
    # three 1 KiB intermediates, at most two alive at once
    assert fn.transient_size == 2048
    assert kinds(fn.program) == ["D", "B", "D", "B", "D", "B", "D"]


def test_barriers_only_between_dependent_commands() -> None:
    def two_independent(a, b):
        return O.matmul(a, a), O.matmul(b, b)

    m = compile(build(two_independent, ((4, 4), F32), ((4, 4), F32)))
    assert kinds(m.functions[0].program) == ["D", "D"]
    concat = compile(build(lambda a, b: O.concat([a, b], 1), ((2, 3), F32), ((2, 2), F32)))
    assert kinds(concat.functions[0].program) == ["D", "D"]  # disjoint windows
    pad = compile(build(lambda a: O.pad(a, (1,), (1,), 5.0), ((3,), F32)))
    assert kinds(pad.functions[0].program) == ["D", "B", "D"]  # fill, then the interior


def test_results_that_are_arguments_constants_or_repeated_get_copies() -> None:
    dense = np.arange(6, dtype=np.float32).reshape(2, 3)

    def prog(a):
        e = O.exp(a)
        return a, a.fb.constant(dense), e, e, O.reshape(e, (3, 2))

    m = compile(build(prog, ((2, 3), F32)))
    fn = m.functions[0]
    copies = [op for op in fn.program if isinstance(op, Copy)]
    assert [(c.source.slot, c.target.index) for c in copies] == [
        (Slot.INPUT, 0), (Slot.CONSTANT, 1), (Slot.OUTPUT, 3), (Slot.OUTPUT, 4)]
    assert m.constants[0].data == dense.tobytes()
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    outs = run(m, x, device="local-task")
    np.testing.assert_array_equal(outs[0], x)
    np.testing.assert_array_equal(outs[1], dense)
    for got in outs[2:4]:
        np.testing.assert_allclose(got, np.exp(x), rtol=1e-6)
    np.testing.assert_allclose(outs[4], np.exp(x).reshape(3, 2), rtol=1e-6)


def test_identical_kernels_share_an_executable_across_functions() -> None:
    from hal_core.ir import Builder

    b = Builder()
    for name in ("f", "g"):
        with b.function(name, [("x", (4,), F32)]) as f:
            f.ret(O.exp(f.args[0]) * 2.0)
    with b.function("h", [("x", (4,), F32), ("y", (4,), F32)]) as f:
        first = O.exp(f.args[0]) * 2.0
        f.ret(first, O.sum(first, axis=0), O.exp(f.args[1]) * 2.0)
    m = compile(b.module())
    # One executable per distinct kernel, each with one entry point.
    assert len(m.executables) == 2
    assert all(len(e.variants[0].entry_points) == 1 for e in m.executables)
    used = [(op.executable, op.entry_point) for fn in m.functions for op in fn.program
            if isinstance(op, Dispatch)]
    assert used == [(0, 0), (0, 0), (0, 0), (1, 0), (0, 0)]


def test_independent_parallel_kernels_of_one_shape_share_a_dispatch() -> None:
    def prog(a, b):
        return O.exp(a) + b, a * b, O.broadcast_to(b, (2, 3)), O.sum(a, axis=1), a - 1.0

    m = compile(build(prog, ((2, 3), F32), ((3,), F32)))
    program = m.functions[0].program
    assert kinds(program) == ["D", "D", "D"]  # three merged roots, the sum, then a - 1
    entry = m.executables[program[0].executable].variants[0].entry_points[0]
    assert entry.binding_count == 5  # a, b and three outputs
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([1, 2, 3], np.float32)
    outs = run(m, a, b, device="local-task")
    for got, want in zip(outs, (np.exp(a) + b, a * b, np.broadcast_to(b, (2, 3)),
                                a.sum(1), a - 1)):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_constant_folding_keeps_big_splats_small() -> None:
    def prog(a):
        big = a.fb.constant(np.float32(2.0))
        big = O.broadcast_to(big, (512, 512)) * 3.0  # 262144 elements, folded to one splat
        return a + big

    m = compile(build(prog, ((512, 512), F32)))
    assert m.constants == ()
    assert len([op for op in m.functions[0].program if isinstance(op, Dispatch)]) == 1
    x = np.ones((512, 512), np.float32)
    np.testing.assert_array_equal(run(m, x), x + 6)


def test_big_splat_buffers_are_module_constants_filled_at_load(tmp_path) -> None:
    from hal_core.module.writer import serialize_module

    def prog(a):
        w = O.broadcast_to(a.fb.constant(np.float32(0.02)), (256, 1024))  # 1 MiB, all equal
        return O.matmul(a, w)

    m = compile(build(prog, ((4, 256), F32)))
    [c] = m.constants
    assert (c.splat, c.splat_size, len(c.data)) == (np.float32(0.02).tobytes(), 1 << 20, 0)
    assert len([op for op in m.functions[0].program if isinstance(op, Dispatch)]) == 1
    assert len(serialize_module(m)) < 64 * 1024
    x = np.random.default_rng(0).standard_normal((4, 256)).astype(np.float32)
    for device in ("local-sync", "local-task"):
        np.testing.assert_allclose(run(m, x, device=device),
                                   x @ np.full((256, 1024), 0.02, np.float32), rtol=1e-5)


def test_constant_folding_leaves_huge_dense_results_to_the_device() -> None:
    dense = np.arange(70000, dtype=np.float32)

    def prog(a):
        return a + (a.fb.constant(dense) + 1.0)

    m = compile(build(prog, ((70000,), F32)))
    assert [len(c.data) for c in m.constants] == [dense.nbytes]  # the operand, not the sum
    x = np.zeros(70000, np.float32)
    np.testing.assert_array_equal(run(m, x), dense + 1)


def test_target_backend_bugs_become_compile_errors(monkeypatch) -> None:
    from hal_vmvx.target import VmvxTarget

    def broken(self, executable, options):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(VmvxTarget, "compile", broken)
    with pytest.raises(CompileError, match="target backend 'vmvx' failed: ZeroDivisionError"):
        compile(build(lambda a: -a, ((2,), F32)))


def test_internal_errors_name_the_op_and_its_location(monkeypatch) -> None:
    from hal_core.compiler.passes import dispatch

    def broken(self, op, root):
        raise KeyError("bug")

    monkeypatch.setattr(dispatch._Former, "_named", broken)
    text = ("func.func @main(%a: tensor<2x2xf32>) -> tensor<2x2xf32> {\n"
            "  %m = matmul %a, %a\n  return %m : tensor<2x2xf32>\n}\n")
    with pytest.raises(CompileError, match=r"<bytes>:2:\d+: in @main: op 'matmul' \(result %m\)"):
        compile(text)


def test_kernels_are_valid_kernel_ir_for_every_function(tmp_path) -> None:
    ir = build(lambda a, b: (O.softmax(O.matmul(a, b) + 1.0), O.sum(a * a, axis=0)),
               ((3, 4), F32), ((4, 5), F32))
    m = compile_ir(ir, ("vmvx",), dump_ir=tmp_path)
    text = (tmp_path / "03-kernels.txt").read_text()
    assert "matmul" in text and "epilogue:" in text and "combiner=sum" in text
    assert len(m.executables) == text.count("// entry point ")


def test_dump_ir_writes_every_stage(tmp_path) -> None:
    compile(build(lambda a: O.sum(O.exp(a), axis=1) * 2.0, ((4, 6), F32)), dump_ir=tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["00-input.mlir", "01-fold.mlir", "02-fusion.txt", "03-kernels.txt",
                     "04-variant-vmvx.txt", "05-host.txt"]
    from hal_core.ir import parse

    parse((tmp_path / "01-fold.mlir").read_text())  # the text stages parse back
    fusion = (tmp_path / "02-fusion.txt").read_text()
    assert "inlined into its consumers" in fusion and "epilogue of" in fusion
    host = (tmp_path / "05-host.txt").read_text()
    assert "dispatch exe0[0]" in host and "buffer plan" in host and "transient=0" in host


def test_kernel_ir_of_a_fused_chain() -> None:
    from hal_core.compiler.passes.dispatch import form_dispatches
    from hal_core.compiler.passes.fusion import plan_fusion

    ir = build(lambda a, b: O.transpose(a, (1, 0)) * b + 1.0, ((2, 3), F32), ((2,), F32))
    fn = ir.functions[0]
    fd = form_dispatches(fn, plan_fusion(fn))
    (step,) = fd.steps
    k = step.kernel
    assert isinstance(k, K.GenericKernel) and k.iteration_space == (3, 2)
    maps = [m.map for m in k.inputs]
    assert maps[0] == K.IndexingMap.of_dims(2, (1, 0))   # transpose through the map
    assert maps[1] == K.IndexingMap.of_dims(2, (1,))     # broadcast of b along dim 0
    assert [op.opcode for op in k.body] == ["mul", "add"]
    K.validate(k)


def test_target_errors_name_the_source_ops(monkeypatch) -> None:
    from hal_vmvx.target import VmvxTarget

    def picky(self, executable, options):
        raise CompileError(f"kernel {executable.kernels[0].name!r}: float64 is not supported")

    monkeypatch.setattr(VmvxTarget, "compile", picky)
    text = ("func.func @main(%a: tensor<2xf64>) -> tensor<2xf64> {\n"
            "  %e = exp %a\n  %t = tanh %e\n  return %t : tensor<2xf64>\n}\n")
    with pytest.raises(CompileError) as info:
        compile(text)
    message = str(info.value)
    assert "float64 is not supported" in message
    assert "<bytes>:3:" in message and "op 'tanh' (result %t)" in message


def test_import_hal_core_stays_light() -> None:
    import subprocess
    import sys

    code = ("import sys, hal_core; f = hal_core.compile; "
            "print(sorted(m for m in ('numpy', 'hal_core.ir', 'hal_core.compiler.passes') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"


def test_long_chains_are_cut_into_bounded_kernels() -> None:
    from hal_core.compiler.passes.fusion import MAX_FUSED_OPS

    def chain(x):
        y = x
        for _ in range(1000):
            y = O.tanh(y * 0.5 + x)
        return y

    m = compile(build(chain, ((4,), F32)))
    dispatches = [op for op in m.functions[0].program if isinstance(op, Dispatch)]
    assert 2000 // MAX_FUSED_OPS <= len(dispatches) <= 2 * 2000 // MAX_FUSED_OPS
    x = np.linspace(-1, 1, 4, dtype=np.float32)
    want = x.astype(np.float64)
    y = want
    for _ in range(1000):
        y = np.tanh(y * 0.5 + want)
    np.testing.assert_allclose(run(m, x), y, rtol=1e-5)


def test_a_program_without_kernels_has_no_executable() -> None:
    dense = np.array([1, 2], np.int32)
    m = compile(build(lambda a: (O.reshape(a, (3,)), a.fb.constant(dense)), ((1, 3), F32)))
    assert m.executables == () and kinds(m.functions[0].program) == ["C", "C"]
    out = run(m, np.ones((1, 3), np.float32))
    np.testing.assert_array_equal(out[0], np.ones(3, np.float32))
    np.testing.assert_array_equal(out[1], dense)

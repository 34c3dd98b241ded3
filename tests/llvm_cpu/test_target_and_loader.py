"""The llvm-cpu target's options and variants, and the loader's refusals: another architecture,
missing CPU features, malformed payloads, too-small bindings."""

from __future__ import annotations

import json
import subprocess
import sys

import llvmlite.binding as llvm
import numpy as np
import pytest
from hal_llvm_cpu import backend, cache
from hal_llvm_cpu.loader import LlvmObjectLoader, host_arch, host_features
from hal_llvm_cpu.target import ISA_FEATURES, LlvmCpuTarget
from llvm_harness import compile_one, ident, operand

import hal_core
from hal_core import ir
from hal_core.compiler import kernel_ir as K
from hal_core.compiler.target import TargetOptions
from hal_core.errors import CompileError, HalRuntimeError, IncompatibleModuleError, \
    ModuleFormatError


def _add_kernel(n=100):
    a, b, c = operand(0, (n,), "float32"), operand(1, (n,), "float32"), operand(2, (n,), "float32")
    return K.GenericKernel("add", (n,), ("parallel",), (ident(a), ident(b)), (ident(c),),
                           (K.ScalarOp("add", (K.Input(0), K.Input(1)), "float32"),),
                           (K.Result(0),))


def _program():
    b = ir.Builder()
    with b.function("main", [("x", (8, 16), "f32"), ("w", (16, 5), "f32")]) as f:
        x, w = f.args
        f.ret((x @ w).tanh() + 1.0)
    return b.module()


def _inputs():
    g = np.random.default_rng(0)
    return g.random((8, 16), np.float32), g.random((16, 5), np.float32)


def test_host_variant_names_the_architecture_and_records_cpu_features():
    variant, _ = compile_one(_add_kernel())
    assert variant.format == f"llvm-object-{host_arch()}"
    assert variant.features and all(f.startswith("cpu:") for f in variant.features)
    assert {f[4:] for f in variant.features} <= host_features()


def test_generic_cpu_needs_no_features_and_runs():
    variant, exe = compile_one(_add_kernel(), **{"target-cpu": "generic"})
    assert variant.features == ()
    a = np.arange(100, dtype=np.float32)
    out = np.zeros(100, np.float32)
    exe.run(0, variant.entry_points[0].workgroup_count, 0,
            variant.entry_points[0].workgroup_count[0], [a.view(np.uint8), a.view(np.uint8),
                                                          out.view(np.uint8)], ())
    np.testing.assert_array_equal(out, a + a)


def test_one_module_with_llvm_cpu_and_vmvx_variants_runs_on_both_local_drivers():
    module = hal_core.compile(_program(), target_backends=["llvm-cpu", "vmvx"])
    formats = [v.format for e in module.executables for v in e.variants]
    assert f"llvm-object-{host_arch()}" in formats and "vmvx-bytecode" in formats
    x, w = _inputs()
    for device in ("local-sync", "local-task"):
        dev = hal_core.registry.get_registry().create_device(device)
        try:
            # The host-tuned llvm-cpu variant comes first and fits this CPU: it is the one run.
            for exe in module.executables:
                assert dev.check_variant(exe.variants[0]) is None, exe.variants[0].features
            with hal_core.load_module(module, device=dev) as m:
                np.testing.assert_allclose(m.main(x, w), np.tanh(x @ w) + 1, rtol=1e-5)
        finally:
            dev.close()


def test_cross_compiled_aarch64_module_dumps_and_is_refused_on_another_host(tmp_path):
    if host_arch() == "aarch64":
        pytest.skip("this host is aarch64: the refusal needs a foreign architecture")
    path = tmp_path / "a64.halm"
    hal_core.compile(_program(), target_backends=["llvm-cpu"], output=str(path),
                     target_options={"llvm-cpu": {"target-triple": "aarch64-linux-gnu",
                                                  "target-cpu": "generic"}})
    dump = subprocess.run([sys.executable, "-m", "hal_core.cli", "dump", str(path), "--json"],
                          capture_output=True, text=True, check=False)
    assert dump.returncode == 0, dump.stderr
    variants = [v for e in json.loads(dump.stdout)["executables"] for v in e["variants"]]
    assert [v["format"] for v in variants] == ["llvm-object-aarch64"]
    assert "cpu:neon" in variants[0]["features"]
    with pytest.raises(IncompatibleModuleError, match="aarch64") as info:
        with hal_core.load_module(str(path), device="local-sync") as m:
            m.main(*_inputs())
    assert host_arch() in str(info.value)
    # The loader itself refuses too, before linking anything.
    from hal_core.module.reader import load_module_file

    v = load_module_file(str(path)).executables[0].variants[0]
    with pytest.raises(IncompatibleModuleError, match="aarch64"):
        LlvmObjectLoader(f"llvm-object-{host_arch()}").load(v.payload, v.entry_points)


def _missing_feature() -> str:
    have = host_features()
    arch_isa = sorted(f for f in ISA_FEATURES if f not in have and
                      (f.startswith(("avx", "sse", "f16c", "fma", "bmi", "amx")) if
                       host_arch() == "x86_64" else f in ("sve", "sve2", "i8mm")))
    if not arch_isa:
        pytest.skip("this CPU has every ISA feature the target knows")
    return arch_isa[0]


def test_variant_requiring_a_feature_the_host_lacks_is_refused_not_run():
    feat = _missing_feature()
    options = {"target-cpu": "generic", "target-cpu-features": f"+{feat}"}
    variant = LlvmCpuTarget().compile(K.KernelExecutable("t", (_add_kernel(),)),
                                      TargetOptions(options=options))
    assert f"cpu:{feat}" in variant.features
    with pytest.raises(IncompatibleModuleError, match=f"cpu:{feat}"):
        LlvmObjectLoader(variant.format).load(variant.payload, variant.entry_points)
    # Through the runtime: the module is refused at load with the feature named.
    module = hal_core.compile(_program(), target_backends=["llvm-cpu"],
                              target_options={"llvm-cpu": options})
    with pytest.raises(IncompatibleModuleError, match=f"cpu:{feat}"):
        hal_core.load_module(module, device="local-sync")


def test_malformed_payloads_are_module_format_errors():
    variant, _ = compile_one(_add_kernel())
    loader = LlvmObjectLoader(variant.format)
    for bad in (b"", b"HALLLVM1\xff\xff\xff\xff", b"NOTLLVM!" + bytes(variant.payload)[8:],
                bytes(variant.payload)[:40]):
        with pytest.raises(ModuleFormatError):
            loader.load(bad, variant.entry_points)


def test_a_binding_smaller_than_the_kernel_reads_is_refused():
    variant, exe = compile_one(_add_kernel(100))
    small, big = np.zeros(16, np.uint8), np.zeros(400, np.uint8)
    with pytest.raises(HalRuntimeError, match="binding 0 holds 16 bytes"):
        exe.run(0, (1, 1, 1), 0, 1, [small, big, big], ())


def test_unknown_options_and_unnamed_cpu_features_are_compile_errors():
    ex = K.KernelExecutable("t", (_add_kernel(),))
    with pytest.raises(CompileError, match="no option"):
        LlvmCpuTarget().compile(ex, TargetOptions(options={"cpu-tune": "x"}))
    with pytest.raises(CompileError, match="target-cpu-features"):
        LlvmCpuTarget().compile(ex, TargetOptions(options={"target-cpu": "skylake"}))
    with pytest.raises(CompileError, match="triple"):
        LlvmCpuTarget().compile(ex, TargetOptions(options={"target-triple": "nonsense-x-y"}))


def test_deprecated_names_still_work(tmp_path):
    # IREE's target name compiles the same code; its driver name `dylib` is the CLI's alias of
    # local-task (hal_core.cli.run.LEGACY_DRIVERS); each says so in one line.
    path = tmp_path / "m.halm"
    proc = subprocess.run([sys.executable, "-m", "hal_core.cli", "compile", "-",
                           "--iree-hal-target-backends=dylib-llvm-aot", "-o", str(path)],
                          input=ir.print_module(_program()), capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("\n") == 1 and "'dylib-llvm-aot'" in proc.stderr
    assert "deprecated" in proc.stderr and "'llvm-cpu'" in proc.stderr
    variant = hal_core.module.reader.load_module_file(str(path)).executables[0].variants[0]
    assert variant.target_backend == "llvm-cpu" and variant.format.startswith("llvm-object-")
    run = subprocess.run([sys.executable, "-m", "hal_core.cli", "run", "--driver=dylib",
                          f"--module_file={path}", "--input=8x16xf32=1", "--input=16x5xf32=1"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("result[0]: 8x5xf32=") and "local-task" in run.stderr


def test_object_cache_is_used_and_can_be_bypassed(tmp_path, monkeypatch):
    monkeypatch.setenv("HAL_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("HAL_NO_CACHE", raising=False)
    ex = K.KernelExecutable("t", (_add_kernel(77),))
    first = LlvmCpuTarget().compile(ex, TargetOptions())
    assert len(list((tmp_path / "llvm-cpu").glob("*.o"))) == 1

    def fail(*args):
        raise AssertionError("compiled although the object was cached")
    monkeypatch.setattr(backend, "compile_object", fail)
    again = LlvmCpuTarget().compile(ex, TargetOptions())
    assert again.payload == first.payload
    monkeypatch.setenv("HAL_NO_CACHE", "1")
    with pytest.raises(AssertionError, match="compiled although"):
        LlvmCpuTarget().compile(ex, TargetOptions())
    monkeypatch.delenv("HAL_NO_CACHE")
    with pytest.raises(AssertionError, match="compiled although"):
        LlvmCpuTarget().compile(ex, TargetOptions(options={"no-cache": "1"}))
    # The key covers the target machine: another CPU is another object.
    assert cache.kernel_key(_add_kernel(77), backend.Machine("x86_64-unknown-linux-gnu",
                                                             "generic", "")) != \
        cache.kernel_key(_add_kernel(77), backend.Machine("x86_64-unknown-linux-gnu",
                                                          "x86-64-v3", ""))


def test_identical_kernels_share_one_object():
    k1, k2 = _add_kernel(50), K.GenericKernel(**{**_add_kernel(50).__dict__, "name": "other"})
    variant = LlvmCpuTarget().compile(K.KernelExecutable("t", (k1, k2)), TargetOptions())
    from hal_llvm_cpu.payload import decode

    p = decode(variant.payload)
    assert len(p.objects) == 1 and p.entries[0] == p.entries[1]


def test_llvm_initialisation_is_the_documented_one():
    backend.init_llvm()
    assert llvm.get_process_triple()


def test_hal_compile_timings_and_no_cache(tmp_path):
    env = {**__import__("os").environ, "HAL_CACHE_DIR": str(tmp_path / "cache")}
    args = [sys.executable, "-m", "hal_core.cli", "compile", "-", "--target-backends=llvm-cpu",
            "-o", str(tmp_path / "m.halm"), "--timings"]
    text = ir.print_module(_program())
    proc = subprocess.run([*args, "--no-cache"], input=text, capture_output=True, text=True,
                          env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    phases = [line.split("  ")[0].strip() for line in proc.stderr.splitlines()]
    assert {"fusion", "buffer planning", "target llvm-cpu", "total"} <= set(phases), phases
    assert not (tmp_path / "cache").exists()       # --no-cache: nothing read or written
    proc = subprocess.run(args, input=text, capture_output=True, text=True, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert list((tmp_path / "cache" / "llvm-cpu").glob("*.o"))


@pytest.mark.parametrize("spelling", ["--llvm-cpu-target-cpu", "--llvmcpu-target-cpu",
                                      "--iree-llvmcpu-target-cpu"])
def test_target_cpu_flag_spellings(tmp_path, spelling):
    proc = subprocess.run([sys.executable, "-m", "hal_core.cli", "compile", "-",
                           "--target-backends=llvm-cpu", f"{spelling}=generic",
                           "-o", str(tmp_path / "m.halm")],
                          input=ir.print_module(_program()), capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    from hal_core.module.reader import load_module_file

    variants = [v for e in load_module_file(str(tmp_path / "m.halm")).executables
                for v in e.variants]
    assert variants and all(v.features == () for v in variants)   # generic: no requirements


def test_object_code_with_an_unresolved_symbol_is_refused_at_load():
    from llvmlite import ir as llir

    from hal_core.hal.executable import EntryPoint
    from hal_llvm_cpu.payload import Payload
    from hal_llvm_cpu.target import resolve_machine

    machine, _ = resolve_machine(TargetOptions())
    mod = llir.Module()
    mod.triple = machine.triple
    i32, i64, ptr = llir.IntType(32), llir.IntType(64), llir.PointerType()
    fn = llir.Function(mod, llir.FunctionType(i32, [ptr] * 3 + [i64] * 2), "hal_x")
    missing = llir.Function(mod, llir.FunctionType(llir.VoidType(), []), "hal_no_such_fn")
    b = llir.IRBuilder(fn.append_basic_block())
    b.call(missing, [])
    b.ret(llir.Constant(i32, 0))
    obj = backend._target_machine(machine).emit_object(llvm.parse_assembly(str(mod)))
    payload = Payload(machine.triple, machine.cpu, (), (("hal_x", 0),), (obj,), ((),)).encode()
    with pytest.raises(ModuleFormatError, match="linking the object code failed"):
        LlvmObjectLoader(f"llvm-object-{host_arch()}").load(payload, [EntryPoint("x")])

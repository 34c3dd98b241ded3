from __future__ import annotations

import io
import json
import mmap

import numpy as np
import pytest
from module_samples import make_module

from hal_core.errors import ModuleFormatError
from hal_core.module import layout
from hal_core.module.model import (
    Barrier,
    BufferRef,
    Constant,
    Dispatch,
    Executable,
    ExecutionModel,
    Fill,
    Function,
    Module,
    Slot,
    TensorType,
    Variant,
)
from hal_core.module.reader import describe, load_module_file, parse_module_bytes
from hal_core.module.writer import serialize_module, serialized_size, write_module


@pytest.fixture
def module() -> Module:
    return make_module()


def address(view: memoryview) -> int:
    return np.frombuffer(view, dtype=np.uint8).__array_interface__["data"][0] if len(view) else 0


def test_round_trip_bytes(module: Module) -> None:
    data = serialize_module(module)
    loaded = parse_module_bytes(data)
    assert loaded == module
    assert loaded.metadata == module.metadata
    assert loaded.functions[0].program == module.functions[0].program
    assert loaded.executables[0].variants[1].features == ("avx2", "fma")
    assert bytes(loaded.constants[3].data) == bytes(1000)
    assert loaded.constants[1].data.nbytes == 0


def test_round_trip_inline_execution_model(tmp_path) -> None:
    module = make_module(ExecutionModel.INLINE)
    write_module(module, tmp_path / "m.halm")
    loaded = load_module_file(tmp_path / "m.halm")
    assert loaded.execution_model is ExecutionModel.INLINE
    assert loaded == module


def test_serialisation_is_deterministic(module: Module) -> None:
    assert serialize_module(module) == serialize_module(make_module())
    assert serialize_module(module) != serialize_module(make_module(ExecutionModel.INLINE))


def test_write_to_file_object_matches_bytes(module: Module) -> None:
    f = io.BytesIO()
    write_module(module, f)
    assert f.getvalue() == serialize_module(module)
    assert serialized_size(module) == len(f.getvalue())


def test_constants_and_payloads_are_aligned_zero_copy_views_of_the_map(module, tmp_path) -> None:
    path = tmp_path / "m.halm"
    write_module(module, path)
    loaded = load_module_file(path)
    blobs = [c.data for c in loaded.constants]
    blobs += [v.payload for e in loaded.executables for v in e.variants]
    base = None
    for view in blobs:
        assert isinstance(view, memoryview) and view.readonly
        assert isinstance(view.obj, mmap.mmap)  # a slice of the map, not a copy
        if base is None:
            base = address(memoryview(view.obj))
        if len(view):
            offset = address(view) - base
            assert offset % layout.ALIGNMENT == 0
            assert 0 < offset < path.stat().st_size
    # The file's bytes at those offsets are the constant's bytes.
    raw = path.read_bytes()
    weights = loaded.constants[0].data
    start = address(weights) - base
    assert raw[start:start + 100] == bytes(range(100))


def test_parse_of_bytes_does_not_copy_the_data_section(module: Module) -> None:
    data = serialize_module(module)
    loaded = parse_module_bytes(data)
    view = loaded.constants[0].data
    assert view.obj is data
    base = address(memoryview(data))
    assert (address(view) - base) % 64 == 0
    assert data[address(view) - base:][:100] == bytes(range(100))


def test_empty_module_round_trips() -> None:
    module = Module("empty", (), ())
    assert parse_module_bytes(serialize_module(module)) == module


def test_describe_is_json_and_complete(module: Module) -> None:
    data = serialize_module(module)
    info = describe(parse_module_bytes(data), file_size=len(data))
    assert json.loads(json.dumps(info)) == info
    assert info["file_bytes"] == len(data) == describe(module)["file_bytes"]
    main = info["functions"][0]
    assert main["signature"] == "(tensor<4x4xf32>, tensor<4x4xf32>) -> (tensor<4x4xf32>)"
    assert main["transient_bytes"] == 128
    assert main["host_ops"] == {"dispatch": 2, "copy": 1, "fill": 1, "barrier": 1}
    assert info["peak_transient_bytes"] == 128
    variant = info["executables"][0]["variants"][1]
    assert variant["format"] == "llvm-object-x86_64"
    assert variant["features"] == ["avx2", "fma"]
    assert variant["payload_bytes"] == 200
    assert variant["entry_points"][0] == {
        "name": "add", "workgroup_count": [4, 1, 1], "workgroup_size": [16, 1, 1],
        "binding_count": 3, "constant_count": 1,
        "scratch_bytes": 0, "constant_packs": []}
    assert [c["bytes"] for c in info["constants"]] == [100, 0, 7, 1000]
    assert info["execution_model"] == "async"


def _with_main_program(module: Module, *ops, transient: int = 128) -> Module:
    main = module.functions[0]
    function = Function(main.name, main.inputs, main.outputs, tuple(ops), transient)
    return Module(module.name, (function,), module.executables, module.constants)


T = Slot.TRANSIENT


@pytest.mark.parametrize("ops, message", [
    ((Dispatch(2, 0, ()),), "executable index must be below 2, found 2"),
    ((Dispatch(0, 2, ()),), "entry point index must be below 2"),
    ((Dispatch(0, 1, (BufferRef(T, 0, 0, 4),)),), "must pass 2 binding(s) and 0 constant(s)"),
    ((Dispatch(0, 1, (BufferRef(T, 0, 0, 4), BufferRef(T, 0, 120, 16))),),
     "range [120, 136) must lie within TRANSIENT 0 of 128 bytes"),
    ((Dispatch(0, 1, (BufferRef(Slot.INPUT, 2, 0, 4), BufferRef(T, 0, 0, 4))),),
     "refers to INPUT 2, but the function has 2 such buffer(s)"),
    ((Dispatch(0, 0, (BufferRef(T, 0, 0, 4),) * 3, (2**32,)),), "32-bit integers"),
    ((Fill(BufferRef(T, 0, 0, 6), b"abc"),), "pattern must be 1, 2 or 4 bytes"),
    ((Fill(BufferRef(T, 0, 0, 6), b"abcd"),), "multiple of the pattern's 4 bytes"),
    ((Fill(BufferRef(Slot.CONSTANT, 0, 0, 4), b"a"),), "writes to read-only CONSTANT 0"),
    ((Fill(BufferRef(Slot.CONSTANT, 4, 0, 0), b"a"),), "refers to CONSTANT 4"),
    ((Fill(BufferRef(T, 0, -1, 1), b"a"),), "offset must be an integer"),
])
def test_writer_rejects_inconsistent_modules(module: Module, ops, message: str) -> None:
    with pytest.raises(ModuleFormatError) as info:
        serialize_module(_with_main_program(module, *ops))
    assert message in str(info.value)
    assert "module 'sample'" in str(info.value)


@pytest.mark.parametrize("change, message", [
    (lambda m: Module(m.name, m.functions * 2, m.executables, m.constants),
     "function names must be unique"),
    (lambda m: Module(m.name, (Function("f", (TensorType((2,), "float8"),), (), ()),), ()),
     "dtype must be one of"),
    (lambda m: Module(m.name, (Function("f", (TensorType((-2,), "float32"),), (), ()),), ()),
     "dimension must be an integer"),
    (lambda m: Module(m.name, (Function("f", (TensorType((2**50,), "float32"),), (), ()),), ()),
     "must be at most"),
    (lambda m: Module(m.name, (), (), (Constant("c", [1, 2]),)), "must be bytes"),
    (lambda m: Module(m.name, (), (), version=3), "writes format version 2"),
    (lambda m: Module(m.name, (), (), (Constant("c", b"1234", b"\x01", 4),)),
     "has both data"),
    (lambda m: Module(m.name, (), (), (Constant("c", b"", b"\x01\x02\x03", 4),)),
     "multiple of the 3-byte pattern"),
    (lambda m: Module(m.name, (), (), (Constant("c", b"", b"", 8),)), "without a splat pattern"),
])
def test_writer_rejects_malformed_parts(module: Module, change, message: str) -> None:
    with pytest.raises(ModuleFormatError, match=message.replace("(", r"\(")):
        serialize_module(change(module))


def test_large_honest_module_stays_within_the_decoding_budget() -> None:
    """The reader's work budget (bytes charged <= FlatBuffer size) must never reject a real
    file: many small tables, empty strings and empty vectors are the tightest case."""
    sample = make_module()
    barrier_fn = [Function(f"f{i}", (), (), (Barrier(),) * 50) for i in range(200)]
    empty_names = [Function("", (), (), ())]
    exe = sample.executables[0]
    variant = exe.variants[0]
    many_features = Variant(variant.target_backend, variant.format, ("",) * 100,
                            variant.entry_points, b"")
    executables = (Executable("", (many_features,) * 20),) + sample.executables
    module = Module("", tuple(barrier_fn + empty_names), executables,
                    (Constant("", b""),) * 50)
    assert parse_module_bytes(serialize_module(module)) == module


def test_generated_code_matches_the_schema(tmp_path) -> None:
    """The committed flatc output is what regen.sh makes from the committed schema."""
    import shutil
    import subprocess
    from pathlib import Path

    if shutil.which("flatc") is None:
        pytest.skip("flatc (Debian package flatbuffers-compiler) is not installed")
    schema_dir = Path(layout.__file__).parent / "schema"
    subprocess.run(["flatc", "--python", "-o", str(tmp_path), str(schema_dir / "module.fbs")],
                   check=True, capture_output=True)
    fresh = tmp_path / "hal_core" / "module" / "schema" / "generated"
    committed = schema_dir / "generated"
    fresh_files = sorted(p.name for p in fresh.glob("*.py") if p.name != "__init__.py")
    assert fresh_files == sorted(
        p.name for p in committed.glob("*.py") if p.name != "__init__.py")
    for name in fresh_files:
        assert (fresh / name).read_text() == (committed / name).read_text(), name


def test_splat_constant_round_trips_as_pattern_and_size_and_fills_on_demand() -> None:
    pattern = np.float32(0.02).tobytes()
    big = Constant("w", b"", pattern, 4 * 1_000_000)
    module = Module("splat", (), (), (Constant("dense", b"\x01\x02"), big))
    data = serialize_module(module)
    assert len(data) < 4096  # the 4 MB constant costs the file a few bytes
    loaded = parse_module_bytes(data)
    assert loaded == module
    assert loaded.constants[1].size == 4_000_000 and loaded.constants[0].size == 2
    filled = np.frombuffer(loaded.constants[1].contents(), dtype=np.float32)
    assert filled.shape == (1_000_000,) and np.all(filled == np.float32(0.02))
    assert not filled.flags.writeable
    assert filled.__array_interface__["data"][0] % 64 == 0
    assert bytes(loaded.constants[0].contents()) == b"\x01\x02"
    info = describe(loaded)
    assert info["constants"][1] == {"name": "w", "bytes": 4_000_000, "splat": pattern.hex()}
    assert info["constant_bytes"] == 4_000_002

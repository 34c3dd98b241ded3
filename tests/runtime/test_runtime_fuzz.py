"""Property-based fuzzing of ``load_module`` and calls on local-sync (hypothesis).

Real modules (tensor IR compiled to vmvx kernels; async and inline execution models) are
serialized, mutated (bytes overwritten, anywhere or inside the FlatBuffer; truncated; extended)
and usually resealed, so that the content hash does not hide what comes after it: the
FlatBuffer decoder, module validation, variant selection, executable preparation (the vmvx
bytecode decoder) and recording. Whatever loads is called with arrays of the signature it
declares. Every outcome must be a result or one of the project's errors (HalError), never
another exception or a hang.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from hal_core import ir
from hal_core.compiler.pipeline import compile_ir
from hal_core.errors import HalError
from hal_core.module import layout
from hal_core.module.writer import serialize_module
from hal_core.registry import get_registry
from hal_core.runtime import load_module

PROGRAM = """\
func.func @main(%a: tensor<4x8xf32>, %b: tensor<8xf32>) {
  %c = constant dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]> : tensor<8xf32>
  %0 = add %a, %b
  %1 = mul %0, %c
  %2 = reduce_sum %1 {axes = [1], keepdims = true}
  %3 = tanh %2
  %4 = matmul %a, %a {transpose_b = true}
  return %3, %4
}

func.func @other(%x: tensor<3x5xi32>) {
  %0 = transpose %x {perm = [1, 0]}
  %1 = argmax %0 {axis = 0}
  return %1
}
"""

FUZZ = settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
MAX_INPUT_BYTES = 1 << 20  # a mutated signature may ask for enormous inputs: not called then


def _samples() -> list[bytes]:
    source = ir.parse(PROGRAM)
    return [
        serialize_module(compile_ir(source, ["vmvx"], execution_model=m))
        for m in ("async", "inline")
    ]


SAMPLES = _samples()


def _regions(data: bytes) -> dict[str, tuple[int, int]]:
    h = layout.Header.unpack(data)
    return {
        "anywhere": (0, len(data)),
        "flatbuffer": (h.fb_offset, h.fb_offset + h.fb_length),
        # payloads (vmvx bytecode) and constants
        "data": (h.data_offset, h.data_offset + h.data_length),
    }


REGIONS = [_regions(d) for d in SAMPLES]


def fix_lengths(raw: bytearray) -> None:
    """Make the header's total and data lengths agree with the (cut or extended) file."""
    if len(raw) < layout.HEADER_SIZE:
        return
    h = layout.Header.unpack(raw)
    fields = dict(h.__dict__, total_length=len(raw), data_length=max(0, len(raw) - h.data_offset))
    raw[: layout.HEADER_SIZE] = layout.Header(**fields).pack()
    layout.seal(raw)


@pytest.fixture(scope="module")
def device():
    dev = get_registry().create_device("local-sync")
    yield dev
    dev.close()


def load_and_call(device, data: bytes, path) -> None:
    """Load ``data`` and call each function; only HalError may come out."""
    path.write_bytes(data)
    try:
        loaded = load_module(str(path), device=device)
    except HalError as error:
        event(f"load: {type(error).__name__}")
        assert str(error).strip()
        return
    try:
        rng = np.random.default_rng(0)
        for name, fn in loaded.functions.items():
            types = fn.inputs
            if sum(t.byte_size for t in types) > MAX_INPUT_BYTES:
                event("not called: huge inputs")
                continue
            args = [(rng.standard_normal(t.shape) * 4).astype(t.dtype) for t in types]
            try:
                results = fn(*args)
            except HalError as error:
                event(f"call: {type(error).__name__}")
                continue
            event("called")
            results = results if isinstance(results, tuple) else (results,)
            assert len(results) == len(fn.outputs), name
            for r, t in zip(results, fn.outputs):
                assert r.shape == tuple(t.shape) and r.dtype == np.dtype(t.dtype), name
    finally:
        loaded.close()


def test_the_samples_load_and_run(device, tmp_path) -> None:
    a = np.arange(32, dtype=np.float32).reshape(4, 8) / 10
    b = np.linspace(-1, 1, 8, dtype=np.float32)
    c = np.arange(1, 9, dtype=np.float32)
    for data in SAMPLES:
        (tmp_path / "m.halm").write_bytes(data)
        with load_module(str(tmp_path / "m.halm"), device=device) as m:
            s, mm = m.main(a, b)
            np.testing.assert_allclose(s, np.tanh(((a + b) * c).sum(1, keepdims=True)), rtol=1e-5)
            np.testing.assert_allclose(mm, a @ a.T, rtol=1e-5)


mutation = st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255))


@FUZZ
@given(
    sample=st.sampled_from([0, 1]),
    mutations=st.lists(mutation, min_size=1, max_size=6),
    region=st.sampled_from(["anywhere", "flatbuffer", "data"]),
    reseal=st.booleans() | st.just(True),
)
def test_mutated_modules_load_and_run_or_fail_cleanly(
    device, tmp_path, sample, mutations, region, reseal
) -> None:
    raw = bytearray(SAMPLES[sample])
    lo, hi = REGIONS[sample][region]
    for position, value in mutations:
        raw[lo + position % (hi - lo)] = value
    if reseal:
        layout.seal(raw)
    load_and_call(device, bytes(raw), tmp_path / "fuzz.halm")


@settings(FUZZ, max_examples=200)
@given(
    sample=st.sampled_from([0, 1]),
    cut=st.integers(min_value=0),
    tail=st.binary(max_size=64),
    fix=st.booleans(),
)
def test_truncated_and_extended_modules(device, tmp_path, sample, cut, tail, fix) -> None:
    data = SAMPLES[sample]
    raw = bytearray(data[: cut % (len(data) + 1)] + tail)
    if fix:
        fix_lengths(raw)
    load_and_call(device, bytes(raw), tmp_path / "fuzz.halm")

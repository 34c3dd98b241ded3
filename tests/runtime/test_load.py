"""load_module and calls: results, both drivers, both execution models, reuse across calls."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from runtime_modules import add_module, chain_module, matmul_module

import hal_core
from hal_core.errors import UsageError
from hal_core.hal.allocator import aligned_host_array
from hal_core.module.model import ExecutionModel
from hal_core.module.writer import write_module
from hal_core.registry import get_registry
from hal_core.runtime import LoadedModule, load_module
from hal_core.runtime.async_model import AsyncFunction
from hal_core.runtime.inline_model import InlineFunction


def test_add_on_each_device_and_model(device_name, model):
    with load_module(add_module(model=model), device_name) as m:
        a = np.arange(4, dtype=np.float32)
        b = np.full(4, 0.5, np.float32)
        out = m.main(a, b)
        assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (4,)
        np.testing.assert_array_equal(out, a + b)
        assert m.device.id.startswith(device_name)
        expected = InlineFunction if model is ExecutionModel.INLINE else AsyncFunction
        assert isinstance(m.main, expected)


def test_repeated_calls_with_different_inputs_reuse_the_recording(device_name, model):
    rng = np.random.default_rng(0)
    with load_module(add_module(n=300, model=model), device_name) as m:
        fn = m["main"]
        if model is ExecutionModel.ASYNC:
            recorded = fn._cb[0]
        kept = []
        for _ in range(20):
            a, b = rng.standard_normal((2, 300), dtype=np.float32)
            out = fn(a, b)
            np.testing.assert_array_equal(out, a + b)
            kept.append((a + b, out))
        # Outputs are fresh per call: earlier results are not overwritten by later calls.
        for want, got in kept:
            np.testing.assert_array_equal(got, want)
        if model is ExecutionModel.ASYNC:
            assert fn._cb[0] is recorded  # recorded once at load, never re-recorded


def test_large_aligned_unaligned_and_strided_inputs(device_name, model):
    n = 4096  # large enough to be bound in place when aligned
    with load_module(add_module(n=n, scale=2.0, model=model), device_name) as m:
        base = np.arange(2 * n + 16, dtype=np.float32)
        aligned = aligned_host_array(4 * n).view(np.float32)
        aligned[:] = np.linspace(-1, 1, n, dtype=np.float32)
        unaligned = base[1:n + 1]        # 4 bytes past whatever alignment base has
        strided = base[: 2 * n : 2]      # not contiguous
        for a, b in ((aligned, unaligned), (strided, aligned), (unaligned, strided)):
            np.testing.assert_array_equal(m.main(a, b), a + b * 2)
        assert np.array_equal(base, np.arange(2 * n + 16, dtype=np.float32))  # inputs untouched
        # Only the misplaced arguments were staged; the aligned one was bound in place.
        staged = [s is not None for s in m.main._staging]
        fresh = load_module(add_module(n=n, model=model), device_name)
        fresh.main(aligned, aligned)
        assert [s is not None for s in fresh.main._staging] == [False, False]
        fresh.close()
        assert staged == [True, True]


def test_constants_transient_arena_copy_fill_and_several_results(device_name, model):
    with load_module(chain_module(model), device_name) as m:
        x = np.arange(6, dtype=np.float32).reshape(2, 3) - 2
        c = np.arange(6, dtype=np.float32).reshape(2, 3) * 10
        prod, total = m.main(x)
        np.testing.assert_array_equal(prod, (x + c) * x)
        np.testing.assert_array_equal(total, x + c)
        copied, ones = m.copy_fill(np.arange(6, dtype=np.float32))
        np.testing.assert_array_equal(copied, np.arange(6))
        np.testing.assert_array_equal(ones, np.ones(6, np.float32))
        assert set(m.functions) == {"main", "copy_fill"}
        assert "main" in m and "nope" not in m


def test_matmul_against_numpy(device_name):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((33, 17), dtype=np.float32)
    b = rng.standard_normal((17, 9), dtype=np.float32)
    with load_module(matmul_module(33, 17, 9), device_name) as m:
        np.testing.assert_allclose(m.main(a, b), a @ b, rtol=1e-5, atol=1e-5)


def test_load_from_a_file_path(tmp_path, model):
    path = tmp_path / "add.halm"
    write_module(chain_module(model), path)
    with load_module(str(path), "local-sync") as m:
        prod, _ = m.main(np.ones((2, 3), np.float32))
        np.testing.assert_array_equal(prod, np.arange(6).reshape(2, 3) * 10 + 1)
    with load_module(path, "local-sync") as m:  # PathLike too
        assert m.module.name == "chain"


def test_hal_core_exports_load_module_lazily():
    assert hal_core.load_module is load_module
    assert hal_core.LoadedModule is LoadedModule


def test_default_device_comes_from_hal_default_device(monkeypatch, clean_hal_env):
    monkeypatch.setenv("HAL_DEFAULT_DEVICE", "local-sync")
    with load_module(add_module(), None) as m:
        assert m.device.id.startswith("local-sync")


def test_named_device_is_never_replaced(monkeypatch, clean_hal_env):
    monkeypatch.setenv("HAL_DEFAULT_DEVICE", "local-sync")
    with load_module(add_module(), "local-task") as m:
        assert m.device.id.startswith("local-task")
    with pytest.raises(UsageError, match="did you mean 'local-sync'"):
        load_module(add_module(), "local-snyc")


def test_a_given_device_is_used_and_not_closed():
    device = get_registry().create_device("local-sync")
    try:
        with load_module(add_module(), device) as m:
            assert m.device is device
        assert not device.closed
    finally:
        device.close()


def test_close_releases_and_later_calls_fail(model):
    m = load_module(add_module(model=model), "local-task")
    fn = m.main
    m.close()
    assert m.device.closed
    with pytest.raises(UsageError, match="closed"):
        fn(np.zeros(4, np.float32), np.zeros(4, np.float32))
    m.close()  # idempotent


def test_unknown_function_names_are_clear_errors():
    with load_module(add_module(), "local-sync") as m:
        with pytest.raises(UsageError, match="no function 'mian'.*did you mean 'main'"):
            m["mian"]
        with pytest.raises(AttributeError, match="no function 'mian'"):
            m.mian  # noqa: B018
        assert not hasattr(m, "predict")


@pytest.mark.parametrize("key", [0, None, ["main"]])
def test_function_lookup_by_a_non_name_is_a_usage_error(key):
    with load_module(add_module(), "local-sync") as m:
        with pytest.raises(UsageError, match="looked up by name.*it has main"):
            m[key]
        assert key not in m


def test_inline_model_records_no_command_buffers():
    device = get_registry().create_device("local-sync")

    def refuse(*args, **kwargs):
        raise AssertionError("the inline model must not create command buffers")

    device.create_command_buffer = refuse
    device.create_semaphore = refuse
    try:
        with load_module(add_module(model=ExecutionModel.INLINE), device) as m:
            np.testing.assert_array_equal(m.main(np.ones(4, np.float32),
                                                 np.ones(4, np.float32)), 2)
    finally:
        device.close()


def test_concurrent_callers_get_their_own_results(model):
    with load_module(add_module(n=2000, model=model), "local-task") as m:
        errors = []

        def work(seed: int) -> None:
            rng = np.random.default_rng(seed)
            for _ in range(30):
                a, b = rng.standard_normal((2, 2000), dtype=np.float32)
                if not np.array_equal(m.main(a, b), a + b):
                    errors.append(seed)

        threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []


def test_executables_declaring_a_smaller_binding_alignment_take_arrays_in_place(
        monkeypatch, device_name, model):
    from hal_vmvx.loader import VmvxExecutable

    monkeypatch.setattr(VmvxExecutable, "binding_alignment", 1, raising=False)
    n = 4096
    base = aligned_host_array(4 * (n + 16)).view(np.float32)
    base[:] = np.arange(n + 16)
    unaligned = base[4:n + 4]  # 16 bytes past a 64-byte boundary
    with load_module(add_module(n=n, model=model), device_name) as m:
        np.testing.assert_array_equal(m.main(unaligned, unaligned), 2 * unaligned)
        assert m.main._staging == [None, None]
        m.main(np.repeat(unaligned, 2)[::2], unaligned)  # strided: still copied
        assert [s is not None for s in m.main._staging] == [True, False]


def test_large_results_are_recycled_only_once_the_caller_dropped_them(device_name, model):
    n = 1 << 18  # 1 MiB of float32: large enough to be recycled
    rng = np.random.default_rng(2)
    with load_module(add_module(n=n, model=model), device_name) as m:
        held = []
        for _ in range(6):  # results that are kept must never be overwritten
            a, b = rng.standard_normal((2, n), dtype=np.float32)
            held.append((a + b, m.main(a, b)))
        for want, got in held:
            np.testing.assert_array_equal(got, want)
        addresses = {got.ctypes.data for _, got in held}
        assert len(addresses) == 6
        del held, got
        seen = set()
        for _ in range(8):  # dropped at once: memory comes back from the spares
            a, b = rng.standard_normal((2, n), dtype=np.float32)
            out = m.main(a, b)
            np.testing.assert_array_equal(out, a + b)
            seen.add(out.ctypes.data)
            del out
        assert len(seen) <= 4

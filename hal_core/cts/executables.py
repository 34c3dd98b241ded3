"""Executables for the CTS dispatch suites.

Two sources, so that the suites test the driver and not one particular target:

* :func:`prepare` compiles hand-written kernel IR with the first registered target backend
  whose format the device can prepare (vmvx on the local drivers) and prepares it on the
  device. Tests that need one skip, naming the device's formats and the registered targets,
  when no target fits.
* :class:`AbiLoader` is a pure-Python executable format (``cts-local-abi``) that speaks the
  local dispatch ABI directly (:mod:`hal_core.hal.executable`). Kernel IR has no way to read a
  push constant or a workgroup id, so the suites use it to check that the driver hands each
  workgroup, its bindings and its constants to the executable as the ABI says. Only drivers
  that dispatch :class:`~hal_core.hal.executable.LocalExecutable` objects can run it; others
  list ``local_dispatch_abi`` in ``cts_unsupported``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from hal_core.compiler import kernel_ir as K
from hal_core.compiler.target import TargetOptions
from hal_core.errors import ModuleFormatError
from hal_core.hal.executable import EntryPoint, ExecutableLoader, LocalExecutable
from hal_core.registry import get_registry

TIMEOUT = 10.0


# ---------------------------------------------------------------------------------------------
# Executables compiled by a registered target


@dataclass(frozen=True)
class Prepared:
    """A prepared executable, the target that compiled it and each entry point's count."""

    executable: Any
    target: str
    format: str
    workgroup_counts: tuple[tuple[int, int, int], ...]
    entry_names: tuple[str, ...]


def pick_target(device: Any) -> tuple[str, str]:
    """``(target name, format)`` of the first registered target the device can run, or skip.

    ``--hal-target=NAME`` (environment ``HAL_CTS_TARGET``) picks that target instead.
    """
    registry = get_registry()
    seen = []
    wanted = os.environ.get("HAL_CTS_TARGET")
    if wanted:
        info = registry.target(wanted).info
        fmt = next((f for f in info.formats if device.can_prepare(f)), None)
        if fmt is None:
            raise pytest.UsageError(
                f"--hal-target={wanted}: device {device!r} can prepare none of its formats "
                f"({', '.join(info.formats)}); it prepares {', '.join(device.query_formats())}")
        return wanted, fmt
    for entry in registry.targets():
        if getattr(entry, "error", None):
            continue
        seen.append(f"{entry.name} ({', '.join(entry.info.formats) or 'no formats'})")
        for fmt in entry.info.formats:
            if device.can_prepare(fmt):
                return entry.name, fmt
    formats = ", ".join(device.query_formats()) or "none"
    pytest.skip(
        f"no registered target backend produces a format device {device!r} can prepare "
        f"(device formats: {formats}; registered targets: {'; '.join(seen) or 'none'}); "
        f"install a target plugin for this driver"
    )


def prepare(device: Any, *kernels: K.Kernel, name: str = "cts") -> Prepared:
    """Compile ``kernels`` (entry point i = kernel i) for ``device`` and prepare them on it."""
    target_name, _ = pick_target(device)
    target = get_registry().create_target(target_name)
    variant = target.compile(K.KernelExecutable(name, tuple(kernels)), TargetOptions())
    assert device.can_prepare(variant.format), (
        f"target {target_name!r} produced format {variant.format!r}, which device {device!r} "
        f"cannot prepare"
    )
    assert [e.name for e in variant.entry_points] == [k.name for k in kernels]
    executable = device.executable_cache.prepare(
        variant.format, variant.payload, variant.entry_points
    )
    return Prepared(
        executable,
        target_name,
        variant.format,
        tuple(tuple(e.workgroup_count) for e in variant.entry_points),
        tuple(e.name for e in variant.entry_points),
    )


def operand(
    binding: int, shape: Sequence[int], dtype: str, byte_offset: int = 0
) -> K.KernelOperand:
    return K.KernelOperand(binding, tuple(shape), dtype, byte_offset)


def ident(op: K.KernelOperand) -> K.MappedOperand:
    return K.MappedOperand(op, K.IndexingMap.identity(len(op.shape)))


def elementwise(
    name: str,
    shape: Sequence[int],
    dtype: str,
    opcode: str,
    *,
    const: float | None = None,
    ins: Sequence[K.KernelOperand] | None = None,
    out: K.KernelOperand | None = None,
) -> K.GenericKernel:
    """``out = opcode(in0, in1)``, or ``opcode(in0, const)`` when ``const`` is given.

    Default operands: binary ops read bindings 0 and 1 and write 2; with ``const``, read
    binding 0 and write binding 1.
    """
    shape = tuple(shape)
    if ins is None:
        ins = (
            [operand(0, shape, dtype)]
            if const is not None
            else [operand(0, shape, dtype), operand(1, shape, dtype)]
        )
    if out is None:
        out = operand(len(ins), shape, dtype)
    args = (K.Input(0), K.Const(const, dtype)) if const is not None else (K.Input(0), K.Input(1))
    return K.GenericKernel(
        name,
        shape,
        ("parallel",) * len(shape),
        tuple(ident(o) for o in ins),
        (ident(out),),
        (K.ScalarOp(opcode, args, dtype),),
        (K.Result(0),),
    )


def linear_ids(name: str, shape: Sequence[int], binding: int = 0) -> K.GenericKernel:
    """``out[p] = row-major linear index of p`` (int64), from IterIndex values."""
    shape = tuple(shape)
    body: list[K.ScalarOp] = []
    acc: K.ValueRef = K.IterIndex(0)
    for d in range(1, len(shape)):
        body.append(K.ScalarOp("mul", (acc, K.Const(shape[d], "int64")), "int64"))
        body.append(K.ScalarOp("add", (K.Result(len(body) - 1), K.IterIndex(d)), "int64"))
        acc = K.Result(len(body) - 1)
    if not body:  # a yield must be a value of the body
        body.append(K.ScalarOp("add", (acc, K.Const(0, "int64")), "int64"))
    return K.GenericKernel(
        name,
        shape,
        ("parallel",) * len(shape),
        (),
        (ident(operand(binding, shape, "int64")),),
        tuple(body),
        (K.Result(len(body) - 1),),
    )


def sum_all(name: str, n: int, dtype: str, acc: str) -> K.GenericKernel:
    """``out[()] = sum(in)`` accumulated in ``acc`` (binding 0 in, binding 1 out)."""
    body = (
        (K.ScalarOp("cast", (K.Input(0),), acc),)
        if acc != dtype
        else (K.ScalarOp("add", (K.Input(0), K.Const(0, dtype)), dtype),)
    )
    return K.GenericKernel(
        name,
        (n,),
        ("reduction",),
        (ident(operand(0, (n,), dtype)),),
        (K.MappedOperand(operand(1, (), acc), K.IndexingMap(1, ())),),
        body,
        (K.Result(0),),
        ("sum",),
    )


# ---------------------------------------------------------------------------------------------
# Submitting and reading back


def submit(device: Any, command_buffers: Sequence[Any], tables: Any = None) -> None:
    """Execute ``command_buffers`` in one submission and wait for it."""
    sem = device.create_semaphore()
    device.queue_execute([], [(sem, 1)], list(command_buffers), tables)
    sem.wait(1, TIMEOUT)


def upload(device: Any, array: np.ndarray) -> Any:
    """A new device buffer holding ``array``'s bytes (written with ``queue_write``)."""
    data = np.ascontiguousarray(array)
    buf = device.allocator.allocate_buffer(data.nbytes)
    write_bytes(device, buf, data)
    return buf


def write_bytes(device: Any, buffer: Any, data: Any, offset: int = 0) -> None:
    """``queue_write`` host ``data`` into ``buffer`` and wait: works whether or not the host
    can map the device's memory."""
    sem = device.create_semaphore()
    device.queue_write([], [(sem, 1)], data, buffer, offset)
    sem.wait(1, TIMEOUT)


def read_bytes(device: Any, buffer: Any, offset: int = 0, length: int | None = None) -> bytes:
    """``queue_read`` ``length`` bytes (default: to the end) of ``buffer`` and wait."""
    if length is None:
        length = buffer.size - offset
    out = bytearray(length)
    sem = device.create_semaphore()
    device.queue_read([], [(sem, 1)], buffer, offset, out)
    sem.wait(1, TIMEOUT)
    return bytes(out)


def download(device: Any, buffer: Any, dtype: Any, shape: Sequence[int] = (-1,)) -> np.ndarray:
    return np.frombuffer(read_bytes(device, buffer), dtype=dtype).reshape(shape)


# ---------------------------------------------------------------------------------------------
# The local-dispatch-ABI test format


ABI_FORMAT = "cts-local-abi"


def _ids(
    wg: tuple[int, int, int],
    first: int,
    last: int,
    bindings: Sequence[Any],
    constants: Sequence[int],
) -> None:
    """ids[i] = i + c0 (uint32) and hits[i] += 1 for each workgroup i of the tile."""
    ids, hits = bindings[0].view(np.uint32), bindings[1].view(np.uint32)
    ids[first:last] = np.arange(first, last, dtype=np.uint64) + constants[0]
    hits[first:last] += 1


def _axpb(
    wg: tuple[int, int, int],
    first: int,
    last: int,
    bindings: Sequence[Any],
    constants: Sequence[int],
) -> None:
    """out = c0 * x + c1 (int32 words, wrapping); one workgroup per element."""
    x, out = bindings[0].view(np.int32), bindings[1].view(np.int32)
    a, b = (np.array([c], np.uint32).view(np.int32)[0] for c in constants[:2])
    with np.errstate(over="ignore"):
        out[first:last] = a * x[first:last] + b


def _echo(
    wg: tuple[int, int, int],
    first: int,
    last: int,
    bindings: Sequence[Any],
    constants: Sequence[int],
) -> None:
    """Workgroup 0 stores every constant word, as received, into binding 0 (uint32)."""
    if first == 0 and last > 0:
        out = bindings[0].view(np.uint32)
        out[: len(constants)] = np.array(constants, dtype=np.uint64).astype(np.uint32)


ABI_KERNELS: dict[str, tuple[Callable[..., None], int, int]] = {
    # name -> (function, binding count, constant count)
    "ids": (_ids, 2, 1),
    "axpb": (_axpb, 2, 2),
    "echo4": (_echo, 1, 4),
}


class AbiExecutable(LocalExecutable):
    format = ABI_FORMAT

    def __init__(self, names: list[str], entry_points: tuple[EntryPoint, ...]) -> None:
        self.names = names
        self.entry_points = entry_points
        self.calls: list[tuple[int, tuple[int, int, int], int, int, tuple[int, ...]]] = []
        self._lock = threading.Lock()

    def run(
        self,
        entry: int,
        workgroup_count: tuple[int, int, int],
        first: int,
        last: int,
        bindings: Sequence[Any],
        constants: Sequence[int],
    ) -> None:
        with self._lock:
            self.calls.append((entry, tuple(workgroup_count), first, last, tuple(constants)))
        ABI_KERNELS[self.names[entry]][0](workgroup_count, first, last, bindings, constants)


class AbiLoader(ExecutableLoader):
    """Loads payloads that name kernels of :data:`ABI_KERNELS`, comma separated."""

    format = ABI_FORMAT

    def load(
        self, payload: bytes | memoryview, entry_points: Sequence[EntryPoint] = ()
    ) -> AbiExecutable:
        names = bytes(payload).decode().split(",")
        unknown = [n for n in names if n not in ABI_KERNELS]
        if unknown:
            raise ModuleFormatError(
                f"{ABI_FORMAT} payload names unknown kernels {unknown}; "
                f"known: {sorted(ABI_KERNELS)}"
            )
        if not entry_points:
            entry_points = [
                EntryPoint(n, binding_count=ABI_KERNELS[n][1], constant_count=ABI_KERNELS[n][2])
                for n in names
            ]
        return AbiExecutable(names, tuple(entry_points))


class AddressAxpb(LocalExecutable):
    """``axpb`` through the address mode of the local dispatch ABI: ``bindings`` is a ctypes
    array of base addresses and ``constants`` a ctypes uint32 array (records their types)."""

    format = ABI_FORMAT
    binding_kind = "address"
    entry_points = (EntryPoint("axpb", binding_count=2, constant_count=2),)

    def __init__(self) -> None:
        self.kinds: set[tuple[type, int, type]] = set()
        self._lock = threading.Lock()

    def run(self, entry: int, workgroup_count: tuple[int, int, int], first: int, last: int,
            bindings: Any, constants: Any) -> None:
        import ctypes

        with self._lock:
            self.kinds.add((type(bindings), len(bindings), type(constants)))
        n = last - first
        x = np.ctypeslib.as_array((ctypes.c_int32 * n).from_address(bindings[0] + 4 * first))
        out = np.ctypeslib.as_array((ctypes.c_int32 * n).from_address(bindings[1] + 4 * first))
        a, b = (np.array([c], np.uint32).view(np.int32)[0] for c in constants[:2])
        with np.errstate(over="ignore"):
            out[:] = a * x + b


def abi_executable(*names: str) -> AbiExecutable:
    return AbiLoader().load(",".join(names).encode())

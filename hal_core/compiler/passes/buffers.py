"""Buffer planning: where every buffer of a function lives.

* function arguments stay in their ``INPUT`` slots, constants in ``CONSTANT`` slots (shared
  by the module and deduplicated by content); a splat bigger than ``SPLAT_BYTES`` is stored
  as its element and size, and filled when the module is loaded;
* a computed function result is written in place into its ``OUTPUT`` slot; a result that is an
  argument, a constant, or a value already returned earlier gets a host ``Copy`` instead;
* every other buffer lives in the ``TRANSIENT`` arena at a 64-byte aligned offset. Lifetimes
  run from the first dispatch that touches a buffer to the last; buffers whose lifetimes do not
  overlap share space (first fit, in order of definition). The arena's size is the peak.
* a dispatch whose entry point asks for scratch (``VariantEntryPoint.scratch_size``) gets a
  transient region of that size living for that dispatch only, bound after the kernel's own
  bindings (``BufferPlan.scratch``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from hal_core.compiler.passes.dispatch import SPLAT_BYTES, FunctionDispatches
from hal_core.compiler.passes.folding import splat_value
from hal_core.errors import CompileError
from hal_core.module.model import BufferRef, Slot

ALIGNMENT = 64


def _align(n: int) -> int:
    return -(-n // ALIGNMENT) * ALIGNMENT


class ConstantPool:
    """The module's constants, deduplicated by content.

    Data is kept as given (a memoryview of the IR's array: no copy on the way to the file);
    content is compared through a digest, then byte for byte on a digest hit. A splat
    (:meth:`add_splat`) is kept as its element's bytes and its size.
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self.data: list[bytes | memoryview] = []
        self.splats: list[tuple[bytes, int]] = []   # (pattern, size); (b"", 0) for dense data
        self._index: dict[tuple[int, bytes], list[int]] = {}
        self._splat_index: dict[tuple[bytes, int], int] = {}

    def add(self, name: str, data: bytes | memoryview) -> int:
        import hashlib

        view = memoryview(data).cast("B")
        key = (view.nbytes, hashlib.blake2b(view, digest_size=16).digest())
        for i in self._index.get(key, ()):
            if memoryview(self.data[i]).cast("B") == view:
                return i
        self._index.setdefault(key, []).append(len(self.data))
        return self._append(name, data, b"", 0)

    def add_splat(self, name: str, pattern: bytes, size: int) -> int:
        """A constant of ``size`` bytes, ``pattern`` repeated (size a multiple of its length)."""
        key = (bytes(pattern), size)
        if key not in self._splat_index:
            self._splat_index[key] = self._append(name, b"", *key)
        return self._splat_index[key]

    def _append(self, name: str, data: bytes | memoryview, pattern: bytes, size: int) -> int:
        self.names.append(name)
        self.data.append(data)
        self.splats.append((pattern, size))
        return len(self.data) - 1


def constant_bytes(value) -> memoryview:  # value: numpy.ndarray
    """The little-endian bytes of a constant array: a view of it when it already is
    contiguous little-endian (the usual case), else one converted copy."""
    import numpy as np

    arr = np.ascontiguousarray(value)
    arr = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    return memoryview(arr.reshape(-1).view(np.uint8))


@dataclass
class BufferPlan:
    refs: dict[str, BufferRef] = field(default_factory=dict)   # storage value name -> region
    copies: list[tuple[BufferRef, BufferRef]] = field(default_factory=list)  # (source, target)
    transient_size: int = 0
    lifetimes: dict[str, tuple[int, int]] = field(default_factory=dict)  # transients only
    scratch: dict[int, BufferRef] = field(default_factory=dict)  # step -> its scratch region


def plan_buffers(fd: FunctionDispatches, pool: ConstantPool,
                 scratch: Sequence[int] = ()) -> BufferPlan:
    """``scratch[s]``: bytes of scratch dispatch ``fd.steps[s]`` needs (none if absent)."""
    fn = fd.function
    plan = BufferPlan()
    for i, a in enumerate(fn.args):
        plan.refs[a.name] = BufferRef(Slot.INPUT, i, 0, a.type.byte_size)
    for name, op in fd.constants.items():
        splat = splat_value(op)
        if splat is not None and op.type.byte_size > SPLAT_BYTES:
            pattern = bytes(constant_bytes(splat.reshape(1)))
            index = pool.add_splat(f"{fn.name}.{name}", pattern, op.type.byte_size)
            plan.refs[name] = BufferRef(Slot.CONSTANT, index, 0, op.type.byte_size)
            continue
        data = constant_bytes(op.attrs["value"])
        plan.refs[name] = BufferRef(Slot.CONSTANT, pool.add(f"{fn.name}.{name}", data), 0,
                                    data.nbytes)
    for k, v in enumerate(fn.results):
        root = fd.storage_of(v)
        target = BufferRef(Slot.OUTPUT, k, 0, v.type.byte_size)
        if root.name in plan.refs:
            if target.length:
                plan.copies.append((plan.refs[root.name], target))
        else:
            plan.refs[root.name] = target
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    sizes: dict[str, int] = {}
    for s, step in enumerate(fd.steps):
        for v in step.buffers:
            first.setdefault(v.name, s)
            last[v.name] = s
            sizes[v.name] = v.type.byte_size
    for name, start in first.items():
        if name in plan.refs:
            continue
        written = any(step.buffers[b].name == name for step in fd.steps for b in step.writes)
        if not written and sizes[name]:
            raise CompileError(f"in @{fn.name}: buffer %{name} is read but nothing computes"
                               " it; this is a compiler bug, please report it")
        plan.lifetimes[name] = (start, last[name])
    scratch_names = {}
    for s, size in enumerate(scratch):
        if size:
            name = scratch_names[s] = f" scratch of dispatch {s}"  # no IR value has a space
            plan.lifetimes[name] = (s, s)
            sizes[name] = size
    _place_transients(plan, sizes)
    plan.scratch = {s: plan.refs.pop(name) for s, name in scratch_names.items()}
    return plan


def _place_transients(plan: BufferPlan, sizes: dict[str, int]) -> None:
    placed: list[tuple[int, int, int, int]] = []  # (offset, size, first, last)
    for name, (lo, hi) in sorted(plan.lifetimes.items(), key=lambda kv: kv[1]):
        size = sizes[name]
        offset = 0
        if size:
            busy = sorted((o, o + _align(n)) for o, n, a, b in placed if not (b < lo or a > hi))
            for start, end in busy:
                if offset + size <= start:
                    break
                offset = max(offset, end)
            placed.append((offset, size, lo, hi))
            plan.transient_size = max(plan.transient_size, offset + size)
        plan.refs[name] = BufferRef(Slot.TRANSIENT, 0, offset, size)

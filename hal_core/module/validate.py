"""Semantic checks of an in-memory :class:`~hal_core.module.model.Module`.

The writer runs them before it serialises (so a compiler bug is caught where it happens) and
the reader runs them after it decodes (so a crafted or corrupted file that still parses cannot
send the runtime out of bounds). Every failure is a :class:`ModuleFormatError` that names the
module, the item, what was expected and what was found.
"""

from __future__ import annotations

from hal_core.errors import ModuleFormatError
from hal_core.module.model import (
    DTYPE_SIZES,
    Barrier,
    Copy,
    Dispatch,
    ExecutionModel,
    Fill,
    Module,
    Slot,
    dispatchable_entry_points,
)

U32 = 2**32
U64 = 2**64
# No tensor or arena beyond 256 TiB: far above any real program, and it keeps a crafted size
# from reaching the runtime's allocator.
MAX_BYTES = 2**48


class _Checker:
    def __init__(self, where: str, hint: str) -> None:
        self.where = where
        self.hint = hint

    def fail(self, what: str) -> None:
        raise ModuleFormatError(f"{self.where}: {what}; {self.hint}")

    def uint(self, value: object, limit: int, what: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < limit:
            self.fail(f"{what} must be an integer in [0, {limit}), found {value!r}")
        return value  # type: ignore[return-value]

    def text(self, value: object, what: str) -> None:
        if not isinstance(value, str):
            self.fail(f"{what} must be a string, found {type(value).__name__}")

    def blob(self, value: object, what: str) -> int:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            self.fail(f"{what} must be bytes or a memoryview, found {type(value).__name__}")
        if isinstance(value, memoryview) and not value.c_contiguous:
            self.fail(f"{what} must be a contiguous memoryview")
        return memoryview(value).nbytes  # type: ignore[arg-type]


def check_module(module: Module, where: str, hint: str) -> None:
    """Raise ModuleFormatError unless ``module`` is internally consistent.

    ``where`` names the module (file path or module name) in messages; ``hint`` says what to do.
    """
    c = _Checker(where, hint)
    c.text(module.name, "the module name")
    if not isinstance(module.execution_model, ExecutionModel):
        c.fail(f"execution model must be one of {[m.name for m in ExecutionModel]}, "
               f"found {module.execution_model!r}")
    for key, value in module.metadata.items():
        c.text(key, "a metadata key")
        c.text(value, f"metadata value of {key!r}")
    const_sizes = []
    for i, const in enumerate(module.constants):
        c.text(const.name, f"constant {i} name")
        what = f"constant {i} ({const.name!r})"
        size = c.blob(const.data, f"{what} data")
        if const.splat:
            c.blob(const.splat, f"{what} splat pattern")
            if size:
                c.fail(f"{what} has both data ({size} bytes) and a splat pattern; a splat "
                       "constant's data must be empty")
            if not isinstance(const.splat_size, int) or const.splat_size < 0 \
                    or const.splat_size % len(const.splat):
                c.fail(f"{what}: splat size must be a multiple of the {len(const.splat)}-byte "
                       f"pattern, found {const.splat_size!r}")
            size = const.splat_size
        elif const.splat_size:
            c.fail(f"{what}: splat size {const.splat_size} without a splat pattern")
        const_sizes.append(size)
    packed: dict[tuple[int, int], set[int]] = {}  # (executable, entry) -> packed bindings
    entry_points = [_check_executable(c, i, exe, packed)
                    for i, exe in enumerate(module.executables)]
    seen: set[str] = set()
    for function in module.functions:
        c.text(function.name, "a function name")
        if function.name in seen:
            c.fail(f"function names must be unique, found {function.name!r} twice")
        seen.add(function.name)
        _check_function(c, function, const_sizes, entry_points, packed)


def _check_executable(c: _Checker, index: int, exe, packed: dict) -> list:
    i = index
    c.text(exe.name, f"executable {i} name")
    what = f"executable {i} ({exe.name!r})"
    if not exe.variants:
        c.fail(f"{what} must have at least one variant, found none")
    first = None
    for v, variant in enumerate(exe.variants):
        vwhat = f"{what} variant {v}"
        c.text(variant.target_backend, f"{vwhat} target backend")
        c.text(variant.format, f"{vwhat} format")
        for feature in variant.features:
            c.text(feature, f"{vwhat} feature")
        c.blob(variant.payload, f"{vwhat} payload")
        for e, ep in enumerate(variant.entry_points):
            ewhat = f"{vwhat} entry point {e}"
            c.text(ep.name, f"{ewhat} name")
            if len(ep.workgroup_count) != 3 or len(ep.workgroup_size) != 3:
                c.fail(f"{ewhat} workgroup count and size must have 3 dimensions, found "
                       f"{ep.workgroup_count!r} and {ep.workgroup_size!r}")
            for d in ep.workgroup_count:
                c.uint(d, U32, f"{ewhat} workgroup count")
            for d in ep.workgroup_size:
                if c.uint(d, U32, f"{ewhat} workgroup size") == 0:
                    c.fail(f"{ewhat} workgroup size must be at least 1 in every dimension, "
                           f"found {ep.workgroup_size!r}")
            c.uint(ep.binding_count, U32, f"{ewhat} binding count")
            c.uint(ep.constant_count, U32, f"{ewhat} constant count")
            c.uint(ep.scratch_size, MAX_BYTES + 1, f"{ewhat} scratch size")
        dispatchable = dispatchable_entry_points(variant)
        n = len(dispatchable)
        for e, ep in enumerate(variant.entry_points):
            for p in ep.constant_packs:
                pwhat = f"{vwhat} entry point {e} constant pack of binding {p.binding}"
                c.uint(p.packed_size, MAX_BYTES + 1, f"{pwhat} packed size")
                if e >= n or c.uint(p.binding, U32, pwhat) >= ep.binding_count:
                    c.fail(f"{pwhat} must name a binding (below {ep.binding_count}) of an entry "
                           f"point a host program dispatches (below {n})")
                if not n <= c.uint(p.entry_point, U32, pwhat) < len(variant.entry_points):
                    c.fail(f"{pwhat} names entry point {p.entry_point}; load-time entry points "
                           f"must follow the {n} dispatchable ones")
                if variant.entry_points[p.entry_point].binding_count != 2:
                    c.fail(f"{pwhat}: its packing entry point {p.entry_point} must take 2 "
                           f"bindings (constant, packed), found "
                           f"{variant.entry_points[p.entry_point].binding_count}")
                packed.setdefault((index, e), set()).add(p.binding)
        layout = [(ep.binding_count, ep.constant_count) for ep in dispatchable]
        if first is None:
            first = layout
        elif layout != first:
            c.fail(f"{vwhat} must have the same entry points (binding and constant counts) as "
                   f"variant 0: expected {first}, found {layout}")
    return first or []


def _check_function(c: _Checker, function, const_sizes: list[int], entry_points: list,
                    packed: dict) -> None:
    fwhat = f"function {function.name!r}"
    slot_sizes: dict[Slot, list[int]] = {Slot.CONSTANT: const_sizes}
    for slot, types in ((Slot.INPUT, function.inputs), (Slot.OUTPUT, function.outputs)):
        sizes = []
        for i, t in enumerate(types):
            twhat = f"{fwhat} {slot.name.lower()} {i}"
            if t.dtype not in DTYPE_SIZES:
                c.fail(f"{twhat} dtype must be one of {sorted(DTYPE_SIZES)}, found {t.dtype!r}")
            for d in t.shape:
                c.uint(d, 2**63, f"{twhat} dimension")
            size = t.byte_size
            if size > MAX_BYTES:
                c.fail(f"{twhat} must be at most {MAX_BYTES} bytes, found {size} bytes "
                       f"(shape {t.shape})")
            sizes.append(size)
        slot_sizes[slot] = sizes
    c.uint(function.transient_size, MAX_BYTES + 1, f"{fwhat} transient size")
    slot_sizes[Slot.TRANSIENT] = [function.transient_size]

    def ref(r, what: str, writable: bool = False) -> None:
        if not isinstance(r.slot, Slot):
            c.fail(f"{what} slot must be one of {[s.name for s in Slot]}, found {r.slot!r}")
        index = c.uint(r.index, U32, f"{what} index")
        offset = c.uint(r.offset, U64, f"{what} offset")
        length = c.uint(r.length, U64, f"{what} length")
        sizes = slot_sizes[r.slot]
        if index >= len(sizes):
            c.fail(f"{what} refers to {r.slot.name} {index}, but the function has "
                   f"{len(sizes)} such buffer(s)")
        if offset + length > sizes[index]:
            c.fail(f"{what} range [{offset}, {offset + length}) must lie within "
                   f"{r.slot.name} {index} of {sizes[index]} bytes")
        if writable and r.slot in (Slot.INPUT, Slot.CONSTANT):
            c.fail(f"{what} writes to read-only {r.slot.name} {index}")

    for n, op in enumerate(function.program):
        owhat = f"{fwhat} op {n} ({type(op).__name__})"
        if isinstance(op, Dispatch):
            exe = c.uint(op.executable, U32, f"{owhat} executable")
            if exe >= len(entry_points):
                c.fail(f"{owhat} executable index must be below {len(entry_points)}, "
                       f"found {exe}")
            entry = c.uint(op.entry_point, U32, f"{owhat} entry point")
            if entry >= len(entry_points[exe]):
                c.fail(f"{owhat} entry point index must be below {len(entry_points[exe])} "
                       f"(executable {exe}), found {entry}")
            bindings, constants = entry_points[exe][entry]
            if len(op.bindings) != bindings or len(op.constants) != constants:
                c.fail(f"{owhat} must pass {bindings} binding(s) and {constants} constant(s) "
                       f"to entry point {entry} of executable {exe}, found "
                       f"{len(op.bindings)} and {len(op.constants)}")
            for b, binding in enumerate(op.bindings):
                ref(binding, f"{owhat} binding {b}")
            for b in sorted(packed.get((exe, entry), ())):
                if op.bindings[b].slot is not Slot.CONSTANT:
                    c.fail(f"{owhat} binding {b} must be a CONSTANT region: a variant packs "
                           f"it at load, found {op.bindings[b].slot.name}")
            for k in op.constants:
                if isinstance(k, bool) or not isinstance(k, int) or not -2**31 <= k < 2**32:
                    c.fail(f"{owhat} push constants must be 32-bit integers, found {k!r}")
        elif isinstance(op, Copy):
            ref(op.source, f"{owhat} source")
            ref(op.target, f"{owhat} target", writable=True)
            if op.source.length != op.target.length:
                c.fail(f"{owhat} source and target lengths must match, found "
                       f"{op.source.length} and {op.target.length}")
        elif isinstance(op, Fill):
            ref(op.target, f"{owhat} target", writable=True)
            if not isinstance(op.pattern, bytes) or len(op.pattern) not in (1, 2, 4):
                c.fail(f"{owhat} pattern must be 1, 2 or 4 bytes, found {op.pattern!r}")
            if op.target.length % len(op.pattern):
                c.fail(f"{owhat} target length must be a multiple of the pattern's "
                       f"{len(op.pattern)} bytes, found {op.target.length}")
        elif not isinstance(op, Barrier):
            c.fail(f"{owhat} is not a host op (expected Dispatch, Copy, Fill or Barrier)")

"""One compute shader under construction: buffers, typed element access, loops, the grid.

Every binding is a ``StorageBuffer`` block of ``uint data[]`` (set 0, binding i). Elements of
any kernel-IR dtype are read from and written to those words: 8- and 16-bit elements with
shifts and masks (stores with atomic and/or, so invocations writing neighbouring bytes of one
word never race, unless the lowering gives one invocation the whole word: ``store_word``),
64-bit elements as two words. That needs no 8/16-bit storage feature and lets
operands of different dtypes share a binding at any element-aligned offset.

Values live in registers of a few SPIR-V types (see :func:`Shader.reg`): bool for ``bool``;
uint32 for every integer up to 32 bits, kept canonical (sign-extended for signed dtypes,
zero-extended for unsigned); uint64 for 64-bit integers; f32 for float16 (rounded to half
precision after every op) and float32; f64 for float64.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, Iterator

from hal_core.compiler.kernel_ir import DTYPES, KernelOperand
from hal_vulkan.errors import UnsupportedKernelError
from hal_vulkan.spirv.builder import (
    MODE_SIGNED_ZERO_INF_NAN_PRESERVE, SCOPE_DEVICE, SCOPE_WORKGROUP, SEM_ACQ_REL, SEM_WORKGROUP,
    BuiltIn, Cap, Deco, FunctionBuilder, ModuleBuilder, Op, SC,
)

GLSL_UNPACK_HALF, GLSL_PACK_HALF = 62, 58

#: Makes the shader of the kernel being lowered: ``(local_size, fast_math=False) -> Shader``.
ShaderFactory = Callable[..., "Shader"]
#: The target environment's limit lookup (:meth:`hal_vulkan.target_env.TargetEnv.limit`).
Limit = Callable[[str], Any]


class Shader:
    def __init__(self, module: ModuleBuilder, num_bindings: int,
                 local_size: tuple[int, int, int], name: str,
                 preserve_float_specials: bool = False) -> None:
        self.m = module
        #: Ask for IEEE signed zeros, infinities and NaNs (SPV_KHR_float_controls): kernel IR's
        #: semantics tell -0.0 from 0.0 (1/x), which drivers may otherwise fold away.
        self.preserve_float_specials = preserve_float_specials
        self.f = FunctionBuilder(self.m)
        self.name = name
        self.local_size = local_size
        self.u32 = self.m.t_int(32)
        self.f32 = self.m.t_float(32)
        self.bool = self.m.t_bool()
        self._interface: list[int] = []
        word_array = self.m.t_runtime_array(self.u32, 4)
        self._word_ptr = self.m.t_ptr(SC.StorageBuffer, self.u32)
        # Each entry point declares its own buffer variables: its interface then names exactly
        # the bindings its pipeline layout has.
        self.buffers = []
        for i in range(num_bindings):
            block = self.m.t_struct_block(word_array, f"b{i}")
            var = self.m.variable(self.m.t_ptr(SC.StorageBuffer, block), SC.StorageBuffer)
            self.m.decorate(var, Deco.DescriptorSet, 0)
            self.m.decorate(var, Deco.Binding, i)
            self.buffers.append(var)
            self._interface.append(var)
        self._builtins: dict[int, int] = {}
        self._vec4_views: dict[int, int] = {}

    # ----- registers and constants

    def reg(self, dtype: str) -> int:
        if dtype == "bool":
            return self.bool
        if dtype in ("float16", "float32"):
            return self.f32
        if dtype == "float64":
            return self.m.t_float(64)
        if dtype in ("int64", "uint64"):
            return self.m.t_int(64)
        return self.u32

    def u(self, value: int) -> int:
        return self.m.const(self.u32, value & 0xFFFFFFFF)

    def const(self, dtype: str, value: int | float | bool) -> int:
        """``value`` as a canonical register constant of ``dtype``."""
        if dtype == "bool":
            return self.m.const(self.bool, bool(value))
        if dtype == "float16":
            import numpy as np
            return self.m.const(self.f32, float(np.float32(np.float16(value))))
        if dtype in ("float32", "float64"):
            return self.m.const(self.reg(dtype), float(value))
        return self.m.const(self.reg(dtype), int(value))

    def builtin(self, which: int) -> int:
        """The uvec3 builtin ``which`` (WorkgroupId, LocalInvocationId, ...), loaded."""
        if which not in self._builtins:
            v3 = self.m.t_vec(self.u32, 3)
            var = self.m.variable(self.m.t_ptr(SC.Input, v3), SC.Input)
            self.m.decorate(var, Deco.BuiltIn, which)
            self._interface.append(var)
            self._builtins[which] = var
        return self.f.load(self.m.t_vec(self.u32, 3), self._builtins[which])

    def component(self, vec: int, i: int) -> int:
        return self.f.op(Op.CompositeExtract, self.u32, vec, i)

    # ----- uint32 index arithmetic (wrapping; used for element indices and byte addresses)

    def add(self, a: int, b: int) -> int:
        return self.f.op(Op.IAdd, self.u32, a, b)

    def mul(self, a: int, b: int) -> int:
        return self.f.op(Op.IMul, self.u32, a, b)

    def udiv(self, a: int, b: int) -> int:
        return self.f.op(Op.UDiv, self.u32, a, b)

    def umod(self, a: int, b: int) -> int:
        return self.f.op(Op.UMod, self.u32, a, b)

    def ult(self, a: int, b: int) -> int:
        return self.f.op(Op.ULessThan, self.bool, a, b)

    def linear(self, constant: int, terms: list[tuple[int, int]]) -> int:
        """``constant + sum(coeff * value)`` over uint32 ``(coeff, value_id)`` terms."""
        acc = None
        for coeff, value in terms:
            if coeff == 0:
                continue
            t = value if coeff == 1 else self.mul(self.u(coeff), value)
            acc = t if acc is None else self.add(acc, t)
        if acc is None:
            return self.u(constant)
        return acc if constant == 0 else self.add(acc, self.u(constant))

    # ----- element access

    def _word_ptr_at(self, binding: int, word: int) -> int:
        return self.f.op(Op.AccessChain, self._word_ptr, self.buffers[binding], self.u(0), word)

    def vec4_view(self, binding: int) -> int:
        """A second variable on ``binding`` seeing it as ``uvec4 data[]`` (16-byte accesses)."""
        if binding not in self._vec4_views:
            uvec4 = self.m.t_vec(self.u32, 4)
            block = self.m.t_struct_block(self.m.t_runtime_array(uvec4, 16), f"v{binding}")
            var = self.m.variable(self.m.t_ptr(SC.StorageBuffer, block), SC.StorageBuffer)
            self.m.decorate(var, Deco.DescriptorSet, 0)
            self.m.decorate(var, Deco.Binding, binding)
            self._interface.append(var)
            self._vec4_views[binding] = var
        return self._vec4_views[binding]

    def load_vec4(self, binding: int, index: int) -> int:
        """Float vec4 number ``index`` (16-byte units) of ``binding``."""
        uvec4 = self.m.t_vec(self.u32, 4)
        ptr = self.f.op(Op.AccessChain, self.m.t_ptr(SC.StorageBuffer, uvec4),
                        self.vec4_view(binding), self.u(0), index)
        return self.f.op(Op.Bitcast, self.m.t_vec(self.f32, 4), self.f.load(uvec4, ptr))

    def store_vec4(self, binding: int, index: int, value: int) -> None:
        uvec4 = self.m.t_vec(self.u32, 4)
        ptr = self.f.op(Op.AccessChain, self.m.t_ptr(SC.StorageBuffer, uvec4),
                        self.vec4_view(binding), self.u(0), index)
        self.f.store(ptr, self.f.op(Op.Bitcast, uvec4, value))

    def load_word(self, binding: int, word: int) -> int:
        return self.f.load(self.u32, self._word_ptr_at(binding, word))

    def load(self, operand: KernelOperand, index: int) -> int:
        """Element ``index`` (a uint32 id) of ``operand``, as a register of its dtype."""
        dtype, size = operand.dtype, DTYPES[operand.dtype]
        addr = self.linear(operand.byte_offset, [(size, index)])
        word = self.f.op(Op.ShiftRightLogical, self.u32, addr, self.u(2))
        w = self.load_word(operand.binding, word)
        if size == 4:
            return self.f.op(Op.Bitcast, self.f32, w) if dtype == "float32" else w
        if size == 8:
            hi = self.load_word(operand.binding, self.add(word, self.u(1)))
            if dtype == "float64":  # through uvec2: f64 needs no 64-bit integers
                v2 = self.f.op(Op.CompositeConstruct, self.m.t_vec(self.u32, 2), w, hi)
                return self.f.op(Op.Bitcast, self.m.t_float(64), v2)
            u64 = self.m.t_int(64)
            v = self.f.op(Op.BitwiseOr, u64, self.f.op(Op.UConvert, u64, w),
                          self.f.op(Op.ShiftLeftLogical, u64, self.f.op(Op.UConvert, u64, hi),
                                    self.u(32)))
            return self.f.op(Op.Bitcast, self.m.t_float(64), v) if dtype == "float64" else v
        shift = self.mul(self.f.op(Op.BitwiseAnd, self.u32, addr, self.u(3)), self.u(8))
        bits = self.f.op(Op.BitwiseAnd, self.u32,
                         self.f.op(Op.ShiftRightLogical, self.u32, w, shift),
                         self.u((1 << (8 * size)) - 1))
        if dtype == "bool":
            return self.f.op(Op.INotEqual, self.bool, bits, self.u(0))
        if dtype == "float16":
            v2 = self.f.ext(self.m.t_vec(self.f32, 2), GLSL_UNPACK_HALF, bits)
            return self.f.op(Op.CompositeExtract, self.f32, v2, 0)
        return self.canonical(dtype, bits)

    def store(self, operand: KernelOperand, index: int, value: int) -> None:
        """Store register ``value`` (of the operand's dtype) at element ``index``."""
        dtype, size = operand.dtype, DTYPES[operand.dtype]
        addr = self.linear(operand.byte_offset, [(size, index)])
        word = self.f.op(Op.ShiftRightLogical, self.u32, addr, self.u(2))
        if size == 4:
            bits = self.f.op(Op.Bitcast, self.u32, value) if dtype == "float32" else value
            self.f.store(self._word_ptr_at(operand.binding, word), bits)
            return
        if size == 8:
            if dtype == "float64":
                v2 = self.f.op(Op.Bitcast, self.m.t_vec(self.u32, 2), value)
                lo = self.f.op(Op.CompositeExtract, self.u32, v2, 0)
                hi = self.f.op(Op.CompositeExtract, self.u32, v2, 1)
            else:
                u64 = self.m.t_int(64)
                lo = self.f.op(Op.UConvert, self.u32, value)
                hi = self.f.op(Op.UConvert, self.u32,
                               self.f.op(Op.ShiftRightLogical, u64, value, self.u(32)))
            self.f.store(self._word_ptr_at(operand.binding, word), lo)
            self.f.store(self._word_ptr_at(operand.binding, self.add(word, self.u(1))), hi)
            return
        bits = self.subword_bits(dtype, value)
        shift = self.mul(self.f.op(Op.BitwiseAnd, self.u32, addr, self.u(3)), self.u(8))
        mask = self.f.op(Op.ShiftLeftLogical, self.u32, self.u((1 << (8 * size)) - 1), shift)
        ptr = self._word_ptr_at(operand.binding, word)
        # Clear then set this element's bits; other invocations own the other bits of the word.
        self.f.op(Op.AtomicAnd, self.u32, ptr, self.u(SCOPE_DEVICE), self.u(0),
                  self.f.op(Op.Not, self.u32, mask))
        self.f.op(Op.AtomicOr, self.u32, ptr, self.u(SCOPE_DEVICE), self.u(0),
                  self.f.op(Op.ShiftLeftLogical, self.u32, bits, shift))

    # ----- 64-bit integers as word pairs, for kernels that only move or produce them (no Int64)

    def store_index64(self, operand: KernelOperand, index: int, value: int) -> None:
        """Store a non-negative uint32 ``value`` into an int64/uint64 element (high word 0)."""
        word = self.f.op(Op.ShiftRightLogical, self.u32,
                         self.linear(operand.byte_offset, [(8, index)]), self.u(2))
        self.f.store(self._word_ptr_at(operand.binding, word), value)
        self.f.store(self._word_ptr_at(operand.binding, self.add(word, self.u(1))), self.u(0))

    def load_words64(self, operand: KernelOperand, index: int) -> tuple[int, int]:
        """(low, high) words of 8-byte element ``index``."""
        word = self.f.op(Op.ShiftRightLogical, self.u32,
                         self.linear(operand.byte_offset, [(8, index)]), self.u(2))
        return (self.load_word(operand.binding, word),
                self.load_word(operand.binding, self.add(word, self.u(1))))

    def copy_element(self, src: KernelOperand, src_index: int, dst: KernelOperand,
                     dst_index: int) -> None:
        """dst[dst_index] = src[src_index] for one dtype; 8-byte elements move as two words."""
        if DTYPES[src.dtype] != 8:
            self.store(dst, dst_index, self.load(src, src_index))
            return
        lo, hi = self.load_words64(src, src_index)
        word = self.f.op(Op.ShiftRightLogical, self.u32,
                         self.linear(dst.byte_offset, [(8, dst_index)]), self.u(2))
        self.f.store(self._word_ptr_at(dst.binding, word), lo)
        self.f.store(self._word_ptr_at(dst.binding, self.add(word, self.u(1))), hi)

    def subword_bits(self, dtype: str, value: int) -> int:
        """The 8 or 16 bits a 1- or 2-byte element stores, in the low bits of a uint32."""
        if dtype == "bool":
            return self.f.op(Op.Select, self.u32, value, self.u(1), self.u(0))
        if dtype == "float16":
            v2 = self.f.op(Op.CompositeConstruct, self.m.t_vec(self.f32, 2), value,
                           self.m.const(self.f32, 0.0))
            return self.f.ext(self.u32, GLSL_PACK_HALF, v2)
        return self.f.op(Op.BitwiseAnd, self.u32, value, self.u((1 << (8 * DTYPES[dtype])) - 1))

    def store_word(self, operand: KernelOperand, first_index: int, word: int) -> None:
        """Store a whole word of packed elements starting at (word-aligned) ``first_index``."""
        addr = self.linear(operand.byte_offset, [(DTYPES[operand.dtype], first_index)])
        self.f.store(self._word_ptr_at(operand.binding,
                                       self.f.op(Op.ShiftRightLogical, self.u32, addr,
                                                 self.u(2))), word)

    def canonical(self, dtype: str, v: int) -> int:
        """Wrap a uint32 register to ``dtype``'s width (sign- or zero-extended)."""
        if dtype in ("int8", "int16"):
            s = self.u(32 - 8 * DTYPES[dtype])
            return self.f.op(Op.ShiftRightArithmetic, self.u32,
                             self.f.op(Op.ShiftLeftLogical, self.u32, v, s), s)
        if dtype in ("uint8", "uint16"):
            return self.f.op(Op.BitwiseAnd, self.u32, v, self.u((1 << (8 * DTYPES[dtype])) - 1))
        return v

    # ----- structured control flow (mutable state lives in Function variables)

    def var(self, type_id: int, init: int | None = None) -> int:
        ptr = self.f.local(type_id)
        if init is not None:
            self.f.store(ptr, init)
        return ptr

    @contextmanager
    def if_(self, cond: int) -> Iterator[None]:
        then, merge = self.m.new_id(), self.m.new_id()
        self.f.raw(Op.SelectionMerge, merge, 0)
        self.f.raw(Op.BranchConditional, cond, then, merge)
        self.f.label(then)
        yield
        self.f.branch(merge)
        self.f.label(merge)

    @contextmanager
    def loop(self, start: int, stop: int, step: int | None = None) -> Iterator[int]:
        """``for i in range(start, stop, step)`` over uint32 ids; yields the loaded ``i``."""
        i = self.var(self.u32, start)
        header, body, cont, merge = (self.m.new_id() for _ in range(4))
        self.f.branch(header)
        self.f.label(header)
        cur = self.f.load(self.u32, i)
        cond = self.ult(cur, stop)
        self.f.raw(Op.LoopMerge, merge, cont, 0)
        self.f.raw(Op.BranchConditional, cond, body, merge)
        self.f.label(body)
        yield cur
        self.f.branch(cont)
        self.f.label(cont)
        self.f.store(i, self.add(self.f.load(self.u32, i), step or self.u(1)))
        self.f.branch(header)
        self.f.label(merge)

    def barrier(self) -> None:
        """Workgroup execution and shared-memory barrier."""
        self.f.raw(Op.ControlBarrier, self.u(SCOPE_WORKGROUP), self.u(SCOPE_WORKGROUP),
                   self.u(SEM_ACQ_REL | SEM_WORKGROUP))

    def shared_array(self, type_id: int, length: int) -> int:
        arr = self.m.t_array(type_id, length)
        var = self.m.variable(self.m.t_ptr(SC.Workgroup, arr), SC.Workgroup)
        self._interface.append(var)
        return var

    def shared_ptr(self, var: int, type_id: int, index: int) -> int:
        return self.f.op(Op.AccessChain, self.m.t_ptr(SC.Workgroup, type_id), var, index)

    # ----- the grid

    def workgroup_linear_id(self, grid: tuple[int, int, int]) -> int:
        """Linear workgroup id of a grid split over x and y (x fastest)."""
        wg = self.builtin(BuiltIn.WorkgroupId)
        x = self.component(wg, 0)
        if grid[1] == 1 and grid[2] == 1:
            return x
        return self.add(x, self.mul(self.component(wg, 1), self.u(grid[0])))

    def local_id(self, axis: int = 0) -> int:
        return self.component(self.builtin(BuiltIn.LocalInvocationId), axis)

    def finish(self) -> None:
        """Add the function to the module as entry point ``name``."""
        self.f.finish()
        self.m.name(self.f.id, self.name)
        # Before SPIR-V 1.4 the interface lists only Input/Output variables; from 1.4 every
        # global the entry point uses.
        interface = (self._interface if self.m.version >= (1, 4)
                     else list(self._builtins.values()))
        self.m.entry_point(self.f.id, self.name, interface, self.local_size)
        if self.preserve_float_specials:
            self.m.capabilities.add(Cap.SignedZeroInfNanPreserve)
            if self.m.version < (1, 4):
                self.m.extensions.add("SPV_KHR_float_controls")
            for width in (16, 32, 64):
                if ("float", width) in self.m._types:
                    self.m.execution_mode(self.f.id, MODE_SIGNED_ZERO_INF_NAN_PRESERVE, width)


def split_grid(workgroups: int, max_count: tuple[int, int, int]) -> tuple[int, int, int]:
    """A (x, y, 1) grid of at least ``workgroups`` groups within ``max_count`` per dim."""
    workgroups = max(workgroups, 1)
    if workgroups <= max_count[0]:
        return (workgroups, 1, 1)
    y = -(-workgroups // max_count[0])
    x = -(-workgroups // y)
    if y > max_count[1]:
        raise UnsupportedKernelError(f"{workgroups} workgroups exceed the device's "
                                     f"maxComputeWorkGroupCount {max_count}")
    return (x, y, 1)

"""A small SPIR-V module builder: ids, types, constants, decorations, one function's blocks.

Only what compute shaders for Vulkan need. Types and constants are deduplicated (SPIR-V forbids
two identical non-aggregate type declarations). The binary layout follows the spec's logical
layout: capabilities, extensions, imports, memory model, entry point, execution modes, names,
decorations, types/constants/globals, functions.
"""

from __future__ import annotations

import struct

MAGIC = 0x07230203
GENERATOR = 0  # no registered generator id; 0 is allowed ("unknown")


class Op:
    """Opcode numbers (SPIR-V unified spec)."""

    Name, Extension, ExtInstImport, ExtInst = 5, 10, 11, 12
    MemoryModel, EntryPoint, ExecutionMode, Capability = 14, 15, 16, 17
    TypeVoid, TypeBool, TypeInt, TypeFloat, TypeVector = 19, 20, 21, 22, 23
    TypeArray, TypeRuntimeArray, TypeStruct, TypePointer, TypeFunction = 28, 29, 30, 32, 33
    ConstantTrue, ConstantFalse, Constant, ConstantComposite = 41, 42, 43, 44
    Function, FunctionEnd, Variable, Load, Store, AccessChain = 54, 56, 59, 61, 62, 65
    Decorate, MemberDecorate, CompositeConstruct, CompositeExtract = 71, 72, 80, 81
    ConvertFToU, ConvertFToS, ConvertSToF, ConvertUToF = 109, 110, 111, 112
    UConvert, SConvert, FConvert, Bitcast = 113, 114, 115, 124
    SNegate, FNegate, IAdd, FAdd, ISub, FSub, IMul, FMul = 126, 127, 128, 129, 130, 131, 132, 133
    UDiv, SDiv, FDiv, UMod, SRem = 134, 135, 136, 137, 138
    VectorTimesScalar = 142
    IsNan, IsInf = 156, 157
    LogicalEqual, LogicalNotEqual, LogicalOr, LogicalAnd, LogicalNot, Select = (
        164, 165, 166, 167, 168, 169)
    IEqual, INotEqual, UGreaterThan, SGreaterThan, UGreaterThanEqual, SGreaterThanEqual = (
        170, 171, 172, 173, 174, 175)
    ULessThan, SLessThan, ULessThanEqual, SLessThanEqual = 176, 177, 178, 179
    FOrdEqual, FUnordNotEqual = 180, 183
    FOrdLessThan, FOrdGreaterThan, FOrdLessThanEqual, FOrdGreaterThanEqual = 184, 186, 188, 190
    ShiftRightLogical, ShiftRightArithmetic, ShiftLeftLogical = 194, 195, 196
    BitwiseOr, BitwiseXor, BitwiseAnd, Not = 197, 198, 199, 200
    ControlBarrier, MemoryBarrier = 224, 225
    AtomicAnd, AtomicOr = 240, 241
    LoopMerge, SelectionMerge, Label, Branch, BranchConditional, Return = (
        246, 247, 248, 249, 250, 253)


class Cap:
    Shader, Float16, Float64, Int64, Int16, Int8 = 1, 9, 10, 11, 22, 39
    SignedZeroInfNanPreserve = 4466


#: Execution mode of SPV_KHR_float_controls (core in SPIR-V 1.4).
MODE_SIGNED_ZERO_INF_NAN_PRESERVE = 4461


class SC:
    """Storage classes."""

    Input, Uniform, Workgroup, Private, Function, PushConstant, StorageBuffer = 1, 2, 4, 6, 7, 9, 12


class Deco:
    Block, ArrayStride, BuiltIn, NonWritable = 2, 6, 11, 24
    Binding, DescriptorSet, Offset = 33, 34, 35


class BuiltIn:
    NumWorkgroups, WorkgroupId, LocalInvocationId, GlobalInvocationId = 24, 26, 27, 28
    LocalInvocationIndex = 29


#: Scopes and memory semantics for barriers and atomics.
SCOPE_DEVICE, SCOPE_WORKGROUP = 1, 2
SEM_ACQ_REL, SEM_UNIFORM, SEM_WORKGROUP = 0x8, 0x40, 0x100


def _string_words(text: str) -> list[int]:
    raw = text.encode() + b"\0"
    raw += b"\0" * (-len(raw) % 4)
    return list(struct.unpack(f"<{len(raw) // 4}I", raw))


def _inst(opcode: int, operands: list[int]) -> list[int]:
    return [((len(operands) + 1) << 16) | opcode, *operands]


class ModuleBuilder:
    """Builds one SPIR-V module with a single GLCompute entry point."""

    def __init__(self, version: tuple[int, int] = (1, 3)) -> None:
        self.version = version
        self._next = 1
        self.capabilities: set[int] = {Cap.Shader}
        self.extensions: set[str] = set()
        self._imports: list[int] = []
        self._entry: list[int] = []
        self._modes: list[int] = []
        self._names: list[int] = []
        self._annotations: list[int] = []
        self._globals: list[int] = []
        self._functions: list[int] = []
        self._types: dict[tuple, int] = {}
        self._consts: dict[tuple, int] = {}
        self._glsl: int | None = None

    def new_id(self) -> int:
        self._next += 1
        return self._next - 1

    # ----- types and constants (deduplicated)

    def _type(self, key: tuple, opcode: int, operands: list[int]) -> int:
        if key not in self._types:
            rid = self.new_id()
            self._globals += _inst(opcode, [rid, *operands])
            self._types[key] = rid
        return self._types[key]

    def t_void(self) -> int:
        return self._type(("void",), Op.TypeVoid, [])

    def t_bool(self) -> int:
        return self._type(("bool",), Op.TypeBool, [])

    def t_int(self, width: int, signed: bool = False) -> int:
        self.capabilities |= {64: {Cap.Int64}, 16: {Cap.Int16}, 8: {Cap.Int8}}.get(width, set())
        return self._type(("int", width, signed), Op.TypeInt, [width, int(signed)])

    def t_float(self, width: int) -> int:
        self.capabilities |= {64: {Cap.Float64}, 16: {Cap.Float16}}.get(width, set())
        return self._type(("float", width), Op.TypeFloat, [width])

    def t_vec(self, elem: int, n: int) -> int:
        return self._type(("vec", elem, n), Op.TypeVector, [elem, n])

    def t_ptr(self, storage: int, pointee: int) -> int:
        return self._type(("ptr", storage, pointee), Op.TypePointer, [storage, pointee])

    def t_array(self, elem: int, length: int, stride: int | None = None) -> int:
        n = self.const(self.t_int(32), length)
        rid = self._type(("array", elem, length, stride), Op.TypeArray, [elem, n])
        if stride is not None and ("stride", rid) not in self._types:
            self._types[("stride", rid)] = rid
            self.decorate(rid, Deco.ArrayStride, stride)
        return rid

    def t_runtime_array(self, elem: int, stride: int) -> int:
        rid = self._type(("rtarray", elem, stride), Op.TypeRuntimeArray, [elem])
        if ("stride", rid) not in self._types:
            self._types[("stride", rid)] = rid
            self.decorate(rid, Deco.ArrayStride, stride)
        return rid

    def t_struct_block(self, member: int, tag: str) -> int:
        """A Block-decorated struct of one member at offset 0 (a buffer's interface type).

        ``tag`` keeps structs of different buffers apart (each needs its own decorations).
        """
        key = ("struct", member, tag)
        if key in self._types:
            return self._types[key]
        rid = self._type(key, Op.TypeStruct, [member])
        self.decorate(rid, Deco.Block)
        self._annotations += _inst(Op.MemberDecorate, [rid, 0, Deco.Offset, 0])
        return rid

    def t_function(self, ret: int) -> int:
        return self._type(("fn", ret), Op.TypeFunction, [ret])

    def const(self, type_id: int, value: int | float | bool) -> int:
        """A scalar constant of ``type_id`` (an int, float or bool type made by this builder)."""
        kind = next(k for k, v in self._types.items() if v == type_id)
        key = (type_id, kind[0], repr(value))
        if key in self._consts:
            return self._consts[key]
        rid = self.new_id()
        if kind[0] == "bool":
            self._globals += _inst(Op.ConstantTrue if value else Op.ConstantFalse, [type_id, rid])
        else:
            width = kind[1]
            if kind[0] == "float":
                fmt = {16: "<e", 32: "<f", 64: "<d"}[width]
                raw = struct.pack(fmt, float(value))
            else:
                raw = (int(value) & ((1 << width) - 1)).to_bytes(max(width // 8, 4), "little")
            raw += b"\0" * (-len(raw) % 4)
            words = list(struct.unpack(f"<{len(raw) // 4}I", raw))
            self._globals += _inst(Op.Constant, [type_id, rid, *words])
        self._consts[key] = rid
        return rid

    def const_composite(self, type_id: int, parts: list[int]) -> int:
        key = (type_id, "composite", tuple(parts))
        if key not in self._consts:
            rid = self.new_id()
            self._globals += _inst(Op.ConstantComposite, [type_id, rid, *parts])
            self._consts[key] = rid
        return self._consts[key]

    # ----- globals, decorations, names

    def variable(self, ptr_type: int, storage: int) -> int:
        rid = self.new_id()
        self._globals += _inst(Op.Variable, [ptr_type, rid, storage])
        return rid

    def decorate(self, target: int, decoration: int, *literals: int) -> None:
        self._annotations += _inst(Op.Decorate, [target, decoration, *literals])

    def name(self, target: int, text: str) -> None:
        self._names += _inst(Op.Name, [target, *_string_words(text)])

    def glsl(self) -> int:
        if self._glsl is None:
            self._glsl = self.new_id()
            self._imports += _inst(Op.ExtInstImport, [self._glsl, *_string_words("GLSL.std.450")])
        return self._glsl

    def entry_point(self, fn: int, name: str, interface: list[int],
                    local_size: tuple[int, int, int]) -> None:
        self._entry += _inst(Op.EntryPoint, [5, fn, *_string_words(name), *interface])
        self._modes += _inst(Op.ExecutionMode, [fn, 17, *local_size])

    def execution_mode(self, fn: int, mode: int, *literals: int) -> None:
        self._modes += _inst(Op.ExecutionMode, [fn, mode, *literals])

    def add_function(self, words: list[int]) -> None:
        self._functions += words

    # ----- output

    def assemble(self) -> bytes:
        words: list[int] = [MAGIC, (self.version[0] << 16) | (self.version[1] << 8), GENERATOR,
                            self._next, 0]
        for cap in sorted(self.capabilities):
            words += _inst(Op.Capability, [cap])
        for ext in sorted(self.extensions):
            words += _inst(Op.Extension, _string_words(ext))
        words += self._imports
        words += _inst(Op.MemoryModel, [0, 1])  # Logical, GLSL450
        words += self._entry + self._modes + self._names + self._annotations + self._globals
        words += self._functions
        return struct.pack(f"<{len(words)}I", *words)


class FunctionBuilder:
    """Instructions of one ``void main()``; Function-scope variables are hoisted to its entry."""

    def __init__(self, module: ModuleBuilder) -> None:
        self.m = module
        self.id = module.new_id()
        self._vars: list[int] = []
        self._body: list[int] = []
        self._entry_label = module.new_id()

    def op(self, opcode: int, result_type: int, *operands: int) -> int:
        rid = self.m.new_id()
        self._body += _inst(opcode, [result_type, rid, *operands])
        return rid

    def raw(self, opcode: int, *operands: int) -> None:
        self._body += _inst(opcode, list(operands))

    def ext(self, result_type: int, instruction: int, *operands: int) -> int:
        return self.op(Op.ExtInst, result_type, self.m.glsl(), instruction, *operands)

    def local(self, pointee: int) -> int:
        rid = self.m.new_id()
        self._vars += _inst(Op.Variable, [self.m.t_ptr(SC.Function, pointee), rid, SC.Function])
        return rid

    def load(self, type_id: int, ptr: int) -> int:
        return self.op(Op.Load, type_id, ptr)

    def store(self, ptr: int, value: int) -> None:
        self.raw(Op.Store, ptr, value)

    def label(self, rid: int) -> None:
        self.raw(Op.Label, rid)

    def branch(self, target: int) -> None:
        self.raw(Op.Branch, target)

    def finish(self) -> None:
        void = self.m.t_void()
        words = _inst(Op.Function, [void, self.id, 0, self.m.t_function(void)])
        words += _inst(Op.Label, [self._entry_label]) + self._vars + self._body
        words += _inst(Op.Return, []) + _inst(Op.FunctionEnd, [])
        self.m.add_function(words)

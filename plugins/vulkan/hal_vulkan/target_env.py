"""Vulkan target environments: what codegen may assume about the device it compiles for.

Text form (as IREE's attribute)::

    #vk.target_env<v1.1, r(120), [VK_KHR_spirv_1_4, VK_KHR_storage_buffer_storage_class],
                   {maxComputeSharedMemorySize = 16384 : i32,
                    maxComputeWorkGroupInvocations = 1024 : i32,
                    maxComputeWorkGroupSize = dense<[128, 8, 4]> : vector<3xi32>,
                    subgroupFeatures = 7 : i32, subgroupSize = 64 : i32, shaderInt64 = true}>

The dict holds limits (integers, or 3-vectors as ``dense<[x, y, z]>``) and device feature booleans
(``shaderInt64 = true``). Keys left out take the conservative defaults of :data:`DEFAULT_LIMITS`
(features default to false). :func:`parse_target_env` reads the text (errors name the position,
what was expected and what was found), :func:`render_target_env` writes it back, and
:func:`target_env_from_options` applies ``--vulkan-target-triple`` then ``--vulkan-target-env``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from hal_core.errors import CompileError

#: Limits assumed when an environment does not state them (the Vulkan 1.1 required minimums,
#: except maxStorageBufferRange which lavapipe and most desktop drivers exceed).
DEFAULT_LIMITS: dict[str, int | tuple[int, int, int]] = {
    "maxComputeSharedMemorySize": 16384,
    "maxComputeWorkGroupInvocations": 128,
    "maxComputeWorkGroupSize": (128, 128, 64),
    "maxComputeWorkGroupCount": (65535, 65535, 65535),
    "maxStorageBufferRange": 1 << 27,
    "subgroupFeatures": 1,
    "subgroupSize": 4,
    "minSubgroupSize": 0,   # VK_EXT_subgroup_size_control's range; 0 = not stated
    "maxSubgroupSize": 0,
}
VECTOR_LIMITS = frozenset({"maxComputeWorkGroupSize", "maxComputeWorkGroupCount"})
#: Device feature booleans codegen knows (VkPhysicalDeviceFeatures and Vulkan 1.1/1.2 structs).
FEATURES = ("shaderInt64", "shaderFloat64", "shaderInt16", "shaderFloat16", "shaderInt8",
            "storageBuffer8BitAccess", "storageBuffer16BitAccess", "subgroupSizeControl",
            "computeFullSubgroups", "vulkanMemoryModel")


@dataclass(frozen=True)
class TargetEnv:
    version: tuple[int, int] = (1, 1)
    revision: int = 0
    extensions: tuple[str, ...] = ()
    limits: tuple[tuple[str, int | tuple[int, int, int]], ...] = ()
    features: frozenset[str] = field(default_factory=frozenset)
    vendor: str | None = None  # "NVIDIA:DiscreteGPU" etc., informational

    def limit(self, name: str) -> int | tuple[int, int, int]:
        return dict(self.limits).get(name, DEFAULT_LIMITS[name])

    def has(self, feature: str) -> bool:
        return feature in self.features

    @property
    def is_cpu(self) -> bool:
        """The environment names a CPU device ("Mesa:CPU", lavapipe): codegen then picks
        kernels without shared-memory tiles (:mod:`hal_vulkan.spirv.cpu_gemm`)."""
        return self.vendor is not None and self.vendor.rsplit(":", 1)[-1] == "CPU"

    @property
    def spirv_version(self) -> tuple[int, int]:
        """SPIR-V 1.3 for Vulkan 1.1, 1.5 for 1.2, 1.6 for 1.3.

        VK_KHR_spirv_1_4 would allow 1.4 on a 1.1 device, but codegen needs nothing from 1.4,
        and 1.3 keeps every module valid under ``spirv-val --target-env vulkan1.1``.
        """
        if self.version >= (1, 3):
            return (1, 6)
        return (1, 5) if self.version >= (1, 2) else (1, 3)


def _env(version, limits, features, exts=(), vendor=None) -> TargetEnv:
    return TargetEnv(version=version, revision=0, extensions=tuple(exts),
                     limits=tuple(sorted(limits.items())), features=frozenset(features),
                     vendor=vendor)


_DESKTOP_FEATURES = set(FEATURES)
# VK_KHR_shader_float_controls is left out: listing it makes codegen ask for IEEE signed zeros
# (SignedZeroInfNanPreserve), which the driver must then enable; Vulkan 1.2+ envs get it core.
_DESKTOP_EXTENSIONS = ("VK_KHR_spirv_1_4", "VK_KHR_storage_buffer_storage_class")
#: Named target triples for ``--vulkan-target-triple``. All say Vulkan 1.1 (SPIR-V 1.3): codegen
#: uses nothing newer, and such modules load on every Vulkan 1.1+ driver.
TRIPLES: dict[str, TargetEnv] = {
    # Mesa lavapipe 22.x (llvmpipe): Vulkan 1.3 on the CPU.
    "lavapipe": _env((1, 1), {
        "maxComputeSharedMemorySize": 32768, "maxComputeWorkGroupInvocations": 1024,
        "maxComputeWorkGroupSize": (1024, 1024, 1024), "maxStorageBufferRange": 1 << 27,
        "subgroupFeatures": 0x7F, "subgroupSize": 8}, _DESKTOP_FEATURES,
        _DESKTOP_EXTENSIONS, "Mesa:CPU"),
    "ampere": _env((1, 1), {
        "maxComputeSharedMemorySize": 49152, "maxComputeWorkGroupInvocations": 1024,
        "maxComputeWorkGroupSize": (1024, 1024, 64),
        "maxComputeWorkGroupCount": (2147483647, 65535, 65535),
        "maxStorageBufferRange": (1 << 32) - 1, "subgroupFeatures": 0xFF, "subgroupSize": 32},
        _DESKTOP_FEATURES, _DESKTOP_EXTENSIONS,
        "NVIDIA:DiscreteGPU"),
    "mobile": _env((1, 1), {
        "maxComputeSharedMemorySize": 16384, "maxComputeWorkGroupInvocations": 128,
        "maxComputeWorkGroupSize": (128, 128, 64), "maxStorageBufferRange": 1 << 27,
        "subgroupFeatures": 0x1, "subgroupSize": 4}, (), ("VK_KHR_storage_buffer_storage_class",),
        "ARM:IntegratedGPU"),
}
TRIPLES["hopper"] = TRIPLES["ampere"]  # same Vulkan-visible limits on the H100/H200 driver
TRIPLE_ALIASES = {"ampere-unknown-linux": "ampere", "hopper-unknown-linux": "hopper",
                  "cpu-lavapipe-unknown": "lavapipe", "valhall-unknown-android31": "mobile"}
DEFAULT_TRIPLE = "lavapipe"


def target_env_from_options(triple: str | None, env_text: str | None) -> TargetEnv:
    """The environment named by ``triple`` (default lavapipe), replaced by ``env_text`` if given."""
    if env_text:
        return parse_target_env(env_text)
    name = TRIPLE_ALIASES.get(triple or DEFAULT_TRIPLE, triple or DEFAULT_TRIPLE)
    if name not in TRIPLES:
        raise CompileError(f"--vulkan-target-triple: unknown triple {triple!r}; expected one of "
                           f"{', '.join(sorted(TRIPLES) + sorted(TRIPLE_ALIASES))}")
    return TRIPLES[name]


# ---------------------------------------------------------------------------------------------
# Text form

_TOKEN = re.compile(r"\s*(#vk\.target_env<|dense<|vector<|[A-Za-z_][\w.]*(?::[A-Za-z]\w*)?"
                    r"|-?\d+|[<>\[\]{}(),=:])")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, expected: str) -> CompileError:
        found = self.text[self.pos:self.pos + 20].strip() or "end of text"
        return CompileError(f"--vulkan-target-env: at column {self.pos + 1}: expected {expected}, "
                            f"found {found!r} (syntax: #vk.target_env<v1.1, r(120), [EXT, ...], "
                            "{name = value : i32, ...}>)")

    def peek(self) -> str:
        m = _TOKEN.match(self.text, self.pos)
        return m.group(1) if m else ""

    def take(self, expected: str | None = None, what: str | None = None) -> str:
        m = _TOKEN.match(self.text, self.pos)
        if m is None or (expected is not None and m.group(1) != expected):
            raise self.error(what or repr(expected))
        self.pos = m.end()
        return m.group(1)

    def integer(self, what: str) -> int:
        tok = self.peek()
        if not re.fullmatch(r"-?\d+", tok):
            raise self.error(what)
        self.take()
        return int(tok)


def parse_target_env(text: str) -> TargetEnv:
    """Parse ``#vk.target_env<...>``; a CompileError names the column, expected and found."""
    p = _Parser(text)
    p.take("#vk.target_env<", "'#vk.target_env<'")
    ver = p.take(None, "a version such as v1.1")
    m = re.fullmatch(r"v(\d+)\.(\d+)", ver)
    if m is None:
        p.pos -= len(ver)
        raise p.error("a version such as v1.1")
    version = (int(m.group(1)), int(m.group(2)))
    p.take(",", "',' after the version")
    p.take("r", "'r(' with the SPIR-V revision")
    p.take("(", "'('")
    revision = p.integer("an integer revision")
    p.take(")", "')'")
    p.take(",", "',' after the revision")
    p.take("[", "'[' opening the extension list")
    exts: list[str] = []
    while p.peek() != "]":
        name = p.take(None, "an extension name or ']'")
        if not name.startswith("VK_") and not name.startswith("SPV_"):
            p.pos -= len(name)
            raise p.error("an extension name (VK_...) or ']'")
        exts.append(name)
        if p.peek() == ",":
            p.take(",")
    p.take("]", "']'")
    p.take(",", "',' after the extension list")
    vendor = None
    if p.peek() != "{":
        vendor = p.take(None, "'VENDOR:DeviceType' or '{'")
        p.take(",", "',' after the vendor")
    limits, features = _parse_dict(p)
    p.take(">", "'>' closing the environment")
    if p.text[p.pos:].strip():
        raise p.error("end of text")
    if version < (1, 1):
        raise CompileError(f"--vulkan-target-env: Vulkan v{version[0]}.{version[1]} is too old; "
                           "vulkan-spirv needs v1.1 or later")
    return TargetEnv(version, revision, tuple(exts), tuple(sorted(limits.items())),
                     frozenset(features), vendor)


def _parse_dict(p: _Parser) -> tuple[dict, set[str]]:
    p.take("{", "'{' opening the limits")
    limits: dict = {}
    features: set[str] = set()
    while p.peek() != "}":
        key_at = p.pos
        key = p.take(None, "a limit name or '}'")
        p.take("=", f"'=' after {key}")
        if key in FEATURES:  # true/false/unit, or an integer (the device dump writes 1 : i32)
            val = p.take(None, "true, false or an integer")
            if val not in ("true", "false", "unit") and not re.fullmatch(r"-?\d+", val):
                p.pos -= len(val)
                raise p.error(f"true, false or an integer for feature {key}")
            if val not in ("false", "0"):
                features.add(key)
            if p.peek() == ":":
                p.take(":")
                p.take(None, "a type such as i32")
        elif key in VECTOR_LIMITS:
            p.take("dense<", "dense<[x, y, z]>")
            p.take("[", "'['")
            vals = [p.integer("an integer")]
            while p.peek() == ",":
                p.take(",")
                vals.append(p.integer("an integer"))
            p.take("]", "']'")
            p.take(">", "'>'")
            if len(vals) != 3:
                raise p.error(f"3 values for {key}, got {len(vals)}")
            if p.peek() == ":":
                p.take(":")
                p.take("vector<", "vector<3xi32>")
                m = re.compile(r"\s*3\s*x\s*i32\s*>").match(p.text, p.pos)
                if m is None:
                    raise p.error("3xi32>")
                p.pos = m.end()
            limits[key] = tuple(vals)
        elif key in DEFAULT_LIMITS:
            limits[key] = p.integer(f"an integer for {key}")
            if p.peek() == ":":
                p.take(":")
                p.take(None, "a type such as i32")
        else:
            p.pos = key_at
            raise p.error("a known limit (" + ", ".join(sorted(DEFAULT_LIMITS)) + ") or feature ("
                          + ", ".join(FEATURES) + ")")
        if p.peek() == ",":
            p.take(",")
    p.take("}", "'}'")
    return limits, features


def render_target_env(env: TargetEnv) -> str:
    """``env`` in the ``#vk.target_env<...>`` syntax that :func:`parse_target_env` reads."""
    items = []
    for key, val in env.limits:
        if isinstance(val, tuple):
            items.append(f"{key} = dense<[{', '.join(map(str, val))}]> : vector<3xi32>")
        else:
            items.append(f"{key} = {val} : i{64 if key == 'maxStorageBufferRange' else 32}")
    items += [f"{f} = true" for f in FEATURES if f in env.features]
    vendor = f"{env.vendor}, " if env.vendor else ""
    return (f"#vk.target_env<v{env.version[0]}.{env.version[1]}, r({env.revision}), "
            f"[{', '.join(env.extensions)}], {vendor}{{{', '.join(items)}}}>")


def with_limits(env: TargetEnv, **limits: int | tuple[int, int, int]) -> TargetEnv:
    """A copy of ``env`` with some limits replaced (tests and the driver's device dump)."""
    merged = dict(env.limits) | limits
    return replace(env, limits=tuple(sorted(merged.items())))

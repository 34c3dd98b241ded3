"""Hand-written SPIR-V kernels for the driver tests, assembled with ``spirv-as`` (spirv-tools).

They follow the ``spirv`` format's interface: descriptor set 0, binding i = dispatch binding
slot i (storage buffers), push constants as uint32 words from offset 0, LocalSize in the shader.

* ``axpy`` (bindings a, b, out; constants n, scale as f32 bits): ``out[i] = a[i] * scale + b[i]``
  for ``i < n``, 64 invocations a workgroup.
* ``iota`` (binding out; no constants): ``out[i] = i`` (uint32), 64 a workgroup, over x and y
  workgroups: ``i = gid.x + gid.y * 64 * num_workgroups.x``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from hal_core.hal.executable import EntryPoint

#: AXPY_IOTA assembled, committed so that machines without spirv-tools (the GPU machine) run the
#: tests too; test_vulkan_driver checks it matches the text. Regenerate with:
#: python -c "import vk_kernels as k; k.write_binary()" (in this directory, spirv-tools installed)
BINARY = Path(__file__).with_name("axpy_iota.spv")

AXPY_IOTA = """
               OpCapability Shader
               OpMemoryModel Logical GLSL450
               OpEntryPoint GLCompute %axpy "axpy" %gid
               OpEntryPoint GLCompute %iota "iota" %gid %nwg
               OpExecutionMode %axpy LocalSize 64 1 1
               OpExecutionMode %iota LocalSize 64 1 1
               OpDecorate %gid BuiltIn GlobalInvocationId
               OpDecorate %nwg BuiltIn NumWorkgroups
               OpDecorate %rtf ArrayStride 4
               OpDecorate %rtu ArrayStride 4
               OpMemberDecorate %fbuf 0 Offset 0
               OpDecorate %fbuf Block
               OpMemberDecorate %ubuf 0 Offset 0
               OpDecorate %ubuf Block
               OpDecorate %a DescriptorSet 0
               OpDecorate %a Binding 0
               OpDecorate %b DescriptorSet 0
               OpDecorate %b Binding 1
               OpDecorate %o DescriptorSet 0
               OpDecorate %o Binding 2
               OpDecorate %ids DescriptorSet 0
               OpDecorate %ids Binding 0
               OpMemberDecorate %pc 0 Offset 0
               OpMemberDecorate %pc 1 Offset 4
               OpDecorate %pc Block
       %void = OpTypeVoid
         %fn = OpTypeFunction %void
       %uint = OpTypeInt 32 0
        %int = OpTypeInt 32 1
      %float = OpTypeFloat 32
       %bool = OpTypeBool
        %v3u = OpTypeVector %uint 3
   %p_in_v3u = OpTypePointer Input %v3u
        %gid = OpVariable %p_in_v3u Input
        %nwg = OpVariable %p_in_v3u Input
        %rtf = OpTypeRuntimeArray %float
        %rtu = OpTypeRuntimeArray %uint
       %fbuf = OpTypeStruct %rtf
       %ubuf = OpTypeStruct %rtu
     %p_fbuf = OpTypePointer StorageBuffer %fbuf
     %p_ubuf = OpTypePointer StorageBuffer %ubuf
          %a = OpVariable %p_fbuf StorageBuffer
          %b = OpVariable %p_fbuf StorageBuffer
          %o = OpVariable %p_fbuf StorageBuffer
        %ids = OpVariable %p_ubuf StorageBuffer
         %pc = OpTypeStruct %uint %float
       %p_pc = OpTypePointer PushConstant %pc
     %consts = OpVariable %p_pc PushConstant
     %p_sb_f = OpTypePointer StorageBuffer %float
     %p_sb_u = OpTypePointer StorageBuffer %uint
     %p_pc_u = OpTypePointer PushConstant %uint
     %p_pc_f = OpTypePointer PushConstant %float
         %i0 = OpConstant %int 0
         %i1 = OpConstant %int 1
        %u64 = OpConstant %uint 64
       %axpy = OpFunction %void None %fn
         %e0 = OpLabel
          %g = OpLoad %v3u %gid
          %x = OpCompositeExtract %uint %g 0
         %pn = OpAccessChain %p_pc_u %consts %i0
          %n = OpLoad %uint %pn
        %inb = OpULessThan %bool %x %n
               OpSelectionMerge %end None
               OpBranchConditional %inb %body %end
       %body = OpLabel
         %pa = OpAccessChain %p_sb_f %a %i0 %x
         %va = OpLoad %float %pa
         %pb = OpAccessChain %p_sb_f %b %i0 %x
         %vb = OpLoad %float %pb
         %ps = OpAccessChain %p_pc_f %consts %i1
          %s = OpLoad %float %ps
          %m = OpFMul %float %va %s
          %r = OpFAdd %float %m %vb
         %po = OpAccessChain %p_sb_f %o %i0 %x
               OpStore %po %r
               OpBranch %end
        %end = OpLabel
               OpReturn
               OpFunctionEnd
       %iota = OpFunction %void None %fn
         %e1 = OpLabel
         %g2 = OpLoad %v3u %gid
         %gx = OpCompositeExtract %uint %g2 0
         %gy = OpCompositeExtract %uint %g2 1
         %nw = OpLoad %v3u %nwg
        %nwx = OpCompositeExtract %uint %nw 0
        %row = OpIMul %uint %nwx %u64
        %off = OpIMul %uint %gy %row
        %idx = OpIAdd %uint %gx %off
         %pi = OpAccessChain %p_sb_u %ids %i0 %idx
               OpStore %pi %idx
               OpReturn
               OpFunctionEnd
"""

ENTRY_POINTS = (
    EntryPoint("axpy", (64, 1, 1), binding_count=3, constant_count=2),
    EntryPoint("iota", (64, 1, 1), binding_count=1, constant_count=0),
)


def assemble(text: str, target_env: str = "vulkan1.1") -> bytes:
    """SPIR-V words for ``text``; validated with spirv-val for ``target_env``."""
    spirv_as = shutil.which("spirv-as")
    if spirv_as is None:
        raise RuntimeError("spirv-as not found; apt-get install spirv-tools")
    with tempfile.TemporaryDirectory() as tmp:
        src, out = os.path.join(tmp, "k.spvasm"), os.path.join(tmp, "k.spv")
        with open(src, "w") as f:
            f.write(text)
        subprocess.run([spirv_as, "--target-env", target_env, src, "-o", out], check=True,
                       capture_output=True, text=True)
        subprocess.run(["spirv-val", "--target-env", target_env, out], check=True,
                       capture_output=True, text=True)
        with open(out, "rb") as f:
            return f.read()


def axpy_iota() -> bytes:
    return BINARY.read_bytes()


def write_binary() -> None:
    BINARY.write_bytes(assemble(AXPY_IOTA))


_reason: list[str | None] = []


def vulkan_unavailable() -> str | None:
    if not _reason:
        from hal_core.errors import DeviceUnavailableError
        from hal_vulkan.driver.instance import Instance

        try:
            instance = Instance()
        except DeviceUnavailableError as e:
            _reason.append(str(e))
        else:
            _reason.append(None if instance.physical_devices else "no Vulkan physical devices")
            instance.destroy()
    return _reason[0]


def require_vulkan() -> None:
    reason = vulkan_unavailable()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"Vulkan is required in CI (.ci/run installs it): {reason}")
    pytest.skip(f"Vulkan is not usable here: {reason}")



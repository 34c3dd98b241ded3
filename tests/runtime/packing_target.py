"""A test target that packs constant matmul weights once at load (HAL_EXTERNAL_DRIVERS).

``packer`` is vmvx with one change: a matmul whose rhs (K, N) is a module constant is compiled
as ``lhs @ packed.T`` reading a packed (N, K) copy, and the variant declares a ConstantPack
whose load-time entry point (a vmvx transpose kernel) writes that copy. The variant keeps the
``vmvx-bytecode`` format, so the local drivers run it with the vmvx loader.
"""

from __future__ import annotations

import dataclasses

from hal_core.compiler import kernel_ir as K
from hal_core.compiler.target import TargetBackend
from hal_core.descriptors import TargetInfo
from hal_core.hookspecs import hookimpl
from hal_core.module.model import ConstantPack

HAL_PLUGIN_API_VERSION = "1.0"


def pack_kernel(name: str, k: int, n: int, dtype: str) -> K.GenericKernel:
    """(K, N) at binding 0 -> its transpose (N, K) at binding 1."""
    src = K.KernelOperand(0, (k, n), dtype)
    dst = K.KernelOperand(1, (n, k), dtype)
    transpose = K.IndexingMap(2, (K.AffineExpr((0, 1)), K.AffineExpr((1, 0))))
    return K.GenericKernel(name, (n, k), ("parallel", "parallel"),
                           (K.MappedOperand(src, transpose),),
                           (K.MappedOperand(dst, K.IndexingMap.identity(2)),), (),
                           (K.Input(0),))


class Packer(TargetBackend):
    name = "packer"

    def compile(self, executable, options):
        from hal_vmvx.target import VmvxTarget

        kernels, packs, pack_kernels = [], [], {}  # one packing entry per (K, N, dtype)
        for kern in executable.kernels:
            if (isinstance(kern, K.MatmulKernel) and kern.rhs.constant
                    and len(kern.rhs.shape) == 2 and not kern.transpose_b):
                k, n = kern.rhs.shape
                packed = dataclasses.replace(kern.rhs, shape=(n, k))
                kern = dataclasses.replace(kern, rhs=packed, transpose_b=True)
                key = (k, n, packed.dtype)
                if key not in pack_kernels:
                    pack_kernels[key] = pack_kernel(f"pack_{k}x{n}_{packed.dtype}", *key)
                packs.append((len(kernels), packed, list(pack_kernels).index(key)))
            kernels.append(kern)
        all_kernels = kernels + list(pack_kernels.values())
        v = VmvxTarget().compile(K.KernelExecutable(executable.name, tuple(all_kernels)),
                                 options)
        eps = list(v.entry_points)
        for i, rhs, j in packs:
            eps[i] = dataclasses.replace(eps[i], constant_packs=(
                ConstantPack(rhs.binding, len(kernels) + j, rhs.byte_size),))
        return dataclasses.replace(v, target_backend="packer", entry_points=tuple(eps))


def create():
    return Packer()


@hookimpl
def hal_register_targets():
    return [TargetInfo(name="packer", description="vmvx that packs constant matmul weights",
                       factory=__name__ + ":create", formats=("vmvx-bytecode",))]

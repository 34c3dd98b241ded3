"""A test target that compiles every named kernel through hal_core.compiler.decompose
(HAL_EXTERNAL_DRIVERS): what a new target does before it has its own named lowerings.

Format ``staged-vmvx``: a payload is a JSON line ``{"stages": [[first, count], ...]}`` (per
entry point, its stages in a vmvx program) then the vmvx-bytecode program. An entry point of a
decomposed kernel has one workgroup and runs its stages one after another; its scratch (the
entry point's ``scratch_size``) arrives as the binding after the kernel's own.
"""

from __future__ import annotations

import json

from hal_core.compiler import kernel_ir as K
from hal_core.compiler.decompose import decompose
from hal_core.compiler.target import TargetBackend
from hal_core.descriptors import LoaderInfo, TargetInfo
from hal_core.hal.executable import ExecutableLoader, LocalExecutable
from hal_core.hookspecs import hookimpl
from hal_core.module.model import Variant, VariantEntryPoint

HAL_PLUGIN_API_VERSION = "1.0"
FORMAT = "staged-vmvx"
DECOMPOSED: list[str] = []  # names of the kernels compiled through decompose


class Decomposer(TargetBackend):
    name = "decomposer"

    def compile(self, executable, options):
        from hal_vmvx.target import VmvxTarget

        stages, flat, eps = [], [], []
        for kern in executable.kernels:
            d = decompose(kern)
            steps = [kern] if d is None else list(d.kernels)
            if d is not None:
                DECOMPOSED.append(kern.name)
            stages.append([len(flat), len(steps)])
            flat += steps
            scratch = d.scratch_size if d is not None else 0
            eps.append(VariantEntryPoint(kern.name, (1, 1, 1),
                                         binding_count=K.binding_count(kern) + bool(scratch),
                                         scratch_size=scratch))
        v = VmvxTarget().compile(K.KernelExecutable(executable.name, tuple(flat)), options)
        counts = [ep.workgroup_count[0] for ep in v.entry_points]
        header = json.dumps({"stages": stages, "counts": counts}).encode() + b"\n"
        return Variant("decomposer", FORMAT, (), tuple(eps), header + bytes(v.payload))


class StagedExecutable(LocalExecutable):
    format = FORMAT
    binding_alignment = 1

    def __init__(self, stages, counts, inner, entry_points):
        self.stages, self.counts, self.inner = stages, counts, inner
        self.entry_points = tuple(entry_points)

    def run(self, entry, workgroup_count, first, last, bindings, constants):
        if first != 0:
            return  # one workgroup does it all
        start, n = self.stages[entry]
        for s in range(start, start + n):
            c = self.counts[s]
            self.inner.run(s, (c, 1, 1), 0, c, bindings, ())


class StagedLoader(ExecutableLoader):
    format = FORMAT

    def load(self, payload, entry_points):
        from hal_vmvx.loader import VmvxLoader

        raw = bytes(payload)
        line, rest = raw.split(b"\n", 1)
        meta = json.loads(line)
        return StagedExecutable(meta["stages"], meta["counts"], VmvxLoader().load(rest, ()),
                                entry_points)


def create_target():
    return Decomposer()


def create_loader():
    return StagedLoader()


@hookimpl
def hal_register_targets():
    return [TargetInfo(name="decomposer", description="named kernels through decompose()",
                       factory=__name__ + ":create_target", formats=(FORMAT,))]


@hookimpl
def hal_register_executable_loaders():
    return [LoaderInfo(FORMAT, "staged vmvx for the decomposer test target",
                       __name__ + ":create_loader")]

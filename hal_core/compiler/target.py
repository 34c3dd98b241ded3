"""The target backend interface: kernel IR in, one executable variant out.

A target backend plugin registers a :class:`~hal_core.descriptors.TargetInfo` whose factory
returns a :class:`TargetBackend`. The compiler hands it a
:class:`~hal_core.compiler.kernel_ir.KernelExecutable` (never tensor IR) and gets back a
:class:`~hal_core.module.model.Variant`: the format string, the device features it requires,
one :class:`~hal_core.module.model.VariantEntryPoint` per kernel *in the same order* (the host
program's Dispatch names entry points by index, the same in every variant) and the payload.

Tiling is the target's decision, so each entry point carries the workgroup count the target
chose for its kernel; the compiler copies it into the Dispatch it records.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from hal_core.compiler.kernel_ir import KernelExecutable
from hal_core.module.model import ExecutionModel, Variant


@dataclass(frozen=True)
class TargetOptions:
    """Options for one target backend.

    ``options`` are target-specific strings, e.g. ``{"cpu": "znver3", "triple": "x86_64-..."}``
    for llvm-cpu (``hal compile --vmvx-foo=bar`` style flags end up here, prefix removed).
    A backend rejects an option it does not know with a CompileError naming it.
    """

    options: dict[str, str] = field(default_factory=dict, hash=False)
    execution_model: ExecutionModel = ExecutionModel.ASYNC

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.options.get(key, default)


class TargetBackend(ABC):
    """Compiles kernel IR for one target (one format)."""

    #: The target's name as registered (``"vmvx"``, ``"llvm-cpu"``).
    name: str

    @abstractmethod
    def compile(self, executable: KernelExecutable, options: TargetOptions) -> Variant:
        """Return one variant with an entry point per kernel of ``executable``, in order.

        Raise :class:`~hal_core.errors.CompileError` for kernels or options it cannot handle,
        naming the kernel and what is unsupported.
        """

"""The target backend interface: kernel IR in, executable variants out.

A target backend plugin registers a :class:`~hal_core.descriptors.TargetInfo` whose factory
returns a :class:`TargetBackend`. The compiler makes one
:class:`~hal_core.compiler.kernel_ir.KernelExecutable` per dispatch kernel (today: exactly one
kernel each; never tensor IR) and hands it to every requested target. A target returns one
:class:`~hal_core.module.model.Variant`, or a list of them in order of preference (e.g. a
build tuned for the host CPU needing ``cpu:avx512f``, then a baseline): the format string, the
requirements (:mod:`hal_core.hal.requirements`), one
:class:`~hal_core.module.model.VariantEntryPoint` per kernel *in the same order* (the host
program's Dispatch names entry points by index, the same in every variant) and the payload.
A target that cannot lower a kernel raises :class:`~hal_core.errors.UnsupportedKernelError`
naming it; the module then keeps the other targets' variants for that kernel.

Tiling is the target's decision, so each entry point carries the workgroup count the target
chose for its kernel. The host program's Dispatch does not record one: the runtime takes it
from the entry point of the variant it selected, so variants of one kernel may tile it
differently.

What else an entry point may ask for: ``scratch_size`` bytes of per-dispatch scratch (one more
binding after the kernel's own, planned in the transient arena), and ``constant_packs`` for
bindings whose operands are ``constant=True`` (module constants: the runtime runs the named
load-time entry point once per load to put them in the target's layout; load-time entry points
follow the kernels' ones). Help for writing a lowering: :mod:`hal_core.compiler.kernel_analysis`
(strides, loop collapsing, tile axes) and :mod:`hal_core.compiler.decompose` (every named
kernel as generic kernels, using scratch).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
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
    def compile(self, executable: KernelExecutable, options: TargetOptions
                ) -> Variant | list[Variant]:
        """Return a variant (or several, preferred first), each with an entry point per kernel
        of ``executable``, in order.

        Raise :class:`~hal_core.errors.UnsupportedKernelError` for a kernel this target does
        not lower (other targets may), :class:`~hal_core.errors.OptionError` for options it
        does not know or values it cannot take (a usage error), and
        :class:`~hal_core.errors.CompileError` for a kernel it should have lowered but could
        not, naming the kernel and what is unsupported.
        """

    def precompile(self, executables: list[KernelExecutable], options: TargetOptions,
                   progress: Callable[[int, int], None] | None = None) -> None:
        """Optional: prepare every executable of a module before :meth:`compile` is called on
        each (llvm-cpu compiles the distinct kernels at once, from its cache or in worker
        processes). The default does nothing; errors are left for :meth:`compile` to raise.

        ``progress``, when given, wants ``progress(done, total)`` as kernels are finished (a
        progress bar shows it); an override that does not take it is called without."""

"""``compile(..., progress=...)``: phases start and end, kernels are counted per target."""

from __future__ import annotations

import pytest

import hal_core
from hal_core.compiler.progress import CompileProgress
from hal_core.registry import get_registry

PROGRAM = """\
func.func @main(%x: tensor<4x8xf32>, %w: tensor<8x5xf32>) -> tensor<4x5xf32> {
  %0 = matmul %x, %w : (tensor<4x8xf32>, tensor<8x5xf32>) -> tensor<4x5xf32>
  %1 = tanh %0 : (tensor<4x5xf32>) -> tensor<4x5xf32>
  %2 = softmax %1 {axis = 1} : (tensor<4x5xf32>) -> tensor<4x5xf32>
  return %2 : tensor<4x5xf32>
}
"""

pytestmark = pytest.mark.usefixtures("clean_hal_env")


def kernel_reports(reports: list[CompileProgress], target: str) -> list[CompileProgress]:
    return [r for r in reports if r.phase == f"target {target}"]


def test_phases_start_and_end_and_kernels_count_up():
    reports: list[CompileProgress] = []
    module = hal_core.compile(PROGRAM, ["vmvx"], progress=reports.append)
    kernels = len(module.executables)
    assert kernels >= 2
    phases = [r.phase for r in reports if r.total == 1]
    for phase in ("import", "constant folding", "fusion", "dispatch formation",
                  "buffer planning", "host program emission"):
        assert [(r.done, r.total) for r in reports if r.phase == phase and r.total == 1][:2] \
            == [(0, 1), (1, 1)], phase
    assert phases.index("import") < phases.index("constant folding") < \
        phases.index("buffer planning")
    counted = kernel_reports(reports, "vmvx")
    assert [(r.done, r.total) for r in counted] == [(i + 1, kernels) for i in range(kernels)]
    assert counted[-1].finished


def test_no_callback_no_reports_and_same_module():
    reports: list[CompileProgress] = []
    with_progress = hal_core.compile(PROGRAM, ["vmvx"], progress=reports.append)
    assert reports
    assert hal_core.compile(PROGRAM, ["vmvx"]) == with_progress


def test_precompile_reports_kernels_of_llvm_cpu():
    if "llvm-cpu" not in {t.name for t in get_registry().targets() if t.error is None}:
        pytest.skip("llvm-cpu is not installed")
    reports: list[CompileProgress] = []
    module = hal_core.compile(PROGRAM, ["llvm-cpu"], progress=reports.append,
                              target_options={"llvm-cpu": {"no-cache": "1"}})
    counted = kernel_reports(reports, "llvm-cpu")
    kernels = len(module.executables)
    # From precompile: 0 first, then one report per kernel compiled, ending at all of them.
    assert counted[0].done == 0
    assert [r.done for r in counted] == sorted(r.done for r in counted)
    assert (counted[-1].done, counted[-1].total) == (kernels, kernels)
    assert len(counted) >= kernels


def test_a_callback_that_raises_stops_the_compile():
    class Stop(Exception):
        pass

    def stop(report: CompileProgress) -> None:
        if report.phase.startswith("target"):
            raise Stop

    with pytest.raises(Exception) as info:
        hal_core.compile(PROGRAM, ["vmvx"], progress=stop)
    assert isinstance(info.value, Stop) or isinstance(info.value.__cause__, Stop)

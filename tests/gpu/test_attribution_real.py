"""Pod attribution by the whole exporter on a real GPU agrees with nvidia-smi's per-process memory.

A smaller run of ``check_attribution.py``; skipped wherever NVML does not initialise.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.gpu.check_attribution import Role, run

pytestmark = pytest.mark.gpu


def _nvml_works() -> bool:
    try:
        import pynvml  # noqa: PLC0415 - optional dependency, probed at collection

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001 - any failure means "no usable GPU here"
        return False
    return True


if not _nvml_works():
    pytest.skip("NVML does not initialise here (no NVIDIA driver or GPU)", allow_module_level=True)


def test_attribution_without_and_with_a_kubelet_matches_nvidia_smi(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    if shutil.which("nvidia-smi") is None:
        pytest.skip("nvidia-smi is not installed")
    roles = (
        Role("trainer", "matmul", 1, "a"),
        Role("other-pod", "hold", 2, "a"),
        Role("host", "hold", 1, "c"),
    )

    result = run(tmp_path, roles, seconds=90.0)

    assert result["failures"] == [], result["observations"]
    assert {obs["config"] for obs in result["observations"]} == {"a", "b", "c"}

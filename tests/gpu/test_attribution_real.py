"""Pod attribution by the whole exporter on a real GPU agrees with nvidia-smi's per-process memory.

A smaller run of ``check_attribution.py``; skipped wherever NVML does not initialise.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.gpu.check_attribution import Role, run
from tests.gpu.harness import nvml_works

pytestmark = pytest.mark.gpu


if not nvml_works():
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

"""``kube-gpu-hpa simulate`` as users run it: a real process on the committed examples."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "hpa"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def simulate(out: Path, *inputs: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hpalab", "simulate", "--hpa", str(EXAMPLES / "hpa-gpu-utilization.yaml"),
         *inputs, "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def read_timeline(out: Path) -> list[dict[str, str]]:
    with (out / "timeline.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_scenario_reaches_the_replica_path_worked_out_by_hand(tmp_path: Path) -> None:
    """examples/hpa/scenario-step.yaml: the path docs/hpa-lab.md derives by hand."""
    result = simulate(tmp_path, "--scenario", str(EXAMPLES / "scenario-step.yaml"))
    assert result.returncode == 0, result.stderr
    rows = read_timeline(tmp_path)
    assert list(rows[0]) == [
        "time", "current_replicas", "ready_pods", "gpu_utilization", "gpu_utilization_target",
        "gpu_utilization_proposal", "recommendation", "stabilized", "replicas", "event", "limit",
    ]  # fmt: skip
    changes = [
        (r["time"], r["current_replicas"], r["replicas"])
        for r in rows
        if r["current_replicas"] != r["replicas"]
    ]
    assert changes == [
        ("300", "2", "4"),
        ("360", "4", "5"),
        ("1185", "5", "4"),
        ("1305", "4", "3"),
        ("1425", "3", "2"),
    ]
    limited = {r["time"]: r["limit"] for r in rows}
    assert limited["315"] == "ScaleUpLimit"
    assert limited["1185"] == "ScaleDownLimit"
    assert (tmp_path / "timeline.png").read_bytes().startswith(PNG_MAGIC)
    assert "5 scale events" in result.stdout


def test_series_replay_writes_csv_and_png(tmp_path: Path) -> None:
    result = simulate(
        tmp_path, "--series", str(EXAMPLES / "series-gpu-utilization.csv"), "--progress", "always"
    )
    assert result.returncode == 0, result.stderr
    rows = read_timeline(tmp_path)
    assert len(rows) == 121
    assert rows[0]["gpu_utilization_target"] == "60"
    gap = [r for r in rows if r["time"] in ("990", "1005")]
    assert all(r["gpu_utilization"] == "" and r["event"].startswith("invalid metrics") for r in gap)
    assert all(r["replicas"] == r["current_replicas"] for r in gap)
    assert (tmp_path / "timeline.png").read_bytes().startswith(PNG_MAGIC)
    assert "100%" in result.stderr


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        pytest.param(["--scenario", "missing.yaml"], "cannot read", id="missing-file"),
        pytest.param([], "give exactly one of --series and --scenario", id="no-input"),
    ],
)
def test_input_errors_exit_2(tmp_path: Path, inputs: list[str], message: str) -> None:
    result = simulate(tmp_path / "out", *inputs)
    assert result.returncode == 2
    assert message in result.stderr

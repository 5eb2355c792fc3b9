"""``kube-gpu-hpa lab`` end to end: a scenario whose replica path is worked out by hand reaches it through
the real exporter, the real adapter and the lab's controller loop."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from hpalab.algorithm import ControllerConfig
from hpalab.hpa_spec import parse_hpa
from hpalab.lab import LabOptions, LabStack, run_lab
from hpalab.simulate import Step, replay_scenario
from kgm_common.scenario import parse_scenario
from tests.support import wait_until

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

HPA_YAML = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: llm-inference, namespace: gpu-demo}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: llm-inference}
  minReplicas: 1
  maxReplicas: 6
  metrics:
    - type: Pods
      pods:
        metric: {name: gpu_utilization}
        target: {type: AverageValue, averageValue: "60"}
  behavior:
    scaleUp:
      stabilizationWindowSeconds: 0
      selectPolicy: Max
      policies:
        - {type: Pods, value: 2, periodSeconds: 30}
        - {type: Percent, value: 100, periodSeconds: 30}
    scaleDown:
      stabilizationWindowSeconds: 60
      policies:
        - {type: Pods, value: 1, periodSeconds: 30}
"""

# Load changes one second after a sync, so the next sync's adapter window holds only the new load.
SCENARIO_YAML = """\
duration: 225
capacityPerPod: 100
initialReplicas: 2
podStartupSeconds: 20
load:
  - {at: 0, rate: 100}
  - {at: 31, rate: 300}
  - {at: 91, rate: 100}
"""

EXPECTED_PATH = [(0, 2), (45, 4), (75, 5), (150, 4), (180, 3), (210, 2)]
"""Worked out by hand (100 req/s saturate a pod, target 60 %, syncs every 15 s):

- t=45: 300 req/s on 2 pods, 100 % each: ratio 1.67, ceil(3.33) = 4, policies allow max(2+2, 2x2) = 4.
- t=60: the 2 new pods are Pending (20 s startup): unready, so 0 % on a scale-up: (100+100+0+0)/4 = 50 %,
  the direction flips and nothing changes.
- t=75: 4 ready pods at 75 %: ceil(5) = 5; the +2 at t=45 left the 30 s period (strictly after t-30).
- t=90: 4 ready at 75 %, 1 Pending counted as 0 %: (4x75)/5 = 60 %, inside the tolerance: 5 stays.
- t=105..135: 100 req/s, 20 % per pod, proposal 2, but the 60 s scale-down window still holds a 5.
- t=150: the window is clear; one pod per 30 s: 4, then 3 at t=180 and 2 at t=210 (50 %: ceil(1.67) = 2).
"""

SPEED = 5.0
"""Scenario seconds per real second: 225 s of scenario in 45 s."""


def _changes(replicas: list[tuple[float, int]]) -> list[tuple[float, int]]:
    path = [replicas[0]]
    for time_, count in replicas[1:]:
        if count != path[-1][1]:
            path.append((time_, count))
    return path


def _path(steps: list[Step]) -> list[tuple[float, int]]:
    """(time, replicas after the sync) at each change, from the replicas before the first sync on."""
    return _changes([(0.0, steps[0].replicas_before)] + [(step.time, step.replicas) for step in steps])


def test_hand_computed_path_is_offline_replays() -> None:
    steps = list(replay_scenario(parse_hpa(HPA_YAML), parse_scenario(SCENARIO_YAML)))
    assert _path(steps) == EXPECTED_PATH


def test_lab_reaches_the_hand_computed_path(tmp_path: Path) -> None:
    """The live loop scales at the hand-computed syncs to the hand-computed replicas.

    The adapter averages its scrapes over one real second (5 s of scenario time, ``--direct-window 1``) and
    the exporter sees a new replica count at the adapter's next scrape (0.1 s real). Every load step and
    every pod becoming Ready or deleted happens at least 5 s of scenario time before the next sync, so
    each sync's window holds only the state the offline replay reads: the replica counts must match
    exactly. Only the times may come one sync (15 s) late, where a slow machine delays a sync's write of
    the replicas into the window of the next one; the replicas then still follow the same path.
    """
    (tmp_path / "hpa.yaml").write_text(HPA_YAML)
    scenario_file = tmp_path / "scenario.yaml"
    scenario_file.write_text(SCENARIO_YAML)
    hpa = parse_hpa(HPA_YAML)
    options = LabOptions(out=tmp_path / "out", speed=SPEED, adapter_window=SPEED, scrape_interval=0.5)
    started = time.monotonic()
    with LabStack(hpa, scenario_file, parse_scenario(SCENARIO_YAML), options) as stack:
        processes = stack.processes
        steps = list(run_lab(stack, config=ControllerConfig()))
    elapsed = time.monotonic() - started
    assert all(process.poll() is not None for process in processes)
    observed = _path(steps)
    assert [count for _, count in observed] == [count for _, count in EXPECTED_PATH], (steps, observed)
    for (seen_at, _), (expected_at, _) in zip(observed, EXPECTED_PATH, strict=True):
        assert expected_at <= seen_at <= expected_at + 15, observed
    assert [step.time for step in steps] == [15.0 * i for i in range(16)]
    assert elapsed < 225 / SPEED + 30


def test_lab_command_writes_the_timeline_and_stops_its_processes_on_ctrl_c(tmp_path: Path) -> None:
    (tmp_path / "hpa.yaml").write_text(HPA_YAML)
    (tmp_path / "scenario.yaml").write_text(SCENARIO_YAML)
    out = tmp_path / "out"
    lab = subprocess.Popen(
        [sys.executable, "-m", "hpalab", "lab", "--hpa", str(tmp_path / "hpa.yaml"),
         "--scenario", str(tmp_path / "scenario.yaml"), "--out", str(out), "--speed", "15",
         "--adapter-window", "15", "--scrape-interval", "1.5", "--plot", "false"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        parent = psutil.Process(lab.pid)
        wait_until(lambda: len(parent.children()) == 2 and (out / "control").exists() and
                   "start=" in (out / "control").read_text(), timeout=60)  # fmt: skip
        children = parent.children()
        time.sleep(2)
        lab.send_signal(signal.SIGINT)
        output, _ = lab.communicate(timeout=30)
    finally:
        if lab.poll() is None:
            lab.kill()
            lab.wait()
    assert lab.returncode == 130, output
    assert not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children)
    with (out / "timeline.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows, output
    assert rows[0]["time"] == "0"
    assert rows[0]["replicas"] == "2"

"""The live lab's pieces that need no processes: timing options, the control file it writes, checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.config import parse_config as parse_adapter_config
from exporter.gpu.scenario import Control, parse_control
from hpalab.hpa_spec import parse_hpa
from hpalab.lab import LabError, LabOptions, check_supported, window_note, write_control


def test_windows_and_intervals_scale_to_real_seconds(tmp_path: Path) -> None:
    options = LabOptions(out=tmp_path, speed=10, adapter_window=60, scrape_interval=5)
    assert (options.window_real, options.scrape_real) == (6, 0.5)
    assert window_note(options) is None
    fast = LabOptions(out=tmp_path, speed=60, adapter_window=15, scrape_interval=120)
    assert (fast.window_real, fast.scrape_real) == (1, 1.0)
    assert window_note(fast) == (
        "the adapter window is 60s of scenario time, not 15s: at speed 60 it must be whole real seconds"
    )


def test_the_control_file_is_what_the_exporter_parses(tmp_path: Path) -> None:
    path = tmp_path / "control"
    write_control(path, 3)
    assert parse_control(path.read_text()) == Control(3)
    write_control(path, 5, 1764097000.25)
    assert parse_control(path.read_text()) == Control(5, 1764097000.25)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["control"]


def test_only_pods_metrics_are_served_without_a_cluster() -> None:
    hpa = parse_hpa(
        """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: infer, namespace: ml}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: infer}
  maxReplicas: 4
  metrics:
  - type: Object
    object:
      metric: {name: gpu_utilization}
      describedObject: {apiVersion: apps/v1, kind: Deployment, name: infer}
      target: {type: Value, value: "60"}
"""
    )
    with pytest.raises(LabError, match=r"Pods metrics only.*Object gpu_utilization"):
        check_supported(hpa)


def test_adapter_window_and_scrape_interval_flags() -> None:
    config = parse_adapter_config(
        [
            "--insecure-local",
            "--exporter-url",
            "127.0.0.1:1",
            "--direct-window",
            "2",
            "--direct-scrape-interval",
            "0.1",
        ],
        environ={},
    )
    assert (config.direct_window_seconds, config.direct_scrape_interval_seconds) == (2, 0.1)
    defaults = parse_adapter_config([], environ={"KGM_DIRECT_WINDOW": "30"})
    assert (defaults.direct_window_seconds, defaults.direct_scrape_interval_seconds) == (30, 5.0)
    with pytest.raises(SystemExit):
        parse_adapter_config(["--direct-window", "1", "--direct-scrape-interval", "2"], environ={})
    with pytest.raises(SystemExit):
        parse_adapter_config(["--direct-window", "0.5"], environ={})

"""The kubelet's pod-resources socket missing, hung and restarting, seen through the running exporter:
scrapes stay fast, ``kgm_pod_resources_up`` tells the truth, pod labels come back by themselves.

The client-level behaviour (deadlines, backoff doubling, one shared call) is covered in
``test_kubelet_pod_resources.py``; this is the same through the real process and its /metrics.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.fakes.fake_kubelet import Allocation, FakeKubelet, KubeletState
from tests.integration.processes import Server, metrics, start, value
from tests.support import wait_until

SCRAPE_BUDGET_SECONDS = 1.5


def pods_up(exporter: Server) -> float | None:
    started = time.monotonic()
    found = metrics(exporter)
    assert time.monotonic() - started < SCRAPE_BUDGET_SECONDS
    return value(found, "kgm_pod_resources_up")


def holder(exporter: Server) -> str | None:
    found = metrics(exporter)
    holders = [labels["pod"] for labels, _ in found["gpu_utilization_ratio"] if labels.get("pod")]
    return holders[0] if holders else None


def test_missing_hung_and_restarting_kubelet(socket_dir: Path, tmp_path: Path) -> None:
    socket_path = str(socket_dir / "kubelet.sock")
    kubelet = FakeKubelet(
        socket_path,
        KubeletState(
            [Allocation("ml", "train-0", "main", "nvidia.com/gpu", ["0"])], {"nvidia.com/gpu": ["0"]}
        ),
    )
    exporter = start(
        "exporter",
        ["--gpu-source", "simulated", "--simulated-gpus", "1", "--host-metrics", "false",
         "--pod-resources-socket", socket_path, "--pod-resources-timeout", "0.5",
         "--pod-resources-cache-ttl", "0.1", "--log-format", "logfmt"],
        tmp_path / "exporter.log",
    )  # fmt: skip
    try:
        exporter.wait_answers("/readyz")
        assert pods_up(exporter) == 0.0
        assert holder(exporter) is None
        assert "kubelet pod-resources API not answering" in exporter.log()

        kubelet.start()
        wait_until(lambda: pods_up(exporter) == 1.0, timeout=15, interval=0.2)
        assert holder(exporter) == "train-0"

        kubelet.state.delay_seconds = 3.0  # hung: every call runs into its deadline
        wait_until(lambda: pods_up(exporter) == 0.0, timeout=15, interval=0.2)
        kubelet.state.delay_seconds = 0.0

        kubelet.stop()  # a kubelet restart removes the socket and makes a new one
        kubelet.state.allocations = [Allocation("ml", "train-1", "main", "nvidia.com/gpu", ["0"])]
        kubelet.start()
        wait_until(lambda: holder(exporter) == "train-1", timeout=40, interval=0.2)
        assert pods_up(exporter) == 1.0
        assert "kubelet pod-resources API answering" in exporter.log()
        assert exporter.process.poll() is None
    finally:
        assert exporter.stop() == 0, exporter.log()
        kubelet.stop()

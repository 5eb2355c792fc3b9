"""``--compat dcgm`` through a real Prometheus: the PromQL of dcgm-exporter setups agrees with our series.

Two exporter processes (simulated GPUs with different constant loads, pod attribution from fake
kubelets) are scraped every second. Series of one scrape share a timestamp, so an instant query
pinned to one time reads the dcgm series and ours from the same readings: they must agree exactly,
and both must match what the load profiles make the GPUs report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import RunningExporter
from tests.integration.prometheus import RunningPrometheus, Sample, running_prometheus

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
MEMORY_BYTES = 81559 * MIB
RESERVED_BYTES = 512 * MIB
# (node, seed, per-GPU load, per-GPU holder)
NODES = (
    ("node-a", 11, (0.3, 0.6), (("ml", "train-0", "main"), ("ml", "train-1", "main"))),
    ("node-b", 12, (0.8,), (("web", "infer-0", "server"),)),
)
GPUS = sum(len(loads) for _, _, loads, _ in NODES)
NOISE = 0.1  # five sigmas of the simulated source's gaussian noise on utilization


@pytest.fixture
def exporters(start_simulated_node: Callable[..., RunningExporter]) -> list[RunningExporter]:
    return [start_simulated_node(*node, "--compat=dcgm") for node in NODES]


@pytest.fixture
def prometheus(tmp_path: Path, exporters: list[RunningExporter]) -> Iterator[RunningPrometheus]:
    with running_prometheus(tmp_path, [f"127.0.0.1:{e.port}" for e in exporters]) as running:
        running.wait_for('up{job="kube-gpu-exporter"} == 1', count=len(exporters))
        running.wait_for("DCGM_FI_DEV_GPU_UTIL", count=GPUS)
        running.wait_for("gpu_utilization_ratio", count=GPUS)
        yield running


def by(samples: list[Sample], *labels: str) -> dict[tuple[str, ...], float]:
    keyed = {tuple(s.labels.get(label, "") for label in labels): s.value for s in samples}
    assert len(keyed) == len(samples), f"{labels} do not identify the series: {samples}"
    return keyed


def test_dcgm_promql_agrees_with_our_series(prometheus: RunningPrometheus) -> None:
    at = time.time()

    dcgm_by_pod = by(prometheus.query("avg by (pod) (DCGM_FI_DEV_GPU_UTIL)", at), "pod")
    ours_by_pod = by(prometheus.query("100 * avg by (pod) (gpu_utilization_ratio)", at), "pod")
    assert dcgm_by_pod.keys() == ours_by_pod.keys()
    for pod, value in dcgm_by_pod.items():
        assert value == pytest.approx(ours_by_pod[pod], rel=1e-9), pod
    assert set(dcgm_by_pod) == {(pod,) for _, _, _, holders in NODES for _, pod, _ in holders}

    dcgm_fb = by(
        prometheus.query("DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)", at), "UUID"
    )
    ours_fb = by(
        prometheus.query("gpu_memory_used_bytes / (gpu_memory_used_bytes + gpu_memory_free_bytes)", at),
        "uuid",
    )
    assert len(dcgm_fb) == GPUS
    assert dcgm_fb.keys() == ours_fb.keys()
    for uuid, value in dcgm_fb.items():
        assert value == pytest.approx(ours_fb[uuid], rel=1e-9), uuid


def test_dcgm_values_follow_the_load_profiles(prometheus: RunningPrometheus) -> None:
    at = time.time()
    util = by(prometheus.query("DCGM_FI_DEV_GPU_UTIL", at), "Hostname", "gpu")
    fb = by(
        prometheus.query("DCGM_FI_DEV_FB_USED / (DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)", at),
        "Hostname",
        "gpu",
    )
    used_mib = by(prometheus.query("DCGM_FI_DEV_FB_USED", at), "Hostname", "gpu")
    for node, _, loads, _ in NODES:
        for index, load in enumerate(loads):
            key = (node, str(index))
            assert util[key] == pytest.approx(100 * load, abs=100 * NOISE), key
            expected_used = MEMORY_BYTES * (0.05 + 0.6 * load)
            assert fb[key] == pytest.approx(expected_used / (MEMORY_BYTES - RESERVED_BYTES), abs=0.6 * NOISE)
            assert used_mib[key] == pytest.approx(expected_used / MIB, abs=0.6 * NOISE * MEMORY_BYTES / MIB)


def test_dcgm_labels_as_dcgm_exporter_sets_them(prometheus: RunningPrometheus) -> None:
    samples = prometheus.query("DCGM_FI_DEV_SM_CLOCK")
    assert len(samples) == GPUS
    for sample in samples:
        labels = sample.labels
        assert labels["device"] == f"nvidia{labels['gpu']}"
        assert labels["UUID"].startswith("GPU-")
        assert labels["modelName"] == "NVIDIA H100 80GB HBM3"
        assert labels["Hostname"] in {node for node, *_ in NODES}
        assert sample.value == pytest.approx(1980.0)
    energy = prometheus.wait_for("rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[10s]) > 0", count=GPUS)
    assert {s.labels["UUID"] for s in energy} == {s.labels["UUID"] for s in samples}

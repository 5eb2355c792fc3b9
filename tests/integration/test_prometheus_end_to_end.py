"""End to end: exporters -> real Prometheus -> the adapter's prometheus backend, checked three ways.

Two exporter processes (simulated GPUs with different constant loads, pods attributed by fake
kubelets) are scraped by Prometheus every second. Custom metrics are read over HTTPS from a
``kube-gpu-adapter`` process running the prometheus backend, and external metrics from the external
API over the same backend. Every value must match what the test computes from the exporters' own
``/metrics``, and the same custom reads from a second adapter process on the direct backend must
agree with the prometheus backend's.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import statistics
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from adapter.api import external
from adapter.api.app import build_app
from adapter.backends.base import ObjectKey
from adapter.backends.prometheus import PrometheusBackend
from adapter.backends.prometheus_api import PrometheusClient, PrometheusOptions
from adapter.objects.static import StaticResolver
from adapter.quantity import parse_quantity
from adapter.rules import builtin
from tests.integration.conftest import RunningExporter
from tests.integration.processes import REPO, start
from tests.integration.prometheus import RunningPrometheus, running_prometheus
from tests.support import RunningProcess, free_port, wait_until

pytestmark = pytest.mark.slow

CUSTOM = "/apis/custom.metrics.k8s.io"
RECORDING_RULES = [REPO / "deploy" / "prometheus" / "rules" / "recording-rules.yaml"]
# node -> (seed, per-GPU load, holder of each GPU or None)
NODES: dict[str, tuple[int, tuple[float, ...], tuple[tuple[str, str, str] | None, ...]]] = {
    "node-a": (21, (0.2, 0.5), (("ml", "train-0", "main"), ("ml", "train-1", "main"))),
    "node-b": (22, (0.9, 0.5), (("web", "infer-0", "server"), None)),
}
# The simulated GPUs add gaussian noise (2 utilization points, so about 2% of used memory) to each
# second's reading, and the direct backend may hold as few as two samples: three sigmas of that. The
# loads are 15 points or more apart, so a value taken from the wrong GPU, pod or node still fails.
UTIL_TOLERANCE = 6.0  # percentage points
MEMORY_TOLERANCE = 0.06  # relative


@dataclass(frozen=True)
class Reading:
    """One GPU as the test saw it on an exporter's /metrics: means over the test's own scrapes."""

    node: str
    gpu: str
    namespace: str
    pod: str
    utilization: float
    memory_used: float
    memory_total: float


@pytest.fixture
def exporters(start_simulated_node: Callable[..., RunningExporter]) -> dict[str, RunningExporter]:
    return {node: start_simulated_node(node, *spec) for node, spec in NODES.items()}


@pytest.fixture
def prometheus(tmp_path: Path, exporters: dict[str, RunningExporter]) -> Iterator[RunningPrometheus]:
    targets = [f"127.0.0.1:{e.port}" for e in exporters.values()]
    with running_prometheus(tmp_path, targets, rule_files=RECORDING_RULES) as running:
        gpus = sum(len(loads) for _, loads, _ in NODES.values())
        running.wait_for('gpu_utilization_ratio{pod!=""}', count=3)
        running.wait_for("gpu_info", count=gpus)
        yield running


def adapter_get(adapter: RunningProcess, path: str) -> tuple[int, Any]:
    """Status and JSON of ``GET path``; ``(0, None)`` when the adapter does not answer yet."""
    try:
        status, body = adapter.get(path, timeout=10)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, None
    return status, json.loads(body or b"null")


@pytest.fixture
def start_adapter(tmp_path: Path) -> Iterator[Callable[..., RunningProcess]]:
    # The adapter's self-signed certificate, on loopback.
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    started: list[RunningProcess] = []

    def start_one(module: str, *flags: str) -> RunningProcess:
        port = free_port()
        adapter = start(
            module,
            ["--insecure-local", *flags],
            tmp_path / f"adapter-{port}.log",
            port=port,
            env={"KGM_LOG_FORMAT": "logfmt"},
            scheme="https",
            tls=unverified,
        )
        started.append(adapter)
        return adapter

    yield start_one
    for adapter in started:
        adapter.stop(timeout=10)


def own_readings(exporters: dict[str, RunningExporter], scrapes: int = 10) -> list[Reading]:
    """Means over the test's own scrapes of every exporter, one second apart."""
    samples: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    holders: dict[tuple[str, str], tuple[str, str]] = {}
    for round_ in range(scrapes):
        if round_:
            time.sleep(1.0)
        for node, exporter in exporters.items():
            with urllib.request.urlopen(f"{exporter.url}/metrics", timeout=5) as response:
                text = response.read().decode()
            for family in text_string_to_metric_families(text):
                for sample in family.samples:
                    if sample.name in (
                        "gpu_utilization_ratio",
                        "gpu_memory_used_bytes",
                        "gpu_memory_total_bytes",
                    ):
                        key = (node, sample.labels["gpu"])
                        samples[key][sample.name].append(sample.value)
                        holders[key] = (sample.labels["namespace"], sample.labels["pod"])
    return [
        Reading(
            node,
            gpu,
            *holders[(node, gpu)],
            100 * statistics.fmean(fields["gpu_utilization_ratio"]),
            statistics.fmean(fields["gpu_memory_used_bytes"]),
            statistics.fmean(fields["gpu_memory_total_bytes"]),
        )
        for (node, gpu), fields in samples.items()
    ]


def values(document: Any) -> dict[str, float]:
    return {
        item["describedObject"]["name"]: float(parse_quantity(item["value"])) for item in document["items"]
    }


def wait_for_items(adapter: RunningProcess, path: str, count: int) -> dict[str, float]:
    found: dict[str, float] = {}

    def answered() -> bool:
        nonlocal found
        if adapter.process.poll() is not None:
            pytest.fail(f"adapter exited with {adapter.process.returncode}:\n{adapter.log()}")
        status, document = adapter_get(adapter, path)
        found = values(document) if status == 200 else {}
        return len(found) >= count

    answered.__name__ = f"{path} answers {count} items"
    wait_until(answered, timeout=60, interval=0.5)
    return found


def expected(readings: list[Reading]) -> dict[str, dict[str, float]]:
    """The design's metrics computed from the readings: per pod, node and namespace."""
    pods: dict[str, list[Reading]] = defaultdict(list)
    nodes: dict[str, list[Reading]] = defaultdict(list)
    for r in readings:
        nodes[r.node].append(r)
        if r.pod:
            pods[r.pod].append(r)
    pod_util = {pod: statistics.fmean(r.utilization for r in rs) for pod, rs in pods.items()}
    return {
        "pod_utilization": pod_util,
        "pod_memory_used": {pod: sum(r.memory_used for r in rs) for pod, rs in pods.items()},
        "pod_memory_utilization": {
            pod: 100 * sum(r.memory_used for r in rs) / sum(r.memory_total for r in rs)
            for pod, rs in pods.items()
        },
        "node_utilization": {node: statistics.fmean(r.utilization for r in rs) for node, rs in nodes.items()},
        "namespace_utilization": {
            "ml": statistics.fmean(pod_util[pod] for pod in ("train-0", "train-1")),
            "web": pod_util["infer-0"],
        },
        "namespace_device_utilization": {
            ns: statistics.fmean(r.utilization for r in readings if r.namespace == ns) for ns in ("ml", "web")
        },
    }


def assert_close(
    got: dict[str, float], want: dict[str, float], *, absolute: float = 0.0, relative: float = 0.0
) -> None:
    assert set(got) == set(want), (got, want)
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=absolute, rel=relative), (name, got, want)


CUSTOM_READS = {
    "pod_utilization": f"{CUSTOM}/v1beta1/namespaces/ml/pods/*/gpu_utilization",
    "node_utilization": f"{CUSTOM}/v1beta1/nodes/*/gpu_utilization",
    "web_memory_used": f"{CUSTOM}/v1beta1/namespaces/web/pods/infer-0/gpu_memory_used_bytes",
    "ml_memory_utilization": f"{CUSTOM}/v1beta2/namespaces/ml/pods/*/gpu_memory_utilization",
    "ml_namespace": f"{CUSTOM}/v1beta1/namespaces/ml/metrics/gpu_utilization",
    "gpu0_only": f"{CUSTOM}/v1beta2/namespaces/ml/pods/*/gpu_utilization?metricLabelSelector=gpu%3D0",
}


def test_prometheus_backend_end_to_end(
    exporters: dict[str, RunningExporter],
    prometheus: RunningPrometheus,
    start_adapter: Callable[..., RunningProcess],
) -> None:
    via_prometheus = start_adapter(
        "tests.fakes.prometheus_adapter", "--backend=prometheus", f"--prometheus-url={prometheus.url}"
    )
    direct = start_adapter(
        "adapter", "--backend=direct", *(f"--exporter-url={e.url}/metrics" for e in exporters.values())
    )
    for adapter in (via_prometheus, direct):
        wait_for_items(adapter, CUSTOM_READS["pod_utilization"], 2)
        wait_for_items(adapter, CUSTOM_READS["node_utilization"], 2)

    want = expected(own_readings(exporters))
    answers: dict[str, dict[str, dict[str, float]]] = {}
    for name, adapter in (("prometheus", via_prometheus), ("direct", direct)):
        answers[name] = {}
        for read, path in CUSTOM_READS.items():
            status, document = adapter_get(adapter, path)
            assert status == 200, (name, path, document)
            answers[name][read] = values(document)

    got = answers["prometheus"]
    pod_util = want["pod_utilization"]
    assert_close(
        got["pod_utilization"], {p: pod_util[p] for p in ("train-0", "train-1")}, absolute=UTIL_TOLERANCE
    )
    assert_close(got["node_utilization"], want["node_utilization"], absolute=UTIL_TOLERANCE)
    assert_close(
        got["web_memory_used"], {"infer-0": want["pod_memory_used"]["infer-0"]}, relative=MEMORY_TOLERANCE
    )
    memory_util = want["pod_memory_utilization"]
    assert_close(
        got["ml_memory_utilization"],
        {p: memory_util[p] for p in ("train-0", "train-1")},
        absolute=UTIL_TOLERANCE,
    )
    assert_close(got["ml_namespace"], {"ml": want["namespace_utilization"]["ml"]}, absolute=UTIL_TOLERANCE)
    assert_close(got["gpu0_only"], {"train-0": pod_util["train-0"]}, absolute=UTIL_TOLERANCE)

    for read in CUSTOM_READS:
        tolerance = (
            {"absolute": UTIL_TOLERANCE} if read != "web_memory_used" else {"relative": MEMORY_TOLERANCE}
        )
        assert_close(answers["direct"][read], got[read], **tolerance)

    asyncio.run(_external_and_workload_reads(prometheus.url, want))


async def _external_and_workload_reads(url: str, want: dict[str, dict[str, float]]) -> None:
    backend = PrometheusBackend(
        builtin("default"), PrometheusClient(PrometheusOptions(url)), track_objects=True
    )
    app = build_app(backend, StaticResolver(backend))
    external.register(app, backend)
    async with TestClient(TestServer(app)) as client:
        deadline = time.monotonic() + 10
        while not backend.ready:
            assert time.monotonic() < deadline, backend.error
            await asyncio.sleep(0.1)
        assert {m.name for m in backend.metrics()} == {
            "gpu_utilization",
            "gpu_memory_used_bytes",
            "gpu_memory_utilization",
        }
        assert set(backend.external_metrics()) == {r.name for r in builtin("default").external}
        assert {key.name for key in backend.seen_objects("nodes")} == set(NODES)
        base = "/apis/external.metrics.k8s.io/v1beta1/namespaces"
        for namespace in ("ml", "web"):
            answer = await client.get(f"{base}/{namespace}/namespace_gpu_utilization")
            assert answer.status == 200, await answer.text()
            (item,) = (await answer.json())["items"]
            assert item["metricLabels"] == {"namespace": namespace}
            assert item["window"] == 60
            assert float(parse_quantity(item["value"])) == pytest.approx(
                want["namespace_device_utilization"][namespace], abs=UTIL_TOLERANCE
            )
        answer = await client.get(f"{base}/ml/namespace_gpu_utilization_total?labelSelector=gpu%3D1")
        (item,) = (await answer.json())["items"]
        assert float(parse_quantity(item["value"])) == pytest.approx(
            want["pod_utilization"]["train-1"], abs=UTIL_TOLERANCE
        )

        workload = await backend.aggregate(
            "gpu_utilization", [ObjectKey("ml", "train-0"), ObjectKey("ml", "train-1")]
        )
        assert workload is not None
        assert workload.value == pytest.approx(want["namespace_utilization"]["ml"], abs=UTIL_TOLERANCE)


def test_recording_rules_over_real_exporters(prometheus: RunningPrometheus) -> None:
    """The shipped recording rules, evaluated by Prometheus over what the exporters really expose."""
    pods = prometheus.wait_for("namespace_pod:gpu_utilization_ratio:avg", count=3)
    loads = {
        holder[1]: load
        for _, loads, holders in NODES.values()
        for load, holder in zip(loads, holders, strict=True)
        if holder
    }
    assert {s.labels["pod"]: s.value for s in pods} == pytest.approx(loads, abs=UTIL_TOLERANCE / 100)
    nodes = prometheus.wait_for("node:gpu_utilization_ratio:avg", count=2)
    means = {node: statistics.fmean(loads) for node, (_, loads, _) in NODES.items()}
    assert {s.labels["node"]: s.value for s in nodes} == pytest.approx(means, abs=UTIL_TOLERANCE / 100)
    allocated = prometheus.wait_for("node:gpu_allocated:ratio", count=2)
    assert {s.labels["node"]: s.value for s in allocated} == {"node-a": 1.0, "node-b": 0.5}
    memory = prometheus.wait_for("namespace_pod:gpu_memory_utilization:ratio", count=3)
    assert all(0.05 < s.value < 0.7 for s in memory), memory

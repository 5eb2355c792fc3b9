"""The dashboards against a real Prometheus scraping simulated exporters with pod attribution.

Two exporters (simulated GPUs under sine loads, pods simulated in place of the kubelet, one GPU
time-sliced by two pods, host series on one node) are scraped every second. Every panel query runs
with its variables substituted as Grafana substitutes them: each must be accepted by Prometheus, and
each that reads only series this setup produces must return data. The previews are rendered too.

``KGM_DASHBOARD_PREVIEW_SECONDS=180 KGM_DASHBOARD_PREVIEW_OUT=docs/dashboards`` makes the preview
test collect that long and write the PNGs committed in the repository.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from grafana import preview
from grafana.dashboards import DASHBOARDS
from grafana.panels import PanelData, TimeRange, run_dashboard
from grafana.prometheus_api import PrometheusApi
from tests.integration.conftest import RunningExporter
from tests.integration.processes import REPO
from tests.integration.prometheus import RunningPrometheus, running_prometheus
from tests.unit.test_dashboards import metric_names

pytestmark = pytest.mark.slow

# Node names with dots, as real ones have: Grafana must escape them inside =~"...".
NODES: dict[str, tuple[str, ...]] = {
    "gpu-a.lab": (
        "--simulated-profile=sine:min=0.2,max=0.9,period=120",
        "--simulated-profile=sine:min=0.1,max=0.6,period=90,phase=30",
        "--simulated-pod=ml/train-0/trainer",
        "--simulated-pod=ml/train-1/trainer",
        "--host-metrics=true",
    ),
    "gpu-b.lab": (
        "--simulated-profile=sine:min=0.5,max=0.95,period=60",
        "--simulated-profile=sine:min=0.05,max=0.3,period=150,phase=60",
        "--simulated-pod=web/infer-0/server",
        "--simulated-pod=web/infer-1/server",
        "--simulated-pod=web/infer-2/server",  # time-slices GPU 0 with infer-0
        "--host-metrics=false",
    ),
}
# Series the simulated setup cannot produce: per-process GPU use needs NVML, gpu_pod_info the
# Kubernetes API, XIDs a real driver, kube_* kube-state-metrics.
ABSENT = {
    "gpu_container_utilization_ratio",
    "gpu_container_memory_used_bytes",
    "gpu_pod_info",
    "gpu_xid_errors_total",
}
PREVIEW_SECONDS = float(os.environ.get("KGM_DASHBOARD_PREVIEW_SECONDS", "0"))
PREVIEW_OUT = os.environ.get("KGM_DASHBOARD_PREVIEW_OUT", "")


@dataclass(frozen=True)
class Demo:
    prometheus: RunningPrometheus
    api: PrometheusApi
    started: float

    def time_range(self) -> TimeRange:
        return TimeRange(self.started, time.time(), scrape_interval_ms=1_000)


@pytest.fixture
def demo(tmp_path: Path, start_exporter: Callable[..., RunningExporter]) -> Iterator[Demo]:
    started = time.time()
    exporters = [
        start_exporter("--gpu-source=simulated", "--simulated-gpus=2", f"--node-name={node}", *flags)
        for node, flags in NODES.items()
    ]
    with running_prometheus(tmp_path, [f"127.0.0.1:{e.port}" for e in exporters]) as prometheus:
        prometheus.wait_for("gpu_info", count=4)
        # Rates over $__rate_interval (4 s at a 1 s scrape) need a few scrapes of every target.
        prometheus.wait_for("count_over_time(up[10s]) >= 5", count=len(NODES))
        yield Demo(prometheus, PrometheusApi(prometheus.url), started)


def dashboard(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((REPO / "grafana" / f"{name}.json").read_text())
    return document


def check(name: str, data: Sequence[PanelData], available: set[str]) -> set[str]:
    """Fail on any query Prometheus rejected or any empty one over available series; the missing names."""
    missing: set[str] = set()
    for panel in data:
        for result in panel.results:
            where = f"{name}: {panel.panel['title']} ({result.ref_id})\n{result.expr}"
            assert not result.error, f"{where}\n{result.error}"
            needs = metric_names(result.expr) - available
            missing |= needs
            if not needs:
                assert result.series, f"{where}\nreturned nothing"
    return missing


def values(data: Sequence[PanelData], title: str) -> dict[str, float]:
    (panel,) = [p for p in data if p.panel.get("title") == title]
    return {name: series.points[-1][1] for result in panel.results for name, series in result.series}


def test_every_panel_query_against_real_prometheus(demo: Demo) -> None:
    available = set(demo.prometheus.api("label/__name__/values"))
    missing: set[str] = set()
    views: dict[str, list[Mapping[str, list[str]]]] = {
        "cluster-overview": [
            {},
            {"node": ["gpu-b.lab"], "namespace": ["web"]},
            {"node": ["gpu-a.lab", "gpu-b.lab"]},
        ],
        "node-detail": [{}, {"node": ["gpu-b.lab"], "gpu": ["0"]}],
        "workloads": [{}, {"namespace": ["web"], "pod": ["infer-0", "infer-1"]}],
        "hpa-experiment": [{}, {"namespace": ["web"], "pod": ["infer-[01]"], "target": ["40"]}],
    }
    results: dict[tuple[str, int], list[PanelData]] = {}
    for name in DASHBOARDS:
        for index, overrides in enumerate(views[name]):
            data = run_dashboard(dashboard(name), demo.api, demo.time_range(), overrides)
            if name == "node-detail" and index == 1:
                # gpu-b.lab's exporter serves no host series: only the panels above the Host row answer.
                (host,) = [p.panel["gridPos"]["y"] for p in data if p.panel.get("title") == "Host"]
                data = [p for p in data if p.panel["gridPos"]["y"] < host]
            missing |= check(name, data, available)
            results[(name, index)] = data
    assert {n for n in missing if not n.startswith("kube_horizontalpodautoscaler_")} == ABSENT

    assert values(results[("cluster-overview", 0)], "GPUs") == {"{}": 4}
    assert values(results[("cluster-overview", 1)], "GPUs") == {"{}": 2}
    assert values(results[("cluster-overview", 2)], "GPUs") == {"{}": 4}
    assert values(results[("cluster-overview", 0)], "GPUs allocated") == {"{}": 4}
    assert values(results[("cluster-overview", 0)], "Allocation slots in use") == {"{}": pytest.approx(5 / 6)}
    top = values(results[("cluster-overview", 1)], "Top pods by GPU use")
    assert set(top) == {"web/infer-0", "web/infer-1", "web/infer-2"}
    # infer-0 and infer-2 split GPU 0 equally.
    assert top["web/infer-0"] == pytest.approx(top["web/infer-2"])
    holders = values(results[("workloads", 1)], "Holders of shared GPUs")
    assert set(holders) == {"gpu-b.lab GPU 0: web/infer-0/server"}
    # infer-0 holds no whole GPU: only infer-1 has exclusive device series.
    assert set(values(results[("workloads", 1)], "GPU utilization per pod")) == {"web/infer-1"}
    assert set(values(results[("node-detail", 1)], "Utilization")) == {"GPU 0"}
    assert values(results[("hpa-experiment", 1)], "Pods holding GPUs") == {"{}": 2}


def test_previews_render(demo: Demo, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if PREVIEW_SECONDS:
        time.sleep(PREVIEW_SECONDS)
    out = Path(PREVIEW_OUT) if PREVIEW_OUT else tmp_path
    span = demo.time_range()
    files = [REPO / "grafana" / f"{name}.json" for name in DASHBOARDS]
    arguments = [f"--prometheus={demo.prometheus.url}", f"--out={out}", "--scrape-interval=1s"]
    arguments += [f"--from={span.start}", f"--to={span.end}"]
    assert preview.main([*map(str, files), *arguments]) == 0
    for name in DASHBOARDS:
        assert (out / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = capsys.readouterr().out
    assert "no data: SM time per container" in report
    assert "no data: GPU utilization per pod" not in report

"""The exporter as users run it: a real process, scraped over HTTP, stopped with SIGTERM."""

from __future__ import annotations

import gzip
import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import RunningExporter
from tests.integration.processes import REPO
from tests.support import free_port, require_program

SIMULATED = ("--gpu-source", "simulated", "--simulated-gpus", "2", "--simulated-profile", "constant:0.5")


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_metrics_health_and_readiness(start_exporter: Callable[..., RunningExporter]) -> None:
    exporter = start_exporter(*SIMULATED, "--host-metrics", "false")
    assert get(f"{exporter.url}/healthz")[0] == 200
    assert get(f"{exporter.url}/readyz")[0] == 200
    status, headers, body = get(f"{exporter.url}/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    utilization = families["gpu_utilization_ratio"]
    assert sorted(s.labels["gpu"] for s in utilization.samples) == ["0", "1"]
    assert all(0.0 <= s.value <= 1.0 for s in utilization.samples)
    assert families["gpu_energy_joules"].type == "counter"
    assert families["kgm_build_info"].samples[0].labels["gpu_source"] == "simulated"
    assert families["kgm_nvml_up"].samples[0].value == 0.0
    assert "node_load1" not in families


def test_openmetrics_and_gzip_by_negotiation(start_exporter: Callable[..., RunningExporter]) -> None:
    exporter = start_exporter(*SIMULATED, "--host-metrics", "false")
    status, headers, body = get(
        f"{exporter.url}/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text")
    names = {f.name for f in parse_openmetrics(body.decode())}  # type: ignore[no-untyped-call]
    assert {"gpu_utilization_ratio", "gpu_energy_joules", "gpu"} <= names
    status, headers, body = get(f"{exporter.url}/metrics", {"Accept-Encoding": "gzip"})
    assert headers.get("Content-Encoding") == "gzip"
    assert b"gpu_memory_total_bytes" in gzip.decompress(body)


def test_unknown_paths_and_methods(start_exporter: Callable[..., RunningExporter]) -> None:
    exporter = start_exporter(*SIMULATED, "--host-metrics", "false")
    assert get(f"{exporter.url}/nope")[0] == 404
    request = urllib.request.Request(f"{exporter.url}/metrics", method="POST", data=b"x")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=10)
    assert error.value.code == 405


def test_exposition_passes_promtool_lint(start_exporter: Callable[..., RunningExporter]) -> None:
    promtool = require_program("promtool")
    exporter = start_exporter(*SIMULATED, "--host-metrics", "true")
    body = get(f"{exporter.url}/metrics")[2]
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=60, check=False
    )
    complaints = (result.stdout + result.stderr).decode().splitlines()
    # node_exporter's /proc/meminfo names (node_memory_MemTotal_bytes, ...) are camelCase by design;
    # we keep them for compatibility and accept exactly that lint complaint, nothing else.
    unexpected = [
        line
        for line in complaints
        if not (line.startswith("node_memory_") and "should be written in 'snake_case'" in line)
    ]
    assert unexpected == []
    assert "node_memory_MemTotal_bytes" in body.decode()


def test_sigterm_stops_cleanly(start_exporter: Callable[..., RunningExporter]) -> None:
    exporter = start_exporter(*SIMULATED, "--host-metrics", "false")
    exporter.process.send_signal(signal.SIGTERM)
    assert exporter.process.wait(timeout=15) == 0
    events = [json.loads(line)["msg"] for line in exporter.log().splitlines() if line.startswith("{")]
    assert events[-2:] == ["shutting down", "stopped"]


def test_auto_without_nvml_serves_no_gpus_and_says_why(
    start_exporter: Callable[..., RunningExporter],
) -> None:
    exporter = start_exporter("--gpu-source", "auto", "--host-metrics", "false")
    families = {f.name: f for f in text_string_to_metric_families(get(f"{exporter.url}/metrics")[2].decode())}
    if families["kgm_nvml_up"].samples[0].value == 1.0:
        pytest.skip("this machine has a working NVML")
    assert not families["gpu_utilization_ratio"].samples
    assert "NVML unavailable" in exporter.log()


def test_nvml_requested_but_absent_is_a_clear_startup_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "--gpu-source", "nvml", "--listen", f"127.0.0.1:{free_port()}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if result.returncode == 0:
        pytest.skip("this machine has a working NVML")
    assert result.returncode == 2
    assert "--gpu-source=nvml but NVML is unavailable" in result.stderr


def test_port_in_use_is_a_clear_error(start_exporter: Callable[..., RunningExporter]) -> None:
    first = start_exporter(*SIMULATED, "--host-metrics", "false")
    result = subprocess.run(
        [sys.executable, "-m", "exporter", *SIMULATED, "--listen", f"127.0.0.1:{first.port}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "cannot serve on 127.0.0.1:" in result.stderr


def test_simulated_pods_attribute_gpus_like_the_kubelet(
    start_exporter: Callable[..., RunningExporter],
) -> None:
    exporter = start_exporter(
        *SIMULATED,
        "--host-metrics",
        "false",
        "--simulated-pod",
        "ml/trainer",
        "--simulated-pod",
        "ml/infer/srv",
    )
    families = {f.name: f for f in text_string_to_metric_families(get(f"{exporter.url}/metrics")[2].decode())}
    holders = {
        s.labels["gpu"]: (s.labels["pod"], s.labels["container"])
        for s in families["gpu_utilization_ratio"].samples
    }
    assert holders == {"0": ("trainer", "main"), "1": ("infer", "srv")}
    allocation = {(s.labels["gpu"], s.labels["pod"]) for s in families["gpu_allocation_info"].samples}
    assert allocation == {("0", "trainer"), ("1", "infer")}
    assert families["kgm_pod_resources_up"].samples[0].value == 1.0

"""``kube-gpu-hpa watch`` on the local demo stack: a simulated exporter, the adapter, and the watcher's
decision from what the adapter serves."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hpalab.algorithm import ControllerConfig, Decision
from hpalab.hpa_spec import load_hpa
from hpalab.watch import ClusterView, run_watch, tls_context
from tests.integration.conftest import RunningExporter
from tests.support import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture
def adapter_url(start_exporter: Callable[..., RunningExporter], tmp_path: Path) -> Iterator[str]:
    """Two simulated GPUs pinned at 100 %, one per pod of ``gpu-demo/llm-inference``, behind the adapter."""
    exporter = start_exporter(
        "--gpu-source", "simulated", "--simulated-gpus", "2",
        "--simulated-profile", "constant:1", "--simulated-profile", "constant:1",
        "--simulated-pod", "gpu-demo/llm-inference-0", "--simulated-pod", "gpu-demo/llm-inference-1",
        "--host-metrics", "false",
    )  # fmt: skip
    port = free_port()
    log = (tmp_path / "adapter.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "adapter", "--listen", f"127.0.0.1:{port}", "--backend", "direct",
         "--exporter-url", exporter.url, "--insecure-local"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=log, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    url = f"https://127.0.0.1:{port}"
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE

    def serving() -> bool:
        if process.poll() is not None:
            pytest.fail(
                f"adapter exited with {process.returncode}:\n{(tmp_path / 'adapter.log').read_text()}"
            )
        pods = f"{url}/apis/custom.metrics.k8s.io/v1beta2/namespaces/gpu-demo/pods/*/gpu_utilization"
        try:
            with urllib.request.urlopen(pods, timeout=2, context=insecure) as response:
                return b"llm-inference-1" in response.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    try:
        wait_until(serving, timeout=30)
        yield url
    finally:
        process.kill()
        process.wait(timeout=10)
        log.close()


def test_watch_decides_from_the_live_adapter(adapter_url: str) -> None:
    """Both pods near 100 % against a 60 % target: ratio >= 1.5, ceil(2 x ratio) = 4, within the policies."""
    decisions: list[Decision] = []

    def record(decision: Decision, _view: ClusterView) -> None:
        decisions.append(decision)

    run_watch(
        load_hpa(REPO / "examples" / "hpa" / "hpa-gpu-utilization.yaml"),
        adapter=adapter_url,
        context=tls_context(insecure=True),
        selector="",
        config=ControllerConfig(sync_period=0.1),
        syncs=2,
        on_decision=record,
    )
    assert [(d.current_replicas, d.desired_replicas) for d in decisions] == [(2, 4), (2, 4)]
    assert decisions[0].metrics is not None
    assert decisions[0].metrics.proposals[0].usage is not None
    assert decisions[0].metrics.proposals[0].usage >= 90_000

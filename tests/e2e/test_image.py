"""The container image: built from the Dockerfile for real, then its exporter and adapter run and answer.

Containers share the host's network namespace and listen on loopback only, read-only root
filesystem and the image's non-root user, as deploy/ runs them.
"""

from __future__ import annotations

import json
import ssl
import tomllib
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.docker import Docker
from tests.integration.processes import REPO
from tests.support import free_port, http_ok, wait_until

# A cold cache bootstraps the base image and downloads every wheel first.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

RunContainer = Callable[..., str]


@pytest.fixture
def run_container(docker: Docker, image: str) -> Iterator[RunContainer]:
    """Start the image detached with the given command; every container is removed afterwards."""
    started: list[str] = []

    def run(*command: str) -> str:
        container = docker(
            "run", "--detach", "--network", "host", "--read-only", "--tmpfs", "/tmp", image, *command
        ).stdout.strip()
        started.append(container)
        return container

    yield run
    for container in started:
        docker("rm", "--force", container, check=False)


def _wait_serving(docker: Docker, container: str, ready: Callable[[], bool]) -> None:
    def serving() -> bool:
        state = docker("inspect", "--format", "{{.State.Running}}", container).stdout.strip()
        if state != "true":
            pytest.fail(f"container exited:\n{docker('logs', container, check=False).stderr[-4000:]}")
        return ready()

    wait_until(serving, timeout=60, interval=0.5)


def _unverified() -> ssl.SSLContext:
    # The adapter's own self-signed certificate: there is nothing here to verify it against.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10, context=_unverified()) as response:
        return json.load(response)


def _https_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5, context=_unverified()) as response:
            return int(response.status) == 200
    except OSError:
        return False


def test_image_runs_as_non_root_with_every_program_and_no_build_tools(docker: Docker, image: str) -> None:
    config = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == "65532:65532"
    assert config["Labels"]["org.opencontainers.image.title"] == "kube-gpu-metrics"
    assert config["Labels"]["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert docker("run", "--rm", image, "id", "-u").stdout.strip() == "65532"
    # Every console script starts: a package the Dockerfile forgot to copy fails on import here.
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert {"kube-gpu-exporter", "kube-gpu-adapter"} <= set(scripts)
    for script in scripts:
        docker("run", "--rm", image, script, "--help")
    absent = docker(
        "run", "--rm", image, "sh", "-c", "for p in pip pip3 gcc cc make; do command -v $p; done", check=False
    )
    assert absent.stdout.strip() == "", f"build tools left in the image: {absent.stdout}"


def test_exporter_and_adapter_from_the_image_serve_simulated_gpus(
    docker: Docker, run_container: RunContainer
) -> None:
    exporter_port, adapter_port = free_port(), free_port()
    exporter = run_container(
        "kube-gpu-exporter",
        f"--listen=127.0.0.1:{exporter_port}",
        "--gpu-source=simulated",
        "--simulated-gpus=2",
        "--simulated-profile=constant:0.5",
        "--host-metrics=false",
        "--pod-resources-socket=",
        "--node-name=image-node",
    )
    exporter_url = f"http://127.0.0.1:{exporter_port}"
    _wait_serving(docker, exporter, lambda: http_ok(f"{exporter_url}/readyz"))
    with urllib.request.urlopen(f"{exporter_url}/metrics", timeout=10) as response:
        families = {f.name: f for f in text_string_to_metric_families(response.read().decode())}
    utilization = [s.value for s in families["gpu_utilization_ratio"].samples]
    assert len(utilization) == 2
    assert all(0.4 < u < 0.6 for u in utilization)

    adapter = run_container(
        "kube-gpu-adapter",
        f"--listen=127.0.0.1:{adapter_port}",
        "--insecure-local",
        f"--exporter-url={exporter_url}",
    )
    base = f"https://127.0.0.1:{adapter_port}/apis/custom.metrics.k8s.io/v1beta1"
    _wait_serving(docker, adapter, lambda: _https_ok(f"https://127.0.0.1:{adapter_port}/readyz"))
    resources = {r["name"] for r in _get_json(base)["resources"]}
    assert {"pods/gpu_utilization", "nodes/gpu_utilization"} <= resources

    def node_metric_served() -> bool:
        try:
            items = _get_json(f"{base}/nodes/image-node/gpu_utilization")["items"]
        except OSError:
            return False
        return len(items) == 1

    wait_until(node_metric_served, timeout=30, interval=0.5)
    [item] = _get_json(f"{base}/nodes/image-node/gpu_utilization")["items"]
    assert item["describedObject"] == {"kind": "Node", "name": "image-node", "apiVersion": "/v1"}
    value = item["value"]
    percent = float(value[:-1]) / 1000 if value.endswith("m") else float(value)
    assert 40 < percent < 60

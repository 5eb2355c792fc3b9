"""Fixtures for the end-to-end tests: the container image, and a real Kubernetes control plane."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.control_plane import ControlPlane, start_control_plane
from tests.e2e.docker import Docker, base_image, build_image, start_daemon, stop_daemon
from tests.integration.processes import REPO

IMAGE = "kube-gpu-metrics:e2e"


@pytest.fixture(scope="session")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Docker]:
    """A Docker daemon that answers; stopped afterwards if the fixture started it."""
    run_dir = tmp_path_factory.mktemp("dockerd")
    client, process = start_daemon(run_dir)
    yield client
    if process is not None:
        stop_daemon(process, run_dir)


@pytest.fixture(scope="session")
def image(docker: Docker) -> str:
    """The project's image, built from the Dockerfile on a locally bootstrapped base image."""
    build_image(docker, REPO, base_image(docker), IMAGE)
    return IMAGE


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd + kube-apiserver + kube-controller-manager in a network namespace; always torn down."""
    started = start_control_plane(tmp_path_factory.mktemp("control-plane"))
    yield started
    started.stop()

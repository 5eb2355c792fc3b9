"""Fixtures that start real exporter processes on loopback and always stop them."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.fakes.fake_kubelet import Allocation, FakeKubelet, KubeletState
from tests.integration.processes import spawn
from tests.support import RunningProcess, free_port


class RunningExporter(RunningProcess):
    """An exporter process and where it serves."""

    name = "exporter"


@pytest.fixture
def start_exporter(tmp_path: Path) -> Iterator[Callable[..., RunningExporter]]:
    """Start ``python -m exporter`` with the given flags on a free loopback port; ready when it returns."""
    started: list[RunningExporter] = []

    def start(*flags: str, wait_ready: bool = True, env: dict[str, str] | None = None) -> RunningExporter:
        port = free_port()
        log_path = tmp_path / f"exporter-{port}.log"
        process = spawn("exporter", ["--listen", f"127.0.0.1:{port}", *flags], log_path, env=env)
        running = RunningExporter(process, port, log_path)
        started.append(running)
        if wait_ready:
            running.wait_answers("/readyz")
        return running

    yield start
    for running in started:
        running.kill()


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A directory for unix sockets, removed afterwards.

    A unix socket path must stay under ~100 bytes, which pytest's tmp_path may not.
    """
    with tempfile.TemporaryDirectory(prefix="kgm-") as directory:
        yield Path(directory)


@pytest.fixture
def start_simulated_node(
    start_exporter: Callable[..., RunningExporter], socket_dir: Path
) -> Iterator[Callable[..., RunningExporter]]:
    """Start an exporter on simulated GPUs whose pods come from a fake kubelet of its own.

    ``loads`` holds one constant load per GPU and ``holders`` its ``(namespace, pod, container)``,
    or ``None`` for a GPU no pod holds; extra flags go to the exporter.
    """
    kubelets: list[FakeKubelet] = []

    def start(
        node: str,
        seed: int,
        loads: Sequence[float],
        holders: Sequence[tuple[str, str, str] | None],
        *flags: str,
    ) -> RunningExporter:
        allocations = [
            Allocation(*holder, "nvidia.com/gpu", [str(index)])
            for index, holder in enumerate(holders)
            if holder
        ]
        kubelet = FakeKubelet(
            str(socket_dir / f"{node}.sock"),
            KubeletState(allocations, {"nvidia.com/gpu": [str(i) for i in range(len(holders))]}),
        )
        kubelet.start()
        kubelets.append(kubelet)
        profiles = [flag for load in loads for flag in ("--simulated-profile", f"constant:{load}")]
        return start_exporter(
            "--gpu-source=simulated",
            f"--simulated-gpus={len(loads)}",
            *profiles,
            f"--simulated-seed={seed}",
            f"--node-name={node}",
            f"--pod-resources-socket={kubelet.socket_path}",
            "--host-metrics=false",
            *flags,
        )

    yield start
    for kubelet in kubelets:
        kubelet.stop()

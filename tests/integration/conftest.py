"""Fixtures that start real exporter processes on loopback and always stop them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import free_port, http_ok, wait_until

REPO = Path(__file__).resolve().parents[2]


@dataclass
class RunningExporter:
    """An exporter process and where it serves."""

    process: subprocess.Popen[str]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text()


@pytest.fixture
def start_exporter(tmp_path: Path) -> Iterator[Callable[..., RunningExporter]]:
    """Start ``python -m exporter`` with the given flags on a free loopback port; ready when it returns."""
    started: list[RunningExporter] = []

    def start(*flags: str, wait_ready: bool = True, env: dict[str, str] | None = None) -> RunningExporter:
        port = free_port()
        log_path = tmp_path / f"exporter-{port}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "exporter", "--listen", f"127.0.0.1:{port}", *flags],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=log_path.open("w"),
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        running = RunningExporter(process, port, log_path)
        started.append(running)
        if wait_ready:

            def ready() -> bool:
                if process.poll() is not None:
                    pytest.fail(f"exporter exited with {process.returncode}:\n{running.log()}")
                return http_ok(f"{running.url}/readyz")

            wait_until(ready, timeout=30)
        return running

    yield start
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait(timeout=10)

"""What every benchmark shares: percentiles, machine facts, server processes, tables and result files.

The machines these run on are shared and noisy, so a figure only means something next to a floor or a
peer measured in the same run; the helpers here make that the easy path (``ratio``, interleaved loops
in the scripts) rather than something each script reinvents.
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"

Row = Mapping[str, Any]


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile ``q`` (0-100) of ``values``."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass(frozen=True)
class Latency:
    """p50 and p99 of a set of timings, in milliseconds."""

    p50_ms: float
    p99_ms: float
    count: int

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        return cls(1000 * statistics.median(seconds), 1000 * percentile(seconds, 99), len(seconds))


def ratio(value: float, floor: float) -> float:
    """``value / floor``; infinite when the floor is 0, so a broken floor never reads as a good ratio."""
    return value / floor if floor > 0 else float("inf")


def spread(values: Sequence[float]) -> str:
    """``median (min-max)`` of repeated measurements of one figure."""
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def http_get(port: int, path: str, headers: Mapping[str, str] | None = None) -> bytes:
    """One GET on a fresh loopback connection, as a scraper without keep-alive makes it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers=dict(headers or {}))
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path} on port {port}: HTTP {response.status}")
        return body
    finally:
        connection.close()


def timed_get(port: int, path: str, headers: Mapping[str, str] | None = None) -> tuple[float, int]:
    """Seconds one GET took and the size of its body."""
    started = time.perf_counter()
    body = http_get(port, path, headers)
    return time.perf_counter() - started, len(body)


class ExitedEarly(Exception):
    """A server process ended before it was ready."""


def wait_for(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Poll ``predicate`` until true; a ``TimeoutError`` naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, RuntimeError, http.client.HTTPException):
            if predicate():
                return
        time.sleep(0.05)
    raise TimeoutError(f"{what} not ready within {timeout}s")


def cpu_seconds(process: psutil.Process) -> float:
    """User plus system CPU time of ``process`` so far."""
    times = process.cpu_times()
    return float(times.user + times.system)


def rss_mib(process: psutil.Process) -> float:
    return float(process.memory_info().rss) / 2**20


def exporter_command(port: int, gpu_source: str, *flags: str) -> list[str]:
    """Our exporter's CLI on loopback ``port``, quiet, no kubelet unless ``flags`` give one."""
    return [
        sys.executable,
        "-m",
        "exporter",
        "--listen",
        f"127.0.0.1:{port}",
        "--gpu-source",
        gpu_source,
        "--pod-resources-socket",
        "",
        "--log-level",
        "warning",
        *flags,
    ]


@contextlib.contextmanager
def process(
    command: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path = REPO
) -> Iterator[psutil.Process]:
    """Run ``command`` in ``cwd``; always stopped on exit (SIGTERM, then SIGKILL after 10 s)."""
    child = subprocess.Popen(
        list(command),
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield psutil.Process(child.pid)
    finally:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


@contextlib.contextmanager
def server_process(
    command: Sequence[str],
    *,
    port: int,
    ready_path: str,
    env: Mapping[str, str] | None = None,
    cwd: Path = REPO,
    timeout: float = 60,
) -> Iterator[psutil.Process]:
    """Start ``command`` in ``cwd``, wait until ``ready_path`` answers 200 on ``port``, always stop it."""
    with process(command, env=env, cwd=cwd) as started:

        def ready() -> bool:
            with contextlib.suppress(psutil.TimeoutExpired):
                code = started.wait(timeout=0)
                raise ExitedEarly(f"{command[0]} exited with {code} before it was ready")
            http_get(port, ready_path)
            return True

        wait_for(ready, timeout=timeout, what=" ".join(command[:3]))
        yield started


def machine() -> dict[str, Any]:
    """Where and when the figures were taken."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": model,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def table(rows: Sequence[Row], columns: Sequence[tuple[str, str, str]]) -> str:
    """A fixed-width text table; ``columns`` are (key, heading, format spec)."""
    cells = [[format(row[key], spec) if key in row else "-" for key, _, spec in columns] for row in rows]
    headings = [heading for _, heading, _ in columns]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headings)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(headings, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(cell, widths, strict=True)) for cell in cells]
    return "\n".join(lines)


def write_results(name: str, payload: Mapping[str, Any]) -> Path:
    """``bench/results/<name>.json`` with the machine facts added; returns its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2, default=str) + "\n")
    return path

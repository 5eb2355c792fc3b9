"""A real Prometheus (Debian's /usr/bin/prometheus) for tests: generated config, tmp storage, always killed.

Use ``running_prometheus`` as a context manager, or through a module's own fixture::

    with running_prometheus(tmp_path, ["127.0.0.1:9402"]) as prometheus:
        prometheus.wait_for("up", count=1)
        prometheus.query('avg by (pod) (DCGM_FI_DEV_GPU_UTIL)')
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import RunningProcess, free_port, require_program, wait_until

JOB = "kube-gpu-exporter"


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector."""

    labels: Mapping[str, str]
    value: float
    timestamp: float


class RunningPrometheus(RunningProcess):
    """A Prometheus process and its HTTP API."""

    name = "prometheus"

    def api(self, path: str, params: Sequence[tuple[str, str]] = ()) -> Any:
        """GET ``/api/v1/<path>`` and return its ``data``; an error answer fails the test."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(list(params))}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:
            pytest.fail(f"Prometheus answered {exc.code} to {url}: {exc.read().decode(errors='replace')}")
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        """An instant query; ``at`` (unix seconds) pins the evaluation time."""
        params = [("query", promql)] + ([("time", f"{at:.3f}")] if at is not None else [])
        data = self.api("query", params)
        assert data["resultType"] == "vector", data
        return [
            Sample(item["metric"], float(item["value"][1]), float(item["value"][0]))
            for item in data["result"]
        ]

    def wait_for(self, promql: str, *, count: int, timeout: float = 30.0) -> list[Sample]:
        """Poll ``promql`` until it returns at least ``count`` series."""
        found: list[Sample] = []

        def enough() -> bool:
            nonlocal found
            found = self.query(promql)
            return len(found) >= count

        enough.__name__ = f"{promql!r} returns {count} series"
        wait_until(enough, timeout=timeout, interval=0.25)
        return found


def prometheus_config(
    targets: Sequence[str], *, interval: str = "1s", rule_files: Sequence[Path] = ()
) -> str:
    """A config scraping ``targets`` every ``interval`` with ``honor_labels``, as the shipped one does."""
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval, "scrape_timeout": interval},
        "scrape_configs": [
            {"job_name": JOB, "honor_labels": True, "static_configs": [{"targets": list(targets)}]}
        ],
    }
    if rule_files:
        config["rule_files"] = [str(path) for path in rule_files]
    return yaml.safe_dump(config)


@contextlib.contextmanager
def running_prometheus(
    directory: Path,
    targets: Sequence[str],
    *,
    interval: str = "1s",
    rule_files: Sequence[Path] = (),
) -> Iterator[RunningPrometheus]:
    """Start Prometheus on a free loopback port scraping ``targets``; ready on entry, killed on exit."""
    binary = require_program("prometheus", "/usr/bin/prometheus")
    home = directory / f"prometheus-{time.monotonic_ns()}"
    home.mkdir(parents=True)
    config = home / "prometheus.yml"
    config.write_text(prometheus_config(targets, interval=interval, rule_files=rule_files))
    port = free_port()
    log_path = home / "prometheus.log"
    with log_path.open("wb") as log_file:
        # No --web.enable-lifecycle or admin API: the tests only read.
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            cwd=home,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    running = RunningPrometheus(process, port, log_path)
    try:
        running.wait_answers("/-/ready")
        yield running
    finally:
        running.kill()

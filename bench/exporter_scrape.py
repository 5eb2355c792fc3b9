"""Scrape latency of a real exporter process over HTTP, by GPU count and host metrics on/off.

    .venv/bin/python -m bench.exporter_scrape [--scrapes 500] [--gpus 1,8,16]

Prints p50/p99 latency and the exporter's CPU time per scrape; writes bench/results/exporter_scrape.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil

from tests.support import free_port, http_ok, wait_until

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return bytes(response.read())


def measure(gpus: int, host_metrics: bool, scrapes: int) -> dict[str, float | int | bool]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "--listen",
            f"127.0.0.1:{port}",
            "--gpu-source",
            "simulated",
            "--simulated-gpus",
            str(gpus),
            "--host-metrics",
            str(host_metrics).lower(),
            "--log-level",
            "warning",
        ],
        cwd=REPO,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_ok(f"{url}/readyz"), timeout=30)
        for _ in range(20):
            fetch(f"{url}/metrics")
        cpu = psutil.Process(process.pid)
        cpu_before = sum(cpu.cpu_times()[:2])
        latencies = []
        size = 0
        for _ in range(scrapes):
            started = time.perf_counter()
            size = len(fetch(f"{url}/metrics"))
            latencies.append(time.perf_counter() - started)
        cpu_seconds = sum(cpu.cpu_times()[:2]) - cpu_before
        rss = cpu.memory_info().rss
    finally:
        process.terminate()
        process.wait(timeout=10)
    latencies.sort()
    return {
        "gpus": gpus,
        "host_metrics": host_metrics,
        "scrapes": scrapes,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "cpu_ms_per_scrape": 1000 * cpu_seconds / scrapes,
        "rss_mib": rss / 2**20,
        "body_bytes": size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scrapes", type=int, default=500)
    parser.add_argument("--gpus", default="1,8,16")
    args = parser.parse_args()
    rows = [measure(int(gpus), host, args.scrapes) for gpus in args.gpus.split(",") for host in (False, True)]
    print(f"{'gpus':>4} {'host':>5} {'p50 ms':>8} {'p99 ms':>8} {'cpu ms':>8} {'rss MiB':>8} {'bytes':>8}")
    for r in rows:
        print(
            f"{r['gpus']:>4} {r['host_metrics']!s:>5} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{r['cpu_ms_per_scrape']:>8.2f} {r['rss_mib']:>8.1f} {r['body_bytes']:>8}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "exporter_scrape.json"
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()}
    out.write_text(json.dumps({"machine": machine, "results": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""Host metrics: our exporter (no GPUs, host metrics on) against Debian's prometheus-node-exporter.

    .venv/bin/python -m bench.host_vs_node_exporter [--scrapes 500] [--rounds 5] [--baseline DIR]

node_exporter runs with only the collectors whose series we export (cpu, meminfo, loadavg,
filesystem, diskstats, netdev); ours with ``--gpu-source none --host-metrics true`` and no kubelet.
Scrapes alternate between the two (which one goes first alternates too), on fresh connections,
once as ``curl`` asks (plain text) and once as Prometheus asks (OpenMetrics preferred, gzip), so
both see the same machine at the same moments. ``--baseline DIR`` adds a third exporter run from
another tree (e.g. ``git archive <commit> exporter kgm_common | tar -x -C DIR``): before/after
figures from the same run. Each round gives a ratio; the table shows the median and the spread.
Writes bench/results/host_vs_node_exporter.json.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

from bench.common import (
    REPO,
    Latency,
    cpu_seconds,
    free_port,
    ratio,
    server_process,
    spread,
    table,
    timed_get,
    write_results,
)
from bench.common import (
    exporter_command as common_exporter_command,
)

NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
COLLECTORS = ("cpu", "meminfo", "loadavg", "filesystem", "diskstats", "netdev")
# What Prometheus 2.x sends on every scrape.
PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
}
REQUESTS: Mapping[str, Mapping[str, str]] = {"plain": {}, "prometheus": PROMETHEUS_HEADERS}


def node_exporter_command(port: int) -> list[str]:
    return [
        NODE_EXPORTER,
        f"--web.listen-address=127.0.0.1:{port}",
        "--collector.disable-defaults",
        *(f"--collector.{name}" for name in COLLECTORS),
    ]


def exporter_command(port: int) -> list[str]:
    return common_exporter_command(port, "none", "--host-metrics", "true")


def one_round(
    servers: Mapping[str, tuple[int, psutil.Process]], headers: Mapping[str, str], scrapes: int
) -> dict[str, dict[str, Any]]:
    """``scrapes`` of each server, interleaved, rotating which goes first."""
    names = list(servers)
    timings: dict[str, list[float]] = {name: [] for name in names}
    sizes: dict[str, int] = {}
    cpu_before = {name: cpu_seconds(process) for name, (_, process) in servers.items()}
    for i in range(scrapes):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            seconds, sizes[name] = timed_get(servers[name][0], "/metrics", headers)
            timings[name].append(seconds)
    return {
        name: {
            **Latency.of(timings[name]).__dict__,
            "cpu_ms": 1000 * (cpu_seconds(servers[name][1]) - cpu_before[name]) / scrapes,
            "body_bytes": sizes[name],
        }
        for name in names
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scrapes", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another tree's exporter to run alongside")
    args = parser.parse_args()
    commands = {"ours": (exporter_command, REPO), "node_exporter": (node_exporter_command, REPO)}
    if args.baseline is not None:
        commands["baseline"] = (exporter_command, args.baseline.resolve())
    rounds: dict[str, list[dict[str, dict[str, Any]]]] = {request: [] for request in REQUESTS}
    with contextlib.ExitStack() as stack:
        servers = {}
        for name, (command, cwd) in commands.items():
            port = free_port()
            ready = "/healthz" if name != "node_exporter" else "/metrics"
            process = stack.enter_context(server_process(command(port), port=port, ready_path=ready, cwd=cwd))
            servers[name] = (port, process)
        for request, headers in REQUESTS.items():
            one_round(servers, headers, 50)
            for _ in range(args.rounds):
                rounds[request].append(one_round(servers, headers, args.scrapes))
    rows = []
    for request, results in rounds.items():
        for name in commands:
            p50s = [r[name]["p50_ms"] for r in results]
            p99s = [r[name]["p99_ms"] for r in results]
            x_p50 = [ratio(r[name]["p50_ms"], r["node_exporter"]["p50_ms"]) for r in results]
            x_p99 = [ratio(r[name]["p99_ms"], r["node_exporter"]["p99_ms"]) for r in results]
            cpu = [r[name]["cpu_ms"] for r in results]
            rows.append(
                {
                    "request": request,
                    "exporter": name,
                    "p50_ms": statistics.median(p50s),
                    "p99_ms": statistics.median(p99s),
                    "x_p50": statistics.median(x_p50),
                    "x_p50_spread": spread(x_p50),
                    "x_p99": statistics.median(x_p99),
                    "x_p99_spread": spread(x_p99),
                    "cpu_ms": statistics.median(cpu),
                    "body_bytes": results[-1][name]["body_bytes"],
                }
            )
    print(
        table(
            rows,
            (
                ("request", "request", ""),
                ("exporter", "exporter", ""),
                ("p50_ms", "p50 ms", ".2f"),
                ("p99_ms", "p99 ms", ".2f"),
                ("x_p50_spread", "p50 vs node_exporter", ""),
                ("x_p99_spread", "p99 vs node_exporter", ""),
                ("cpu_ms", "cpu ms", ".2f"),
                ("body_bytes", "bytes", ">"),
            ),
        )
    )
    out = write_results(
        "host_vs_node_exporter",
        {"scrapes": args.scrapes, "rounds": args.rounds, "summary": rows, "per_round": rounds},
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""Scrape cost of a real exporter process by simulated GPUs, attributed pods and host metrics on/off.

    .venv/bin/python -m bench.exporter_scrape [--scrapes 500] [--gpus 1,8,16] [--pods 0,50,200]
                                              [--rss-scrapes 10000]

Pods come from a fake kubelet on a real unix socket (``tests/fakes/fake_kubelet.py``): pod ``i``
holds GPU ``i mod n``, and pods beyond the GPU count share GPUs as time-slicing replicas, as the
device plugin hands them out. Every scrape of ``/metrics`` is paired with a ``/healthz`` of the same
process (same server, same client, no collection): that is the floor each scrape is compared with.
CPU per scrape is the exporter's own CPU time over the scrapes, less what the same number of
``/healthz`` requests cost it. RSS after ``--rss-scrapes`` is taken for the smallest and the largest
configuration only (the growth in between is linear in series, which the body size shows).
``--baseline DIR`` runs each configuration again from another tree (e.g. ``git archive <commit>
exporter kgm_common | tar -x -C DIR``), right after ours: before/after figures from the same run.
Writes bench/results/exporter_scrape.json.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import (
    REPO,
    Latency,
    cpu_seconds,
    free_port,
    ratio,
    rss_mib,
    server_process,
    table,
    timed_get,
    write_results,
)
from bench.common import (
    exporter_command as common_exporter_command,
)
from exporter.gpu.simulated import SimulatedGpuSource, SimulatedGpuSpec, default_profiles
from tests.fakes.fake_kubelet import Allocation, FakeKubelet, KubeletState

RESOURCE = "nvidia.com/gpu"


def gpu_uuids(gpus: int) -> list[str]:
    """The UUIDs the exporter's simulated source gives its GPUs (seed 0)."""
    source = SimulatedGpuSource([SimulatedGpuSpec(p) for p in default_profiles(gpus)])
    return [device.uuid for device in source.devices()]


def kubelet_state(gpus: int, pods: int) -> KubeletState:
    """Pod ``i`` on GPU ``i mod gpus``; exclusive GPUs while pods fit, replica slots once they share."""
    uuids = gpu_uuids(gpus)
    shared = pods > gpus
    replicas = -(-pods // gpus) if shared else 1
    allocations = []
    for i in range(pods):
        uuid = uuids[i % gpus]
        device = f"{uuid}::{i // gpus}" if shared else uuid
        allocations.append(Allocation(f"team-{i % 10}", f"pod-{i}", "main", RESOURCE, [device]))
    allocatable = [f"{u}::{k}" for u in uuids for k in range(replicas)] if shared else uuids
    return KubeletState(allocations=allocations, allocatable={RESOURCE: allocatable})


@contextmanager
def fake_kubelet(gpus: int, pods: int) -> Iterator[str]:
    """A fake kubelet serving the allocations; yields its socket path."""
    directory = Path(tempfile.mkdtemp(prefix="kgm-bench-"))
    kubelet = FakeKubelet(str(directory / "kubelet.sock"), kubelet_state(gpus, pods))
    kubelet.start()
    try:
        yield kubelet.socket_path
    finally:
        kubelet.stop()
        directory.rmdir()


def exporter_command(port: int, gpus: int, host: bool, socket_path: str) -> list[str]:
    return common_exporter_command(
        port,
        "simulated",
        "--simulated-gpus",
        str(gpus),
        "--host-metrics",
        str(host).lower(),
        "--pod-resources-socket",
        socket_path,
    )


def measure(
    gpus: int, pods: int, host: bool, scrapes: int, rss_scrapes: int, *, tree: Path = REPO
) -> dict[str, Any]:
    """One configuration: interleaved scrape/floor latencies, CPU per scrape, RSS."""
    with fake_kubelet(gpus, pods) as socket_path:
        port = free_port()
        command = exporter_command(port, gpus, host, socket_path)
        with server_process(command, port=port, ready_path="/readyz", cwd=tree) as process:
            for _ in range(20):
                timed_get(port, "/metrics")
            scrape: list[float] = []
            floor: list[float] = []
            size = 0
            cpu_before = cpu_seconds(process)
            for _ in range(scrapes):
                floor.append(timed_get(port, "/healthz")[0])
                seconds, size = timed_get(port, "/metrics")
                scrape.append(seconds)
            cpu_pairs = cpu_seconds(process) - cpu_before
            cpu_before = cpu_seconds(process)
            for _ in range(scrapes):
                timed_get(port, "/healthz")
            cpu_floor = cpu_seconds(process) - cpu_before
            row: dict[str, Any] = {
                "tree": "baseline" if tree != REPO else "ours",
                "gpus": gpus,
                "pods": pods,
                "host": host,
                "body_bytes": size,
                "scrape": Latency.of(scrape).__dict__,
                "floor": Latency.of(floor).__dict__,
                "cpu_ms": 1000 * max(0.0, cpu_pairs - cpu_floor) / scrapes,
                "rss_mib": rss_mib(process),
            }
            if rss_scrapes:
                for _ in range(rss_scrapes - scrapes - 20):
                    timed_get(port, "/metrics")
                row["rss_after_mib"] = rss_mib(process)
                row["rss_after_scrapes"] = rss_scrapes
    return row


def flat(row: dict[str, Any]) -> dict[str, Any]:
    """The row as the printed table shows it."""
    scrape, floor = row["scrape"], row["floor"]
    return {
        **row,
        "p50": scrape["p50_ms"],
        "p99": scrape["p99_ms"],
        "floor_p50": floor["p50_ms"],
        "x_floor": ratio(scrape["p50_ms"], floor["p50_ms"]),
    }


COLUMNS = (
    ("tree", "tree", ""),
    ("gpus", "gpus", ">"),
    ("pods", "pods", ">"),
    ("host", "host", ""),
    ("p50", "p50 ms", ".2f"),
    ("p99", "p99 ms", ".2f"),
    ("floor_p50", "floor p50", ".2f"),
    ("x_floor", "p50/floor", ".1f"),
    ("cpu_ms", "cpu ms", ".2f"),
    ("rss_mib", "rss MiB", ".1f"),
    ("rss_after_mib", "rss after", ".1f"),
    ("body_bytes", "bytes", ">"),
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scrapes", type=int, default=500)
    parser.add_argument("--gpus", default="1,8,16")
    parser.add_argument("--pods", default="0,50,200")
    parser.add_argument("--rss-scrapes", type=int, default=10_000)
    parser.add_argument("--baseline", type=Path, help="also run each configuration from another tree")
    args = parser.parse_args()
    gpu_counts = [int(g) for g in args.gpus.split(",")]
    pod_counts = [int(p) for p in args.pods.split(",")]
    smallest = (min(gpu_counts), min(pod_counts), False)
    largest = (max(gpu_counts), max(pod_counts), True)
    rows = []
    for gpus in gpu_counts:
        for pods in pod_counts:
            for host in (False, True):
                rss = args.rss_scrapes if (gpus, pods, host) in (smallest, largest) else 0
                for tree in (REPO, args.baseline.resolve()) if args.baseline else (REPO,):
                    rows.append(flat(measure(gpus, pods, host, args.scrapes, rss, tree=tree)))
                    print(table(rows[-1:], COLUMNS).splitlines()[1], flush=True)
    print(table(rows, COLUMNS))
    out = write_results("exporter_scrape", {"scrapes": args.scrapes, "results": rows})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""Soak: the exporter and the adapter under steady, bounded load on loopback, memory and descriptors sampled.

    .venv/bin/python -m bench.soak [--seconds 600] [--warmup 60] [--rate 20] [--sample-every 5]

The exporter serves four simulated GPUs held by pods of a fake kubelet (on a real unix socket) and
host metrics; the adapter reads it with the direct backend and serves over TLS with delegated
authentication from files (the client presents a ``system:masters`` certificate). Clients scrape
``/metrics`` (text, OpenMetrics, gzip, and new connections each time, as Prometheus does) and walk the
adapter's paths on keep-alive connections, each at ``--rate`` requests a second. Every
``--sample-every`` seconds the RSS, open descriptors and threads of each process are read from
``/proc``. Growth is measured from the end of ``--warmup`` (imports, caches and pools filling up) to
the end. Writes bench/results/soak.json; exits 1 when a request failed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tests.fakes.fake_kubelet import Allocation, FakeKubelet, KubeletState
from tests.integration.processes import AdapterPki, Server, start

RESULTS = Path(__file__).resolve().parent / "results"
GROUP = "/apis/custom.metrics.k8s.io"
ADAPTER_PATHS = (
    f"{GROUP}/v1beta1/nodes/*/gpu_utilization",
    f"{GROUP}/v1beta2/nodes/soak-node/gpu_memory_used_bytes",
    f"{GROUP}/v1beta1/namespaces/ml/pods/*/gpu_utilization",
    f"{GROUP}/v1beta1/namespaces/ml/pods/train-0/gpu_memory_utilization",
    f"{GROUP}/v1beta1/namespaces/ml/pods/ghost/gpu_utilization",  # 404, an answer too
    f"{GROUP}/v1beta1",
    "/apis",
    "/openapi/v2",
    "/readyz",
)
EXPORTER_REQUESTS: tuple[dict[str, str], ...] = (
    {},
    {"Accept": "application/openmetrics-text; version=1.0.0"},
    {"Accept-Encoding": "gzip"},
)


@dataclass
class Sample:
    at: float
    rss_mib: float
    fds: int
    threads: int


@dataclass
class ProcessReport:
    """One process over the soak: samples, and growth from the end of the warm-up to the end."""

    name: str
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)

    def after(self, warmup: float) -> list[Sample]:
        return [s for s in self.samples if s.at >= warmup] or self.samples[-1:]

    def rss_growth_mib(self, warmup: float) -> float:
        kept = self.after(warmup)
        return kept[-1].rss_mib - kept[0].rss_mib

    def fd_range(self, warmup: float) -> tuple[int, int]:
        kept = self.after(warmup)
        return min(s.fds for s in kept), max(s.fds for s in kept)

    def summary(self, warmup: float) -> dict[str, object]:
        kept = self.after(warmup)
        return {
            "requests": self.requests,
            "errors": len(self.errors),
            "first_errors": self.errors[:5],
            "rss_mib_start": self.samples[0].rss_mib,
            "rss_mib_after_warmup": kept[0].rss_mib,
            "rss_mib_end": kept[-1].rss_mib,
            "rss_growth_mib_after_warmup": round(self.rss_growth_mib(warmup), 2),
            "fds_after_warmup_min_max": self.fd_range(warmup),
            "threads_max": max(s.threads for s in self.samples),
        }


def read_proc(pid: int) -> tuple[float, int, int]:
    """RSS in MiB, open descriptors and threads of ``pid``."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    rss_kib = int(fields["VmRSS"].split()[0])
    return rss_kib / 1024, len(os.listdir(f"/proc/{pid}/fd")), int(fields["Threads"])


@dataclass(frozen=True)
class Pace:
    """``rate`` requests a second until ``until`` (monotonic) or ``stop``."""

    rate: float
    until: float
    stop: threading.Event

    def ticks(self) -> Iterator[int]:
        """Yields on time; a slow answer delays the next tick rather than causing a burst after it."""
        interval, count = 1.0 / self.rate, 0
        next_at = time.monotonic()
        while not self.stop.is_set() and time.monotonic() < self.until:
            yield count
            count += 1
            next_at = max(next_at + interval, time.monotonic())
            self.stop.wait(max(0.0, next_at - time.monotonic()))


def exporter_client(port: int, report: ProcessReport, pace: Pace) -> None:
    for count in pace.ticks():
        headers = EXPORTER_REQUESTS[count % len(EXPORTER_REQUESTS)]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("GET", "/metrics", headers=headers)
            response = connection.getresponse()
            body = response.read()
            if response.status != 200 or len(body) < 1000:
                report.errors.append(f"/metrics {headers}: HTTP {response.status}, {len(body)} bytes")
        except OSError as exc:
            report.errors.append(f"/metrics {headers}: {exc!r}")
        finally:
            connection.close()
        report.requests += 1


def adapter_client(port: int, context: ssl.SSLContext, report: ProcessReport, pace: Pace) -> None:
    connection: http.client.HTTPSConnection | None = None
    for count in pace.ticks():
        path = ADAPTER_PATHS[count % len(ADAPTER_PATHS)]
        expected = 404 if "ghost" in path else 200
        if connection is None:
            connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            if response.status != expected:
                report.errors.append(f"{path}: HTTP {response.status}")
        except (OSError, http.client.HTTPException) as exc:
            report.errors.append(f"{path}: {exc!r}")
            connection.close()
            connection = None
        report.requests += 1
    if connection is not None:
        connection.close()


def sampler(
    servers: dict[str, Server],
    reports: dict[str, ProcessReport],
    every: float,
    started: float,
    stop: threading.Event,
) -> None:
    while True:
        for name, server in servers.items():
            rss, fds, threads = read_proc(server.process.pid)
            reports[name].samples.append(
                Sample(round(time.monotonic() - started, 1), round(rss, 2), fds, threads)
            )
        if stop.wait(every):
            return


@contextmanager
def running_pair(directory: Path) -> Iterator[tuple[Server, Server, ssl.SSLContext]]:
    """An exporter with a fake kubelet, and an adapter reading it; both stopped (SIGTERM) on exit."""
    kubelet = FakeKubelet(
        str(directory / "kubelet.sock"),
        KubeletState(
            [Allocation("ml", f"train-{i}", "main", "nvidia.com/gpu", [str(i)]) for i in range(4)],
            {"nvidia.com/gpu": [str(i) for i in range(4)]},
        ),
    )
    kubelet.start()
    servers: list[Server] = []
    try:
        exporter = start(
            "exporter",
            ["--gpu-source", "simulated", "--simulated-gpus", "4", "--node-name", "soak-node",
             "--pod-resources-socket", kubelet.socket_path, "--log-format", "logfmt"],
            directory / "exporter.log",
        )  # fmt: skip
        servers.append(exporter)
        exporter.wait_answers("/readyz")
        pki = AdapterPki.create(directory)
        adapter = start(
            "adapter",
            [*pki.serving_flags(), "--client-ca-file", str(pki.client_ca_file()),
             "--exporter-url", exporter.url, "--log-format", "logfmt"],
            directory / "adapter.log",
            scheme="https",
            tls=pki.client_context(),
        )  # fmt: skip
        servers.append(adapter)
        adapter.wait_answers("/readyz")
        yield exporter, adapter, pki.client_context("soak", organization="system:masters")
    finally:
        for server in reversed(servers):
            status = server.stop()
            if status != 0:
                raise RuntimeError(f"{server.process.args!r} exited with {status}:\n{server.log()[-2000:]}")
        kubelet.stop()


def soak(seconds: float, *, warmup: float, rate: float, sample_every: float) -> dict[str, ProcessReport]:
    """Run the soak; returns a report per process (``exporter``, ``adapter``)."""
    with (
        tempfile.TemporaryDirectory(prefix="kgm-soak-") as scratch,
        running_pair(Path(scratch)) as (exporter, adapter, context),
    ):
        reports = {"exporter": ProcessReport("exporter"), "adapter": ProcessReport("adapter")}
        stop = threading.Event()
        started = time.monotonic()
        pace = Pace(rate, started + seconds, stop)
        workers: list[tuple[Callable[..., None], tuple[object, ...]]] = [
            (exporter_client, (exporter.port, reports["exporter"], pace)),
            (adapter_client, (adapter.port, context, reports["adapter"], pace)),
        ]
        threads = [threading.Thread(target=target, args=args, daemon=True) for target, args in workers]
        watcher = threading.Thread(
            target=sampler,
            args=({"exporter": exporter, "adapter": adapter}, reports, sample_every, started, stop),
            daemon=True,
        )
        watcher.start()
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join(seconds + 30)
        finally:
            stop.set()
            watcher.join(sample_every + 5)
        for name, server in (("exporter", exporter), ("adapter", adapter)):
            if "Traceback" in server.log():
                reports[name].errors.append(f"traceback in the {name} log")
        return reports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--warmup", type=float, default=60)
    parser.add_argument("--rate", type=float, default=20, help="requests a second to each process")
    parser.add_argument("--sample-every", type=float, default=5)
    args = parser.parse_args(argv)
    reports = soak(args.seconds, warmup=args.warmup, rate=args.rate, sample_every=args.sample_every)
    result = {
        "seconds": args.seconds,
        "warmup": args.warmup,
        "rate_per_process": args.rate,
        "processes": {name: report.summary(args.warmup) for name, report in reports.items()},
        "samples": {name: [asdict(s) for s in report.samples] for name, report in reports.items()},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    for name, report in reports.items():
        print(name, json.dumps(report.summary(args.warmup)))
    return 1 if any(report.errors for report in reports.values()) else 0


if __name__ == "__main__":
    sys.exit(main())

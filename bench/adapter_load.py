"""Adapter latency and throughput for ``pods/*/gpu_utilization``, direct and Prometheus backends.

    .venv/bin/python -m bench.adapter_load [--pods 10,100,1000,5000] [--duration 5] [--concurrency 4]

For each pod count, in one run, over loopback:

- a fake exporter fleet: one aiohttp process serving, per node, the exposition our exporter renders
  for 8 simulated GPUs, each held by one pod (static bodies, rendered once by the exporter's own
  registry; nodes = pods / 8). It stands in for that many exporters on the backend side;
- the adapter (``--insecure-local``: no authentication, which is measured nowhere here) with the
  direct backend at its defaults (a scrape of every node each 5 s, 60 s window), loaded once its window
  is full (``--direct-fill``), then with the Prometheus backend over a real Prometheus scraping the
  same fleet every 5 s;
- the floors: the raw Prometheus query for the same PromQL the backend sends (built by the backend's
  own code), and a bare aiohttp handler answering the same bytes over the same TLS.

Latency: one client on a kept-alive connection for ``--duration`` seconds (at most
``--max-requests``), sending the Prometheus backend's request and the raw query in turn, so both are
measured over the same moments of this shared machine; p50 and p99. Throughput: ``--concurrency``
clients on one target at a time, requests a second. Also ``pods/<one pod>`` (one object, whatever
the cluster size), and the adapter's RSS after the load. Every client asks for uncompressed answers,
as the backend asks Prometheus. Writes bench/results/adapter_load.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import ssl
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.common import (
    REPO,
    Latency,
    free_port,
    process,
    ratio,
    rss_mib,
    table,
    wait_for,
    write_results,
)

GPUS_PER_NODE = 8
METRIC = "gpu_utilization"
NAMESPACE = "bench"
PROMETHEUS = "/usr/bin/prometheus"
PROMETHEUS_INTERVAL = "5s"


def pod_name(i: int) -> tuple[str, str]:
    """Every pod in one namespace: ``pods/*`` is asked per namespace, as an HPA over one workload asks."""
    return NAMESPACE, f"pod-{i}"


def node_expositions(pods: int) -> list[str]:
    """The exporter's text for each node: 8 simulated GPUs, pod ``i`` alone on GPU ``i mod 8``."""
    from exporter.app import build_exporter  # noqa: PLC0415 - only the parent renders bodies
    from exporter.config import ExporterConfig  # noqa: PLC0415
    from exporter.pods.model import ContainerRef  # noqa: PLC0415
    from exporter.server import render_families  # noqa: PLC0415

    bodies = []
    for node in range(-(-pods // GPUS_PER_NODE)):
        held = range(node * GPUS_PER_NODE, min(pods, (node + 1) * GPUS_PER_NODE))
        config = ExporterConfig(
            gpu_source="simulated",
            simulated_gpus=GPUS_PER_NODE,
            simulated_seed=node,
            simulated_pods=tuple(ContainerRef(*pod_name(i), "main") for i in held),
            host_metrics=False,
            pod_resources_socket="",
            node_name=f"node-{node}",
        )
        exporter = build_exporter(config)
        try:
            body = render_families(list(exporter.registry.collect()), openmetrics_format=False)
        finally:
            exporter.close()
        if body is None:
            raise RuntimeError("the exporter's exposition needs client_python's encoder")
        bodies.append(body.decode())
    return bodies


def serve_fleet(directory: Path, port: int) -> None:
    """``/node-<k>/metrics`` for every ``node-<k>.prom`` in ``directory``."""
    bodies = {path.stem: path.read_bytes() for path in directory.glob("node-*.prom")}

    async def metrics(request: web.Request) -> web.Response:
        body = bodies.get(request.match_info["node"])
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(body=body, content_type="text/plain", charset="utf-8")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/{node}/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def serve_static(body_file: Path, port: int, scratch: Path) -> None:
    """The serving floor: any GET answered with ``body_file``, over the adapter's own TLS setup."""
    from adapter.tls import self_signed_pair, server_context  # noqa: PLC0415

    body = body_file.read_bytes()

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", answer)
    context = server_context(self_signed_pair(scratch, ["127.0.0.1"]))
    web.run_app(app, host="127.0.0.1", port=port, ssl_context=context, access_log=None, print=None)


def client_tls() -> ssl.SSLContext:
    """Encrypts like a real client; the self-signed serving certificates are not what is measured."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@dataclass(frozen=True)
class Request:
    """One request to put load on: a GET, or a POST form (Prometheus' query API)."""

    url: str
    form: dict[str, str] | None = None

    def send(self, session: aiohttp.ClientSession) -> Any:
        """The request on ``session``, to be entered with ``async with``."""
        if self.form is None:
            return session.get(self.url)
        return session.post(self.url, data=self.form)


@dataclass(frozen=True)
class LoadResult:
    latency: Latency
    requests: int
    seconds: float
    errors: int
    body_bytes: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


async def closed_loop(
    requests: Sequence[Request], *, concurrency: int, duration: float, max_requests: int
) -> list[LoadResult]:
    """``concurrency`` clients each sending the next request when the last is answered.

    With several requests each client sends them in turn, so every target is measured over the same
    moments of the machine (other processes' work, Prometheus' own housekeeping): their ratio is then
    not one quiet and one busy stretch of time.
    """
    timings: list[list[float]] = [[] for _ in requests]
    errors = [0] * len(requests)
    sizes = [0] * len(requests)
    deadline = time.perf_counter() + duration
    connector = aiohttp.TCPConnector(ssl=client_tls(), limit=concurrency * len(requests))
    # Answers uncompressed, as the adapter asks Prometheus for them and as kubectl is answered.
    headers = {"Accept-Encoding": "identity"}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def client(first: int) -> None:
            turn = first
            while time.perf_counter() < deadline and sum(map(len, timings)) + sum(errors) < max_requests:
                index = turn % len(requests)
                turn += 1
                request = requests[index]
                started = time.perf_counter()
                async with request.send(session) as response:
                    body = await response.read()
                if response.status != 200:
                    errors[index] += 1
                    continue
                timings[index].append(time.perf_counter() - started)
                sizes[index] = len(body)

        started = time.perf_counter()
        await asyncio.gather(*(client(first) for first in range(concurrency)))
        elapsed = time.perf_counter() - started
    return [
        LoadResult(Latency.of(timing or [float("nan")]), len(timing), elapsed, error, size)
        for timing, error, size in zip(timings, errors, sizes, strict=True)
    ]


def load(requests: Sequence[Request], args: argparse.Namespace, concurrency: int) -> list[LoadResult]:
    return asyncio.run(
        closed_loop(requests, concurrency=concurrency, duration=args.duration, max_requests=args.max_requests)
    )


def fetch(request: Request) -> bytes:
    async def once() -> bytes:
        connector = aiohttp.TCPConnector(ssl=client_tls())
        async with aiohttp.ClientSession(connector=connector) as session, request.send(session) as response:
            if response.status != 200:
                raise RuntimeError(f"{request.url}: HTTP {response.status}")
            body: bytes = await response.read()
            return body

    return asyncio.run(once())


def items(body: bytes) -> int:
    return len(json.loads(body)["items"])


def prometheus_config(fleet_port: int, nodes: int) -> str:
    """Scrape every fake node; JSON is YAML, so no YAML library is needed."""
    groups = [
        {
            "targets": [f"127.0.0.1:{fleet_port}"],
            "labels": {"__metrics_path__": f"/node-{k}/metrics", "instance": f"node-{k}"},
        }
        for k in range(nodes)
    ]
    config = {
        "global": {"scrape_interval": PROMETHEUS_INTERVAL, "scrape_timeout": PROMETHEUS_INTERVAL},
        "scrape_configs": [{"job_name": "kube-gpu-exporter", "honor_labels": True, "static_configs": groups}],
    }
    return json.dumps(config)


def pods_promql(pods: int) -> tuple[str, str]:
    """The PromQL the Prometheus backend sends for ``pods/*`` and for one pod, by its own code."""
    from adapter.backends.base import ObjectKey  # noqa: PLC0415
    from adapter.backends.prometheus import object_matchers  # noqa: PLC0415
    from adapter.backends.promql import render_matchers  # noqa: PLC0415
    from adapter.rules import load_rules, render  # noqa: PLC0415

    rule = load_rules(None).metric(METRIC)
    if rule is None:
        raise RuntimeError(f"the default rules have no {METRIC}")
    keys = sorted(ObjectKey(*pod_name(i)) for i in range(pods))

    def query(objects: list[ObjectKey]) -> str:
        matchers = render_matchers(object_matchers(rule, "pods", objects))
        return render(rule.queries["pods"], matchers, rule.window_seconds)

    return query(keys), query([ObjectKey(*pod_name(0))])


def adapter_command(port: int, backend_args: Sequence[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "adapter",
        "--listen",
        f"127.0.0.1:{port}",
        "--insecure-local",
        *backend_args,
        "--log-level",
        "warning",
    ]


STAR_PATH = f"/apis/custom.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/pods/*/{METRIC}"
ONE_PATH = f"/apis/custom.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/pods/{pod_name(0)[1]}/{METRIC}"


def measure_size(pods: int, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    """All targets for one pod count."""
    nodes = -(-pods // GPUS_PER_NODE)
    fleet_dir = scratch / f"fleet-{pods}"
    fleet_dir.mkdir()
    for k, body in enumerate(node_expositions(pods)):
        (fleet_dir / f"node-{k}.prom").write_text(body)
    fleet_port = free_port()
    row: dict[str, Any] = {"pods": pods, "nodes": nodes}
    fleet_command = [
        sys.executable,
        "-m",
        "bench.adapter_load",
        "--serve-fleet",
        str(fleet_dir),
        str(fleet_port),
    ]
    with process(fleet_command):
        wait_for(
            lambda: fetch(Request(f"http://127.0.0.1:{fleet_port}/healthz")) == b"ok",
            timeout=30,
            what="fleet",
        )
        star_body = measure_direct(row, fleet_port, args)
        measure_bare(row, star_body, scratch / f"bare-{pods}", args)
        measure_prometheus(row, fleet_port, scratch / f"prometheus-{pods}", args)
    return row


def measure_direct(row: dict[str, Any], fleet_port: int, args: argparse.Namespace) -> bytes:
    """The adapter reading the fleet itself; returns its ``pods/*`` answer."""
    pods: int = row["pods"]
    nodes: int = row["nodes"]
    urls = ",".join(f"http://127.0.0.1:{fleet_port}/node-{k}/metrics" for k in range(nodes))
    port = free_port()
    base = f"https://127.0.0.1:{port}"
    command = adapter_command(port, ["--backend", "direct"])
    with process(command, env={"KGM_EXPORTER_URL": urls}, cwd=args.adapter_tree) as adapter:
        started = time.monotonic()
        wait_for(lambda: items(fetch(Request(base + STAR_PATH))) == pods, timeout=60, what="direct adapter")
        # Every series holds as many samples as it will in steady state.
        time.sleep(max(0.0, args.direct_fill - (time.monotonic() - started)))
        star_body = fetch(Request(base + STAR_PATH))
        (row["direct"],) = run_pair([Request(base + STAR_PATH)], [Request(base + ONE_PATH)], args)
        row["direct_rss_mib"] = rss_mib(adapter)
    row["response_bytes"] = len(star_body)
    return star_body


def measure_bare(row: dict[str, Any], body: bytes, scratch: Path, args: argparse.Namespace) -> None:
    """The serving floor: the same bytes from a bare handler over the same TLS."""
    scratch.mkdir()
    body_file = scratch / "body.json"
    body_file.write_bytes(body)
    port = free_port()
    base = f"https://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "bench.adapter_load",
        "--serve-static",
        str(body_file),
        str(port),
        str(scratch),
    ]
    with process(command):
        wait_for(lambda: len(fetch(Request(base + "/"))) == len(body), timeout=30, what="bare handler")
        (row["bare"],) = run_pair([Request(base + STAR_PATH)], [], args)


def measure_prometheus(row: dict[str, Any], fleet_port: int, scratch: Path, args: argparse.Namespace) -> None:
    """The raw query (the floor), then the adapter's Prometheus backend, over a real Prometheus."""
    pods: int = row["pods"]
    scratch.mkdir()
    (scratch / "prometheus.yml").write_text(prometheus_config(fleet_port, row["nodes"]))
    prometheus_port = free_port()
    command = [
        PROMETHEUS,
        f"--config.file={scratch / 'prometheus.yml'}",
        f"--storage.tsdb.path={scratch / 'data'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}",
        "--log.level=warn",
    ]
    star_query, one_query = pods_promql(pods)
    query_url = f"http://127.0.0.1:{prometheus_port}/api/v1/query"
    with process(command):

        def has_all() -> bool:
            result: list[Any] = json.loads(fetch(Request(query_url, {"query": star_query})))["data"]["result"]
            return len(result) == pods

        wait_for(has_all, timeout=90, what="prometheus series")
        port = free_port()
        base = f"https://127.0.0.1:{port}"
        backend = ["--backend", "prometheus", "--prometheus-url", f"http://127.0.0.1:{prometheus_port}"]
        with process(adapter_command(port, backend), cwd=args.adapter_tree) as adapter:
            wait_for(
                lambda: items(fetch(Request(base + STAR_PATH))) == pods, timeout=60, what="prometheus adapter"
            )
            row["raw_prometheus"], row["prometheus"] = run_pair(
                [Request(query_url, {"query": star_query}), Request(base + STAR_PATH)],
                [Request(query_url, {"query": one_query}), Request(base + ONE_PATH)],
                args,
            )
            row["prometheus_rss_mib"] = rss_mib(adapter)


def run_pair(
    stars: Sequence[Request], ones: Sequence[Request], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """``pods/*`` under the closed loop, once at concurrency 1 and once at ``--concurrency``; one pod at 1.

    Latencies (one client) are measured with the targets in turn (``closed_loop``); throughput with
    each target alone, as requests a second of targets taking turns would be one figure for all.
    The answer has one dict per target.
    """
    result: list[dict[str, Any]] = [{} for _ in stars]
    runs: list[tuple[str, Sequence[Request], Sequence[dict[str, Any]], int]] = [
        ("star", stars, result, 1),
        *(
            ("star_loaded", [star], [figures], args.concurrency)
            for star, figures in zip(stars, result, strict=True)
        ),
    ]
    if ones:
        runs.append(("one", ones, result, 1))
    for key, requests, figures_of, concurrency in runs:
        for figures, outcome in zip(figures_of, load(requests, args, concurrency), strict=True):
            figures[key] = {
                **outcome.latency.__dict__,
                "per_second": outcome.per_second,
                "requests": outcome.requests,
                "errors": outcome.errors,
                "concurrency": concurrency,
            }
    return result


def flat(row: dict[str, Any]) -> dict[str, Any]:
    out = {"pods": row["pods"], "nodes": row["nodes"], "bytes": row["response_bytes"]}
    for target in ("direct", "prometheus", "raw_prometheus", "bare"):
        for key in ("star", "star_loaded", "one"):
            figures = row[target].get(key)
            if figures:
                out[f"{target}_{key}_p50"] = figures["p50_ms"]
                out[f"{target}_{key}_p99"] = figures["p99_ms"]
                out[f"{target}_{key}_rps"] = figures["per_second"]
    out["prom_x_raw_p99"] = ratio(out["prometheus_star_p99"], out["raw_prometheus_star_p99"])
    out["direct_x_bare_p99"] = ratio(out["direct_star_p99"], out["bare_star_p99"])
    out["direct_rss_mib"] = row["direct_rss_mib"]
    out["prometheus_rss_mib"] = row["prometheus_rss_mib"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pods", default="10,100,1000,5000")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load per target")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--max-requests", type=int, default=20_000)
    parser.add_argument(
        "--direct-fill", type=float, default=60.0, help="seconds the direct backend scrapes before load"
    )
    parser.add_argument(
        "--adapter-tree",
        type=Path,
        default=REPO,
        help="run the adapter from another tree (before/after: git archive <commit> adapter kgm_common)",
    )
    parser.add_argument("--results", default="adapter_load", help="name of the results file")
    parser.add_argument("--serve-fleet", nargs=2, metavar=("DIR", "PORT"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--serve-static", nargs=3, metavar=("BODY", "PORT", "SCRATCH"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.serve_fleet:
        serve_fleet(Path(args.serve_fleet[0]), int(args.serve_fleet[1]))
        return
    if args.serve_static:
        serve_static(Path(args.serve_static[0]), int(args.serve_static[1]), Path(args.serve_static[2]))
        return
    if shutil.which(PROMETHEUS) is None:
        sys.exit(f"{PROMETHEUS} is needed (apt-get install prometheus)")
    rows = []
    with tempfile.TemporaryDirectory(prefix="kgm-bench-adapter-") as scratch:
        for pods in (int(p) for p in args.pods.split(",")):
            rows.append(flat(measure_size(pods, args, Path(scratch))))
            print(json.dumps(rows[-1]), flush=True)
    columns = [("pods", "pods", ">")]
    for target, heading in (
        ("direct", "direct"),
        ("prometheus", "prom"),
        ("raw_prometheus", "raw prom"),
        ("bare", "bare"),
    ):
        columns += [
            (f"{target}_star_p50", f"{heading} p50", ".2f"),
            (f"{target}_star_p99", f"{heading} p99", ".2f"),
        ]
    columns += [
        ("prom_x_raw_p99", "prom/raw p99", ".2f"),
        ("direct_x_bare_p99", "direct/bare p99", ".1f"),
        ("direct_star_loaded_rps", "direct rps", ".0f"),
        ("prometheus_star_loaded_rps", "prom rps", ".0f"),
        ("direct_one_p99", "direct 1-pod p99", ".2f"),
        ("prometheus_one_p99", "prom 1-pod p99", ".2f"),
        ("direct_rss_mib", "direct MiB", ".0f"),
        ("prometheus_rss_mib", "prom MiB", ".0f"),
    ]
    print(table(rows, columns))
    out = write_results(
        args.results,
        {
            "duration_s": args.duration,
            "concurrency": args.concurrency,
            "adapter_tree": str(args.adapter_tree),
            "results": rows,
        },
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

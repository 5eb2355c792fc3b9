"""Markdown tables for docs/benchmarks.md from the JSON results in bench/results/.

    .venv/bin/python -m bench.report

Prints a section for each results file present; figures are copied as measured, ratios included.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from bench.common import RESULTS

Column = tuple[str, Callable[[dict[str, Any]], object]]


def markdown(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    lines = ["| " + " | ".join(heading for heading, _ in columns) + " |"]
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    lines += ["| " + " | ".join(str(cell(row)) for _, cell in columns) + " |" for row in rows]
    return "\n".join(lines)


def ms(value: float) -> str:
    return f"{value:.2f}"


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def machine_line(result: dict[str, Any]) -> str:
    m = result["machine"]
    return (
        f"_{m['date']}; {m['cpu']}, {m['cpus']} CPUs, {m['memory_gib']} GiB; Python {m['python']}; "
        f"load average at the end {m['load_average']}._"
    )


def exporter(result: dict[str, Any]) -> str:
    columns: list[Column] = [
        ("tree", lambda r: r.get("tree", "ours")),
        ("GPUs", lambda r: r["gpus"]),
        ("pods", lambda r: r["pods"]),
        ("host", lambda r: "on" if r["host"] else "off"),
        ("p50 ms", lambda r: ms(r["p50"])),
        ("p99 ms", lambda r: ms(r["p99"])),
        ("/healthz p50 ms", lambda r: ms(r["floor_p50"])),
        ("p50 / floor", lambda r: f"{r['x_floor']:.1f}x"),
        ("CPU ms / scrape", lambda r: ms(r["cpu_ms"])),
        ("RSS MiB", lambda r: f"{r['rss_mib']:.1f}"),
        (
            "RSS after N scrapes",
            lambda r: f"{r['rss_after_mib']:.1f} ({r['rss_after_scrapes']})" if "rss_after_mib" in r else "",
        ),
        ("body bytes", lambda r: r["body_bytes"]),
    ]
    return markdown(result["results"], columns)


def host(result: dict[str, Any]) -> str:
    columns: list[Column] = [
        ("request", lambda r: r["request"]),
        ("exporter", lambda r: r["exporter"]),
        ("p50 ms", lambda r: ms(r["p50_ms"])),
        ("p99 ms", lambda r: ms(r["p99_ms"])),
        ("p50 vs node_exporter, median (min-max)", lambda r: r["x_p50_spread"]),
        ("p99 vs node_exporter", lambda r: r["x_p99_spread"]),
        ("CPU ms / scrape", lambda r: ms(r["cpu_ms"])),
        ("body bytes", lambda r: r["body_bytes"]),
    ]
    return markdown(result["summary"], columns)


def adapter(result: dict[str, Any]) -> str:
    latency: list[Column] = [
        ("pods", lambda r: r["pods"]),
        ("direct p50 / p99", lambda r: f"{ms(r['direct_star_p50'])} / {ms(r['direct_star_p99'])}"),
        (
            "Prometheus backend p50 / p99",
            lambda r: f"{ms(r['prometheus_star_p50'])} / {ms(r['prometheus_star_p99'])}",
        ),
        (
            "raw Prometheus p50 / p99",
            lambda r: f"{ms(r['raw_prometheus_star_p50'])} / {ms(r['raw_prometheus_star_p99'])}",
        ),
        ("bare aiohttp p50 / p99", lambda r: f"{ms(r['bare_star_p50'])} / {ms(r['bare_star_p99'])}"),
        ("Prometheus backend / raw, p99", lambda r: f"{r['prom_x_raw_p99']:.2f}x"),
        ("direct / bare, p99", lambda r: f"{r['direct_x_bare_p99']:.1f}x"),
        ("answer bytes", lambda r: r["bytes"]),
    ]
    throughput: list[Column] = [
        ("pods", lambda r: r["pods"]),
        ("direct req/s", lambda r: f"{r['direct_star_loaded_rps']:.0f}"),
        ("Prometheus backend req/s", lambda r: f"{r['prometheus_star_loaded_rps']:.0f}"),
        ("raw Prometheus req/s", lambda r: f"{r['raw_prometheus_star_loaded_rps']:.0f}"),
        ("bare req/s", lambda r: f"{r['bare_star_loaded_rps']:.0f}"),
        ("one pod, direct p50 / p99", lambda r: f"{ms(r['direct_one_p50'])} / {ms(r['direct_one_p99'])}"),
        (
            "one pod, Prometheus backend / raw p99",
            lambda r: f"{ms(r['prometheus_one_p99'])} / {ms(r['raw_prometheus_one_p99'])}",
        ),
        (
            "adapter RSS MiB, direct / Prometheus",
            lambda r: f"{r['direct_rss_mib']:.0f} / {r['prometheus_rss_mib']:.0f}",
        ),
    ]
    rows = result["results"]
    concurrency = result["concurrency"]
    return (
        f"`pods/*/gpu_utilization`, one client (ms):\n\n{markdown(rows, latency)}\n\n"
        f"{concurrency} clients (requests a second), one pod, memory:\n\n{markdown(rows, throughput)}"
    )


def gpu(result: dict[str, Any]) -> str:
    local, http, smi, summary = result["in_process"], result["http"], result["nvidia_smi"], result["summary"]

    def ms(value: float) -> str:
        return f"{value:.3f}"

    rows = [
        {"what": "raw NVML calls of one read, all GPUs (floor)", "p50": ms(local["raw_all_devices_ms"])},
        {"what": "`NvmlGpuSource.read`, all GPUs", "p50": ms(local["source_read_all_devices_ms"])},
        {"what": "collect the registry", "p50": ms(local["collect_ms"])},
        {"what": "render the exposition", "p50": ms(local["render_ms"])},
        {
            "what": "HTTP round trip (`/healthz`)",
            "p50": ms(http["http_floor"]["p50_ms"]),
            "p99": ms(http["http_floor"]["p99_ms"]),
        },
        {"what": "**floor: NVML + render + HTTP**", "p50": ms(summary["floor_ms"])},
        {
            "what": "**exporter `/metrics` scrape**",
            "p50": ms(http["scrape"]["p50_ms"]),
            "p99": ms(http["scrape"]["p99_ms"]),
        },
        {
            "what": "`nvidia-smi --query-gpu=... --format=csv`",
            "p50": ms(smi["p50_ms"]),
            "p99": ms(smi["p99_ms"]),
        },
    ]
    columns: list[Column] = [
        ("", lambda r: r["what"]),
        ("p50 ms", lambda r: r["p50"]),
        ("p99 ms", lambda r: r.get("p99", "")),
    ]
    return (
        f"{local['gpus']} x {local['model']}, driver {local['driver']} (served by {http['served_by']})\n\n"
        f"{markdown(rows, columns)}\n\n"
        f"scrape / floor = {summary['scrape_x_floor']:.2f}x (target <= 2x); "
        f"nvidia-smi / scrape = {summary['nvidia_smi_x_scrape']:.0f}x (target >= 10x)"
    )


SECTIONS: dict[str, Callable[[dict[str, Any]], str]] = {
    "exporter_scrape": exporter,
    "host_vs_node_exporter": host,
    "adapter_load": adapter,
    "adapter_load_baseline": adapter,
    "gpu_nvml": gpu,
}


def main() -> None:
    for name, render in SECTIONS.items():
        result = load(name)
        if result is None:
            continue
        print(f"### {name} (bench/results/{name}.json)\n")
        print(machine_line(result) + "\n")
        print(render(result) + "\n")


if __name__ == "__main__":
    main()

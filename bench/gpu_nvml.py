"""Scrape cost on a real NVIDIA GPU: the exporter against raw NVML (its floor) and nvidia-smi (a peer).

    PYTHONPATH=. python3 -m bench.gpu_nvml [--scrapes 500] [--out DIR]

Measured in one run, on the same GPUs:

- the floor: the raw NVML calls ``NvmlGpuSource.read`` makes for a device (memory v2, utilisation,
  temperature, power, power limit, SM and memory clocks, clock event reasons, two ECC counters),
  back to back through pynvml, summed over the devices. Total energy is left out of the floor and
  out of the scrapes alike: it costs ~3 ms a call and the exporter reads it once per
  ``--nvml-energy-ttl`` (10 s), so at most one scrape in a run of this length pays it (the p99);
- ``NvmlGpuSource.read`` itself, and the exposition: collecting the registry and rendering it;
- the exporter over HTTP (``--gpu-source nvml --host-metrics false``, no kubelet), each ``/metrics``
  paired with a ``/healthz`` of the same process (the HTTP round trip with no collection);
- ``nvidia-smi --query-gpu=... --format=csv`` asking for the same fields, a process per call, which
  is what an exporter built on nvidia-smi pays per scrape.

Targets: scrape p50 <= 2x (NVML floor + render + HTTP round trip); nvidia-smi >= 10x the scrape.
Writes bench/results/gpu_nvml.json (and a copy into ``--out``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import (
    ExitedEarly,
    Latency,
    exporter_command,
    free_port,
    http_get,
    ratio,
    server_process,
    table,
    timed_get,
    write_results,
)

SMI_FIELDS = (
    "utilization.gpu,utilization.memory,memory.used,memory.free,memory.total,temperature.gpu,"
    "power.draw,power.limit,clocks.sm,clocks.mem,clocks_event_reasons.active,"
    "ecc.errors.corrected.volatile.total,ecc.errors.uncorrected.volatile.total"
)
# Fields every driver knows, if the full list is refused.
SMI_CORE_FIELDS = "utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw"


def raw_calls(nvml: Any, handle: Any) -> dict[str, Callable[[], object]]:
    """The NVML calls ``NvmlGpuSource.read`` makes for one whole GPU, energy aside."""
    reasons = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or (
        nvml.nvmlDeviceGetCurrentClocksThrottleReasons
    )
    return {
        "memory_info_v2": lambda: nvml.nvmlDeviceGetMemoryInfo(handle, version=nvml.nvmlMemory_v2),
        "utilization_rates": lambda: nvml.nvmlDeviceGetUtilizationRates(handle),
        "temperature": lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU),
        "power_usage": lambda: nvml.nvmlDeviceGetPowerUsage(handle),
        "enforced_power_limit": lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle),
        "clock_sm": lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM),
        "clock_mem": lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM),
        "clock_event_reasons": lambda: reasons(handle),
        "ecc_corrected": lambda: nvml.nvmlDeviceGetTotalEccErrors(
            handle, nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, nvml.NVML_VOLATILE_ECC
        ),
        "ecc_uncorrected": lambda: nvml.nvmlDeviceGetTotalEccErrors(
            handle, nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nvml.NVML_VOLATILE_ECC
        ),
    }


def time_call(call: Callable[[], object], repeats: int, nvml_error: type[Exception]) -> list[float]:
    """Seconds per call; a refused call (ECC off, say) is timed all the same, as the source pays it."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        try:  # noqa: SIM105 - contextlib.suppress would add its own cost to a timing of microseconds
            call()
        except nvml_error:
            pass
        seconds.append(time.perf_counter() - started)
    return seconds


def measure_in_process(repeats: int) -> dict[str, Any]:
    """Raw NVML per call and per device, ``NvmlGpuSource.read``, and collect + render of the registry."""
    nvml = importlib.import_module("pynvml")
    from exporter.gpu.nvml import NvmlGpuSource  # noqa: PLC0415 - needs pynvml, present on GPU machines
    from exporter.pods.model import NoHolders  # noqa: PLC0415
    from exporter.registry import build_registry  # noqa: PLC0415
    from exporter.server import render_families  # noqa: PLC0415

    nvml.nvmlInit()
    try:
        count = nvml.nvmlDeviceGetCount()
        handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        facts = {
            "gpus": count,
            "model": str(nvml.nvmlDeviceGetName(handles[0])) if handles else "",
            "driver": str(nvml.nvmlSystemGetDriverVersion()),
        }
        per_call: dict[str, float] = {}
        per_device: list[float] = []
        for handle in handles:
            calls = raw_calls(nvml, handle)
            for name, call in calls.items():
                per_call.setdefault(name, statistics.median(time_call(call, repeats, nvml.NVMLError)))

            def all_calls(calls: dict[str, Callable[[], object]] = calls) -> None:
                for call in calls.values():
                    try:  # noqa: SIM105 - as in time_call
                        call()
                    except nvml.NVMLError:
                        pass

            per_device.append(statistics.median(time_call(all_calls, repeats, nvml.NVMLError)))
    finally:
        nvml.nvmlShutdown()

    source = NvmlGpuSource.open(energy_ttl_seconds=3600.0)
    try:
        devices = source.devices()
        for device in devices:
            source.read(device)
        reads = time_call(lambda: [source.read(d) for d in devices], repeats, Exception)
        registry = build_registry(source=source, holders=NoHolders(), extra=[])
        collect = time_call(lambda: list(registry.collect()), repeats, Exception)
        families = list(registry.collect())
        render = time_call(lambda: render_families(families, openmetrics_format=False), repeats, Exception)
    finally:
        source.close()
    return {
        **facts,
        "raw_call_us": {name: 1e6 * seconds for name, seconds in per_call.items()},
        "raw_per_device_us": [1e6 * seconds for seconds in per_device],
        "raw_all_devices_ms": 1000 * sum(per_device),
        "source_read_all_devices_ms": 1000 * statistics.median(reads),
        "collect_ms": 1000 * statistics.median(collect),
        "render_ms": 1000 * statistics.median(render),
    }


def serve(port: int) -> None:
    """The exporter's registry and HTTP app as ``python -m exporter`` builds them with attribution off.

    For GPU machines whose Python lacks the ``kubernetes`` package the CLI imports; the source,
    collectors, registry and server are the product's own.
    """
    from exporter.config import ExporterConfig  # noqa: PLC0415
    from exporter.gpu.factory import open_gpu_source  # noqa: PLC0415
    from exporter.pods.model import NoHolders  # noqa: PLC0415
    from exporter.registry import build_registry  # noqa: PLC0415
    from exporter.server import Readiness, build_app  # noqa: PLC0415
    from exporter.server import serve as serve_http  # noqa: PLC0415
    from kgm_common.addresses import ListenAddress  # noqa: PLC0415

    source = open_gpu_source(ExporterConfig(gpu_source="nvml"))
    registry = build_registry(source=source, holders=NoHolders(), extra=[])
    readiness = Readiness()
    server = serve_http(ListenAddress("127.0.0.1", port), build_app(registry, readiness))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    list(registry.collect())
    readiness.mark_ready()
    threading.Event().wait()


def exporter_commands(port: int) -> list[tuple[str, list[str]]]:
    """The CLI first; the same registry and server without the CLI where it cannot start."""
    cli = exporter_command(port, "nvml", "--host-metrics", "false")
    return [
        ("cli", cli),
        ("bench.gpu_nvml --serve", [sys.executable, "-m", "bench.gpu_nvml", "--serve", str(port)]),
    ]


def measure_http(scrapes: int) -> dict[str, Any]:
    """Interleaved /healthz and /metrics on the exporter serving the real GPUs."""
    port = free_port()
    errors: list[str] = []
    for served_by, command in exporter_commands(port):
        try:
            with server_process(command, port=port, ready_path="/readyz", timeout=30):
                for _ in range(20):
                    http_get(port, "/metrics")
                scrape: list[float] = []
                floor: list[float] = []
                size = 0
                for _ in range(scrapes):
                    floor.append(timed_get(port, "/healthz")[0])
                    seconds, size = timed_get(port, "/metrics")
                    scrape.append(seconds)
                return {
                    "served_by": served_by,
                    "not_served_by": errors,
                    "scrape": Latency.of(scrape).__dict__,
                    "http_floor": Latency.of(floor).__dict__,
                    "body_bytes": size,
                }
        except (ExitedEarly, RuntimeError, TimeoutError) as exc:
            errors.append(f"{served_by}: {exc}")
    return {"error": f"no exporter served the GPUs: {errors}"}


def measure_nvidia_smi(calls: int) -> dict[str, Any]:
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return {"error": "nvidia-smi not found"}
    for fields in (SMI_FIELDS, SMI_CORE_FIELDS):
        command = [binary, f"--query-gpu={fields}", "--format=csv,noheader,nounits"]
        if subprocess.run(command, capture_output=True, check=False, timeout=30).returncode != 0:
            continue
        seconds = []
        for _ in range(calls):
            started = time.perf_counter()
            subprocess.run(command, capture_output=True, check=True, timeout=30)
            seconds.append(time.perf_counter() - started)
        return {"fields": fields, **Latency.of(seconds).__dict__}
    return {"error": "nvidia-smi refused both field lists"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scrapes", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=500, help="timed calls per in-process figure")
    parser.add_argument("--smi-calls", type=int, default=30)
    parser.add_argument("--out", type=Path, help="also copy the JSON here")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    local = measure_in_process(args.repeats)
    http = measure_http(args.scrapes)
    smi = measure_nvidia_smi(args.smi_calls)
    if "error" in http:
        save({"in_process": local, "http": http, "nvidia_smi": smi}, args.out)
        sys.exit(http["error"])
    floor_ms = local["raw_all_devices_ms"] + local["render_ms"] + http["http_floor"]["p50_ms"]
    scrape_ms = http["scrape"]["p50_ms"]
    summary = {
        "floor_ms": floor_ms,
        "scrape_x_floor": ratio(scrape_ms, floor_ms),
        "nvidia_smi_x_scrape": ratio(smi.get("p50_ms", 0.0), scrape_ms),
        "target_scrape_x_floor": 2.0,
        "target_nvidia_smi_x_scrape": 10.0,
    }
    rows = [
        {"what": "raw NVML calls, all GPUs (floor)", "p50": local["raw_all_devices_ms"]},
        {"what": "NvmlGpuSource.read, all GPUs", "p50": local["source_read_all_devices_ms"]},
        {"what": "collect registry (in process)", "p50": local["collect_ms"]},
        {"what": "render exposition (in process)", "p50": local["render_ms"]},
        {
            "what": "HTTP /healthz round trip",
            "p50": http["http_floor"]["p50_ms"],
            "p99": http["http_floor"]["p99_ms"],
        },
        {"what": "floor: NVML + render + HTTP", "p50": floor_ms},
        {"what": "exporter /metrics scrape", "p50": scrape_ms, "p99": http["scrape"]["p99_ms"]},
        {
            "what": "nvidia-smi --query-gpu",
            "p50": smi.get("p50_ms", float("nan")),
            "p99": smi.get("p99_ms", float("nan")),
        },
    ]
    print(f"{local['gpus']} x {local['model']}, driver {local['driver']}, served by {http['served_by']}")
    print(table(rows, (("what", "what", "<"), ("p50", "p50 ms", ".3f"), ("p99", "p99 ms", ".3f"))))
    print(
        f"scrape / floor = {summary['scrape_x_floor']:.2f}x (target <= 2); "
        f"nvidia-smi / scrape = {summary['nvidia_smi_x_scrape']:.1f}x (target >= 10)"
    )
    save({"in_process": local, "http": http, "nvidia_smi": smi, "summary": summary}, args.out)
    print(json.dumps(summary))


def save(payload: dict[str, Any], copy_to: Path | None) -> None:
    """bench/results/gpu_nvml.json, and a copy in ``copy_to`` (the device machine's $OUT)."""
    out = write_results("gpu_nvml", payload)
    print(f"wrote {out}")
    if copy_to is not None:
        copy_to.mkdir(parents=True, exist_ok=True)
        (copy_to / out.name).write_text(out.read_text())


if __name__ == "__main__":
    main()

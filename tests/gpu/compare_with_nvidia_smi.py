"""Compare NvmlGpuSource with nvidia-smi on a real GPU under load, and time our reads against raw NVML.

Run from the repository root on a machine with an NVIDIA GPU and PyTorch::

    PYTHONPATH=. python3 tests/gpu/compare_with_nvidia_smi.py --out DIR [--exporter]

Starts a bf16 matmul loop and two processes that only hold memory, then reads our source and
``nvidia-smi`` at the same moments; prints the tables and writes ``DIR/compare.json``. With
``--exporter`` it also runs the whole exporter against NVML and saves one scrape of ``/metrics``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from exporter.gpu.model import Field, GpuDevice, GpuReading
from exporter.gpu.nvml import NvmlGpuSource
from tests.gpu.harness import smi, smi_apps, start_load, stop_load
from tests.support import stop_process

MIB = 1024**2
GPU_QUERY = "utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw"
WORKER_SECONDS = 75.0
HOLDERS_GIB = (2, 5)


# -- nvidia-smi ----------------------------------------------------------------------------------


def smi_gpu(index: str) -> dict[str, float]:
    row = smi(f"--query-gpu={GPU_QUERY}", "--format=csv,noheader,nounits", "-i", index)[0]
    return dict(
        zip(("util_pct", "mem_used_mib", "mem_total_mib", "temp_c", "power_w"), map(float, row), strict=True)
    )


def ours_row(reading: GpuReading) -> dict[str, float]:
    v = reading.values
    return {
        "util_pct": v[Field.UTILIZATION] * 100,
        "mem_used_mib": v[Field.MEMORY_USED] / MIB,
        "mem_reserved_mib": v.get(Field.MEMORY_RESERVED, 0.0) / MIB,
        "mem_total_mib": v[Field.MEMORY_TOTAL] / MIB,
        "temp_c": v[Field.TEMPERATURE],
        "power_w": v[Field.POWER],
    }


# -- timing --------------------------------------------------------------------------------------


def timed(call: Callable[[], object], repeat: int) -> dict[str, float]:
    """Median and p95 of ``repeat`` calls, in microseconds."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    return {"median_us": statistics.median(samples), "p95_us": samples[int(len(samples) * 0.95) - 1]}


def raw_nvml_calls(handle: Any) -> dict[str, Callable[[], object]]:
    import pynvml as nvml  # noqa: PLC0415 - the raw baseline, same library the source uses

    return {
        "utilization": lambda: nvml.nvmlDeviceGetUtilizationRates(handle),
        "memory_v2": lambda: nvml.nvmlDeviceGetMemoryInfo(handle, version=nvml.nvmlMemory_v2),
        "temperature": lambda: nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU),
        "power": lambda: nvml.nvmlDeviceGetPowerUsage(handle),
        "power_limit": lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle),
        "sm_clock": lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM),
        "memory_clock": lambda: nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM),
        "clock_event_reasons": lambda: nvml.nvmlDeviceGetCurrentClocksEventReasons(handle),
        "ecc_corrected": lambda: nvml.nvmlDeviceGetTotalEccErrors(
            handle, nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED, nvml.NVML_VOLATILE_ECC
        ),
        "ecc_uncorrected": lambda: nvml.nvmlDeviceGetTotalEccErrors(
            handle, nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nvml.NVML_VOLATILE_ECC
        ),
        "total_energy": lambda: nvml.nvmlDeviceGetTotalEnergyConsumption(handle),
        "compute_processes": lambda: nvml.nvmlDeviceGetComputeRunningProcesses(handle),
        "graphics_processes": lambda: nvml.nvmlDeviceGetGraphicsRunningProcesses(handle),
        "process_utilization_since_0": lambda: process_samples(nvml, handle, 0),
        "process_utilization_last_1s": lambda: process_samples(nvml, handle, int((time.time() - 1) * 1e6)),
    }


def process_samples(nvml: Any, handle: Any, since: int) -> object:
    try:
        return nvml.nvmlDeviceGetProcessUtilization(handle, since)
    except nvml.NVMLError_NotFound:
        return []


def timings(device: GpuDevice, repeat: int) -> dict[str, Any]:
    import pynvml as nvml  # noqa: PLC0415

    handle = nvml.nvmlDeviceGetHandleByUUID(device.uuid)
    raw: dict[str, dict[str, Any]] = {}
    for name, call in raw_nvml_calls(handle).items():
        try:
            raw[name] = timed(call, repeat)
        except nvml.NVMLError as exc:
            raw[name] = {"error": str(exc)}
    per_scrape = ("total_energy", "compute_processes", "graphics_processes", "process_utilization")
    raw_fields_us = sum(r.get("median_us", 0.0) for n, r in raw.items() if not n.startswith(per_scrape))
    cached = NvmlGpuSource.open(watch_xid=False)
    uncached = NvmlGpuSource.open(energy_ttl_seconds=0.0, watch_xid=False)
    try:
        ours_cached = timed(lambda: cached.read(device), repeat)
        ours_uncached = timed(lambda: uncached.read(device), max(20, repeat // 10))
        ours_processes = timed(lambda: cached.processes(device), max(20, repeat // 10))
    finally:
        cached.close()
        uncached.close()
    smi_call = timed(lambda: smi_gpu(device.index), 5)
    return {
        "raw_nvml": raw,
        "raw_all_fields_but_energy_median_us": raw_fields_us,
        "ours_read_energy_cached": ours_cached,
        "ours_read_energy_every_time": ours_uncached,
        "ours_processes": ours_processes,
        "nvidia_smi_query_gpu": smi_call,
    }


# -- exporter ------------------------------------------------------------------------------------


def scrape_exporter(out: Path, index: str) -> dict[str, Any]:
    """Run the exporter on NVML, scrape /metrics once it is ready, save the text and its log."""
    log = (out / "exporter.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter",
            "--gpu-source",
            "nvml",
            "--listen",
            "127.0.0.1:9402",
            "--host-metrics",
            "false",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "KGM_NODE_NAME": "gpu-validation"},
    )
    try:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen("http://127.0.0.1:9402/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        else:
            return {"error": "exporter did not become ready in 40 s"}
        urllib.request.urlopen("http://127.0.0.1:9402/metrics", timeout=10).read()
        start = time.perf_counter()
        with ThreadPoolExecutor(1) as pool:
            theirs = pool.submit(smi_gpu, index)
            body = urllib.request.urlopen("http://127.0.0.1:9402/metrics", timeout=10).read().decode()
            smi_now = theirs.result()
        scrape_ms = (time.perf_counter() - start) * 1000
        (out / "metrics.txt").write_text(body)
        util = [line for line in body.splitlines() if line.startswith("gpu_utilization_ratio{")]
        used = [line for line in body.splitlines() if line.startswith("gpu_memory_used_bytes{")]
        return {
            "scrape_with_smi_ms": scrape_ms,
            "lines": len(body.splitlines()),
            "gpu_utilization_ratio": util,
            "gpu_memory_used_bytes": used,
            "nvidia_smi_same_moment": smi_now,
        }
    finally:
        stop_process(proc)
        log.close()


# -- main ----------------------------------------------------------------------------------------


def fmt(row: dict[str, float], key: str) -> str:
    return f"{row[key]:.1f}" if key in row else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path())
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--interval", type=float, default=1.5)
    parser.add_argument("--repeat", type=int, default=500)
    parser.add_argument("--exporter", action="store_true")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    source = NvmlGpuSource.open()
    device = next(d for d in source.devices() if not d.is_mig_instance)
    result: dict[str, Any] = {"device": device.__dict__, "idle": {}}
    result["idle"] = {"ours": ours_row(source.read(device)), "smi": smi_gpu(device.index)}
    load = start_load([("matmul", 0), *(("hold", gib) for gib in HOLDERS_GIB)], WORKER_SECONDS)
    try:
        time.sleep(3.0)  # let utilisation's sample window fill with the matmul loop
        rows = []
        with ThreadPoolExecutor(1) as pool:
            for _ in range(args.samples):
                theirs = pool.submit(smi_gpu, device.index)
                ours = ours_row(source.read(device))
                rows.append({"ours": ours, "smi": theirs.result()})
                time.sleep(args.interval)
        result["under_load"] = rows
        procs = {p.pid: p for p in source.processes(device)}
        apps = smi_apps(device.index)
        result["processes"] = {
            "load_pids": [p.pid for p in load],
            "ours": {
                pid: {"used_mib": (p.used_memory_bytes or 0) / MIB, "sm": p.sm_utilization_ratio}
                for pid, p in procs.items()
            },
            "smi": apps,
        }
        result["timings"] = timings(device, args.repeat)
        if args.exporter:
            result["exporter"] = scrape_exporter(args.out, device.index)
    finally:
        stop_load(load)
        source.close()

    (args.out / "compare.json").write_text(json.dumps(result, indent=2, default=str))
    print(f"# {device.model} {device.uuid} driver {device.driver_version}")
    columns = [
        ("util % ours", "ours", "util_pct"),
        ("util % smi", "smi", "util_pct"),
        ("used MiB ours", "ours", "mem_used_mib"),
        ("reserved MiB ours", "ours", "mem_reserved_mib"),
        ("used MiB smi", "smi", "mem_used_mib"),
        ("temp C ours", "ours", "temp_c"),
        ("temp C smi", "smi", "temp_c"),
        ("power W ours", "ours", "power_w"),
        ("power W smi", "smi", "power_w"),
    ]
    print("| sample | " + " | ".join(title for title, _, _ in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for i, row in enumerate([result["idle"], *result["under_load"]]):
        cells = [fmt(row[side], key) for _, side, key in columns]
        print(f"| {'idle' if i == 0 else i} | " + " | ".join(cells) + " |")
    print("\n| pid | used MiB ours | used MiB smi | SM share ours |")
    print("|---|---|---|---|")
    ours_procs = result["processes"]["ours"]
    for pid in sorted(set(ours_procs) | set(apps)):
        o = ours_procs.get(pid, {})
        sm = o.get("sm")
        print(
            f"| {pid} | {o.get('used_mib', '-')} | {apps.get(pid, '-')} |"
            f" {'-' if sm is None else f'{sm:.2f}'} |"
        )
    print(f"\nload pids (our namespace): {result['processes']['load_pids']}")
    print("\n" + json.dumps(result["timings"], indent=2))
    if "exporter" in result:
        print("\nexporter: " + json.dumps(result["exporter"], indent=2))


if __name__ == "__main__":
    main()

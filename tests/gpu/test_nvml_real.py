"""The NVML source on a real NVIDIA GPU: identities match nvidia-smi, values are sane, caches hold.

Skipped wherever NVML does not initialise (no driver, no GPU, no nvidia-ml-py).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from exporter.collectors.errors import ErrorCounts
from exporter.collectors.gpu import GpuCollector
from exporter.gpu.model import Field, FieldFailure, GpuDevice
from exporter.gpu.nvml import NvmlGpuSource
from exporter.gpu.throttle import THROTTLE_REASON_BITS
from tests.gpu.harness import nvml_works

pytestmark = pytest.mark.gpu

GIB = 1024**3


if not nvml_works():
    pytest.skip("NVML does not initialise here (no NVIDIA driver or GPU)", allow_module_level=True)


@pytest.fixture
def source() -> Iterator[NvmlGpuSource]:
    opened = NvmlGpuSource.open()
    yield opened
    opened.close()


def whole_gpus(source: NvmlGpuSource) -> list[GpuDevice]:
    return [d for d in source.devices() if not d.is_mig_instance]


def nvidia_smi(*query: str) -> list[list[str]]:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        pytest.skip("nvidia-smi is not installed")
    out = subprocess.run(
        [smi, f"--query-gpu={','.join(query)}", "--format=csv,noheader,nounits"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return [[cell.strip() for cell in line.split(",")] for line in out.strip().splitlines()]


def test_identities_match_nvidia_smi(source: NvmlGpuSource) -> None:
    ours = {d.uuid: d for d in whole_gpus(source)}
    theirs = nvidia_smi("uuid", "name", "driver_version", "pci.bus_id", "index")
    assert sorted(ours) == sorted(row[0] for row in theirs)
    for uuid, name, driver, bus_id, index in theirs:
        device = ours[uuid]
        assert device.model == name
        assert device.driver_version == driver
        assert device.pci_bus_id.lower() == bus_id.lower()
        assert device.index == index


def test_every_field_is_read_in_base_units(source: NvmlGpuSource) -> None:
    for device in whole_gpus(source):
        reading = source.read(device)
        failures = {e.field: e.failure for e in reading.errors}
        assert set(failures.values()) <= {FieldFailure.NOT_SUPPORTED}, reading.errors
        v = reading.values
        if device.mig_mode == "disabled":
            assert 0.0 <= v[Field.UTILIZATION] <= 1.0
            assert 0.0 <= v[Field.MEMORY_UTILIZATION] <= 1.0
        total = v[Field.MEMORY_TOTAL]
        assert total > 1 * GIB
        accounted = v[Field.MEMORY_USED] + v[Field.MEMORY_FREE] + v.get(Field.MEMORY_RESERVED, 0.0)
        assert accounted == pytest.approx(total, rel=0.01)
        assert 5.0 <= v[Field.TEMPERATURE] <= 110.0
        assert 1.0 <= v[Field.POWER] <= v[Field.POWER_LIMIT] * 1.5
        assert 50.0 <= v[Field.POWER_LIMIT] <= 2000.0
        assert v[Field.SM_CLOCK] >= 100e6
        assert v[Field.MEMORY_CLOCK] >= 100e6
        assert v[Field.ENERGY] > 0.0
        assert set(reading.labelled[Field.THROTTLE_REASONS]) == set(THROTTLE_REASON_BITS)
        if Field.ECC_ERRORS not in failures:
            assert set(reading.labelled[Field.ECC_ERRORS]) == {"corrected", "uncorrected"}


def test_energy_is_served_from_cache_within_the_ttl() -> None:
    source = NvmlGpuSource.open(energy_ttl_seconds=60.0, watch_xid=False)
    try:
        device = whole_gpus(source)[0]
        first = source.read(device).values[Field.ENERGY]
        time.sleep(0.5)
        assert source.read(device).values[Field.ENERGY] == first
    finally:
        source.close()
    source = NvmlGpuSource.open(energy_ttl_seconds=0.0, watch_xid=False)
    try:
        device = whole_gpus(source)[0]
        first = source.read(device).values[Field.ENERGY]
        time.sleep(0.5)
        assert source.read(device).values[Field.ENERGY] > first
    finally:
        source.close()


def test_a_process_holding_memory_is_listed(source: NvmlGpuSource) -> None:
    pytest.importorskip("torch")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, torch\n"
            "x = torch.ones(1 << 30, dtype=torch.uint8, device='cuda')\n"
            "torch.cuda.synchronize(); print('ready', flush=True); time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        device = next(d for d in whole_gpus(source) if d.index == "0")
        processes = {p.pid: p for p in source.processes(device)}
        # NVML reports host PIDs; inside a container with its own PID namespace they differ from ours.
        if holder.pid in processes:
            used = processes[holder.pid].used_memory_bytes
            assert used is not None
            assert used >= 1 * GIB
        else:
            assert any((p.used_memory_bytes or 0) >= 1 * GIB for p in processes.values()), processes
    finally:
        holder.kill()
        holder.wait()


def test_a_scrape_through_the_collector_has_every_family(source: NvmlGpuSource) -> None:
    collector_errors, field_errors = ErrorCounts(), ErrorCounts()
    collector = GpuCollector(source, collector_errors=collector_errors, field_errors=field_errors)

    families = {m.name: m for m in collector.collect()}

    for name in ("gpu_memory_used_bytes", "gpu_temperature_celsius", "gpu_power_watts", "gpu_energy_joules"):
        assert len(families[name].samples) >= len(whole_gpus(source)), name
    assert {s.labels["reason"] for s in families["gpu_throttle_reasons"].samples} == set(THROTTLE_REASON_BITS)
    assert all(failure == "not_supported" for _, failure in field_errors.snapshot())


def test_xid_thread_runs_and_stops_promptly() -> None:
    source = NvmlGpuSource.open(xid_wait_ms=200)
    assert any(t.name == "nvml-xid" for t in threading.enumerate())
    started = time.monotonic()
    source.close()
    assert time.monotonic() - started < 2.0
    assert not any(t.name == "nvml-xid" for t in threading.enumerate())


def test_mig_instances_when_mig_is_on(source: NvmlGpuSource) -> None:
    parents = [d for d in whole_gpus(source) if d.mig_mode == "enabled"]
    if not parents:
        pytest.skip("no GPU here has MIG enabled")
    instances = [d for d in source.devices() if d.is_mig_instance]
    for instance in instances:
        assert instance.parent_uuid in {p.uuid for p in parents}
        assert instance.mig_profile
        assert source.read(instance).values[Field.MEMORY_TOTAL] > 0

"""The NVML source against a scripted pynvml: fields and units, per-field failures, MIG, caches, XID."""

from __future__ import annotations

import inspect
import sys
import threading
from collections.abc import Iterator

import pynvml as real_pynvml
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.core import Metric

from exporter.collectors.errors import ErrorCounts
from exporter.collectors.gpu import GpuCollector
from exporter.gpu.mig import profile_from_attributes, profile_from_name
from exporter.gpu.model import Field, FieldFailure, GpuDevice
from exporter.gpu.nvml import LOST_RESCAN_SECONDS, NvmlGpuSource, NvmlUnavailable
from exporter.gpu.throttle import THROTTLE_REASON_BITS, throttle_reasons
from tests.fakes.fake_pynvml import FAKE_FUNCTIONS, GIB, MIB, FakeGpu, FakeMig, FakeNvml
from tests.support import wait_until

UUID_A = "GPU-aaaaaaaa-0000-0000-0000-000000000000"
UUID_B = "GPU-bbbbbbbb-0000-0000-0000-000000000000"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def open_source(
    fake: FakeNvml,
    clock: FakeClock | None = None,
    *,
    energy_ttl_seconds: float = 10.0,
    rescan_interval_seconds: float = 60.0,
) -> NvmlGpuSource:
    return NvmlGpuSource.open(
        nvml=fake.module(),
        clock=clock or FakeClock(),
        xid_wait_ms=20,
        energy_ttl_seconds=energy_ttl_seconds,
        rescan_interval_seconds=rescan_interval_seconds,
    )


@pytest.fixture
def source_of() -> Iterator[list[NvmlGpuSource]]:
    """Collects the sources a test opens and closes them, so no XID thread outlives its test."""
    opened: list[NvmlGpuSource] = []
    yield opened
    for source in opened:
        source.close()


def only(source: NvmlGpuSource, index: str) -> GpuDevice:
    return next(d for d in source.devices() if d.index == index)


# -- the fake itself ---------------------------------------------------------------------------


def test_fake_functions_have_the_real_names_and_parameters() -> None:
    for name in FAKE_FUNCTIONS:
        real = getattr(real_pynvml, name)
        fake = getattr(FakeNvml, name)
        real_params = list(inspect.signature(real).parameters)
        fake_params = list(inspect.signature(fake).parameters)[1:]
        assert fake_params == real_params, name


def test_fake_errors_are_the_real_error_classes() -> None:
    module = FakeNvml([]).module()
    assert module.NVMLError_NotSupported is real_pynvml.NVMLError_NotSupported
    assert isinstance(module.NVMLError(module.NVML_ERROR_GPU_IS_LOST), real_pynvml.NVMLError_GpuIsLost)


# -- opening -----------------------------------------------------------------------------------


def test_open_imports_pynvml_lazily_from_sys_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNvml([FakeGpu(UUID_A)])
    monkeypatch.setitem(sys.modules, "pynvml", fake.module())
    source = NvmlGpuSource.open(watch_xid=False)
    try:
        assert [d.uuid for d in source.devices()] == [UUID_A]
        assert source.up
    finally:
        source.close()
    assert fake.initialised == 0


def test_open_without_the_library_raises_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.raises(NvmlUnavailable, match="not installed"):
        NvmlGpuSource.open()


def test_open_when_init_fails_raises_with_nvmls_reason() -> None:
    fake = FakeNvml([], init_error=real_pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    with pytest.raises(NvmlUnavailable, match="Driver Not Loaded"):
        NvmlGpuSource.open(nvml=fake.module())


def test_open_shuts_nvml_down_when_devices_cannot_be_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNvml([FakeGpu(UUID_A)])
    module = fake.module()

    def failing_count() -> int:
        raise real_pynvml.NVMLError(real_pynvml.NVML_ERROR_UNKNOWN)

    monkeypatch.setattr(module, "nvmlDeviceGetCount", failing_count)
    with pytest.raises(NvmlUnavailable, match="could not be listed"):
        NvmlGpuSource.open(nvml=module, xid_wait_ms=20)
    assert fake.initialised == 0


# -- fields ------------------------------------------------------------------------------------


def test_reading_converts_to_base_units(source_of: list[NvmlGpuSource]) -> None:
    gpu = FakeGpu(UUID_A, clock_reasons=0x1 | 0x4, ecc=(3, 1))
    source = open_source(FakeNvml([gpu]))
    source_of.append(source)
    device = only(source, "0")
    assert device.model == "NVIDIA H100 80GB HBM3"
    assert device.pci_bus_id == "00000000:18:00.0"
    assert device.driver_version == "580.159.04"
    assert device.mig_mode == "disabled"

    reading = source.read(device)

    assert reading.errors == ()
    assert reading.values == {
        Field.UTILIZATION: 0.5,
        Field.MEMORY_UTILIZATION: 0.2,
        Field.MEMORY_USED: 10 * GIB,
        Field.MEMORY_FREE: 80 * GIB - 10 * GIB - 512 * MIB,
        Field.MEMORY_TOTAL: 80 * GIB,
        Field.MEMORY_RESERVED: 512 * MIB,
        Field.TEMPERATURE: 41.0,
        Field.POWER: 312.5,
        Field.POWER_LIMIT: 700.0,
        Field.ENERGY: 123_456.789,
        Field.SM_CLOCK: 1980e6,
        Field.MEMORY_CLOCK: 2619e6,
    }
    reasons = reading.labelled[Field.THROTTLE_REASONS]
    assert {r for r, on in reasons.items() if on} == {"gpu_idle", "sw_power_cap"}
    assert reading.labelled[Field.ECC_ERRORS] == {"corrected": 3.0, "uncorrected": 1.0}


def test_old_driver_without_memory_v2_reports_no_reserved_and_stops_asking(
    source_of: list[NvmlGpuSource],
) -> None:
    fake = FakeNvml([FakeGpu(UUID_A)], memory_v2=False)
    source = open_source(fake)
    source_of.append(source)
    device = only(source, "0")

    first = source.read(device)
    source.read(device)

    assert first.values[Field.MEMORY_USED] == 10 * GIB + 512 * MIB
    assert Field.MEMORY_RESERVED not in first.values
    assert [(e.field, e.failure) for e in first.errors] == [
        (Field.MEMORY_RESERVED, FieldFailure.NOT_SUPPORTED)
    ]
    assert fake.calls["nvmlDeviceGetMemoryInfo"] == 3  # v2 once, then v1 on each read


def test_old_pynvml_without_clock_event_reasons_uses_throttle_reasons(source_of: list[NvmlGpuSource]) -> None:
    fake = FakeNvml([FakeGpu(UUID_A, clock_reasons=0x40)], clock_event_reasons=False)
    source = open_source(fake)
    source_of.append(source)

    reading = source.read(only(source, "0"))

    assert reading.labelled[Field.THROTTLE_REASONS]["hw_thermal_slowdown"] == 1.0
    assert fake.calls["nvmlDeviceGetCurrentClocksThrottleReasons"] == 1


@pytest.mark.parametrize(
    ("code", "failure"),
    [
        (real_pynvml.NVML_ERROR_NOT_SUPPORTED, FieldFailure.NOT_SUPPORTED),
        (real_pynvml.NVML_ERROR_FUNCTION_NOT_FOUND, FieldFailure.NOT_SUPPORTED),
        (real_pynvml.NVML_ERROR_NO_PERMISSION, FieldFailure.NO_PERMISSION),
        (real_pynvml.NVML_ERROR_UNKNOWN, FieldFailure.UNKNOWN),
        (real_pynvml.NVML_ERROR_GPU_IS_LOST, FieldFailure.GPU_LOST),
    ],
)
def test_a_failing_field_is_absent_with_its_reason_and_the_rest_present(
    code: int, failure: FieldFailure, source_of: list[NvmlGpuSource]
) -> None:
    gpu = FakeGpu(UUID_A, errors={"nvmlDeviceGetTemperature": code})
    source = open_source(FakeNvml([gpu]))
    source_of.append(source)

    reading = source.read(only(source, "0"))

    assert Field.TEMPERATURE not in reading.values
    assert [(e.field, e.failure) for e in reading.errors] == [(Field.TEMPERATURE, failure)]
    assert reading.values[Field.POWER] == 312.5
    assert reading.values[Field.MEMORY_USED] == 10 * GIB
    assert Field.THROTTLE_REASONS in reading.labelled


def test_a_call_that_supplies_two_fields_fails_both(source_of: list[NvmlGpuSource]) -> None:
    gpu = FakeGpu(UUID_A, errors={"nvmlDeviceGetUtilizationRates": real_pynvml.NVML_ERROR_UNKNOWN})
    source = open_source(FakeNvml([gpu]))
    source_of.append(source)

    reading = source.read(only(source, "0"))

    assert {e.field for e in reading.errors} == {Field.UTILIZATION, Field.MEMORY_UTILIZATION}
    assert Field.UTILIZATION not in reading.values


def test_ecc_off_is_not_supported(source_of: list[NvmlGpuSource]) -> None:
    gpu = FakeGpu(UUID_A, errors={"nvmlDeviceGetTotalEccErrors": real_pynvml.NVML_ERROR_NOT_SUPPORTED})
    source = open_source(FakeNvml([gpu]))
    source_of.append(source)

    reading = source.read(only(source, "0"))

    assert Field.ECC_ERRORS not in reading.labelled
    assert [(e.field, e.failure) for e in reading.errors] == [(Field.ECC_ERRORS, FieldFailure.NOT_SUPPORTED)]


def family(metrics: list[Metric], name: str) -> Metric:
    return next(m for m in metrics if m.name == name)


def test_through_the_collector_the_scrape_succeeds_without_the_failing_series(
    source_of: list[NvmlGpuSource],
) -> None:
    broken = FakeGpu(UUID_A, errors={"nvmlDeviceGetTemperature": real_pynvml.NVML_ERROR_NOT_SUPPORTED})
    healthy = FakeGpu(UUID_B, pci_bus_id="00000000:2A:00.0")
    source = open_source(FakeNvml([broken, healthy]))
    source_of.append(source)
    collector_errors, field_errors = ErrorCounts(), ErrorCounts()
    collector = GpuCollector(source, collector_errors=collector_errors, field_errors=field_errors)

    metrics = list(collector.collect())
    list(collector.collect())

    temperatures = {s.labels["uuid"]: s.value for s in family(metrics, "gpu_temperature_celsius").samples}
    assert temperatures == {UUID_B: 41.0}
    powers = {s.labels["uuid"] for s in family(metrics, "gpu_power_watts").samples}
    assert powers == {UUID_A, UUID_B}
    energy = family(metrics, "gpu_energy_joules").samples
    assert {s.value for s in energy if s.name == "gpu_energy_joules_total"} == {123_456.789}
    reasons = [s for s in family(metrics, "gpu_throttle_reasons").samples if s.labels["uuid"] == UUID_B]
    assert {s.labels["reason"] for s in reasons} == set(THROTTLE_REASON_BITS)
    assert field_errors.snapshot() == {("temperature", "not_supported"): 2}
    assert collector_errors.snapshot() == {}


# -- energy cache ------------------------------------------------------------------------------


def test_energy_is_read_at_most_once_per_ttl(clock: FakeClock, source_of: list[NvmlGpuSource]) -> None:
    gpu = FakeGpu(UUID_A)
    fake = FakeNvml([gpu])
    source = open_source(fake, clock, energy_ttl_seconds=10.0)
    source_of.append(source)
    device = only(source, "0")

    assert source.read(device).values[Field.ENERGY] == 123_456.789
    gpu.energy_mj = 200_000_000
    clock.now += 9.9
    assert source.read(device).values[Field.ENERGY] == 123_456.789
    assert fake.calls["nvmlDeviceGetTotalEnergyConsumption"] == 1

    clock.now += 0.1
    assert source.read(device).values[Field.ENERGY] == 200_000.0
    assert fake.calls["nvmlDeviceGetTotalEnergyConsumption"] == 2


def test_energy_failure_is_cached_for_the_ttl_too(clock: FakeClock, source_of: list[NvmlGpuSource]) -> None:
    gpu = FakeGpu(
        UUID_A, errors={"nvmlDeviceGetTotalEnergyConsumption": real_pynvml.NVML_ERROR_NOT_SUPPORTED}
    )
    fake = FakeNvml([gpu])
    source = open_source(fake, clock)
    source_of.append(source)
    device = only(source, "0")

    for _ in range(3):
        errors = source.read(device).errors
        assert [(e.field, e.failure) for e in errors] == [(Field.ENERGY, FieldFailure.NOT_SUPPORTED)]
    assert fake.calls["nvmlDeviceGetTotalEnergyConsumption"] == 1


def test_concurrent_scrapes_read_energy_once(clock: FakeClock, source_of: list[NvmlGpuSource]) -> None:
    fake = FakeNvml([FakeGpu(UUID_A), FakeGpu(UUID_B)])
    source = open_source(fake, clock)
    source_of.append(source)
    start = threading.Barrier(8)
    failures: list[BaseException] = []

    def scrape() -> None:
        start.wait()
        try:
            for _ in range(50):
                for device in source.devices():
                    reading = source.read(device)
                    assert reading.errors == ()
                    source.processes(device)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=scrape) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    assert fake.calls["nvmlDeviceGetTotalEnergyConsumption"] == 2


# -- throttle reasons --------------------------------------------------------------------------


def test_reason_bits_are_nvmls_clock_event_reasons() -> None:
    for name, bit in THROTTLE_REASON_BITS.items():
        camel = "".join(part.capitalize() for part in name.split("_"))
        assert getattr(real_pynvml, f"nvmlClocksEventReason{camel}") == bit, name
        assert getattr(real_pynvml, f"nvmlClocksThrottleReason{camel}") == bit, name
    all_bits = 0
    for bit in THROTTLE_REASON_BITS.values():
        all_bits |= bit
    assert all_bits == real_pynvml.nvmlClocksEventReasonAll


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_every_bitmask_maps_to_exactly_its_reasons(mask: int) -> None:
    reasons = throttle_reasons(mask)
    assert set(reasons) == set(THROTTLE_REASON_BITS)
    assert {name for name, on in reasons.items() if on == 1.0} == {
        name for name, bit in THROTTLE_REASON_BITS.items() if mask & bit
    }
    assert set(reasons.values()) <= {0.0, 1.0}


@given(st.integers(min_value=0, max_value=0x7FF))
def test_the_source_reports_the_mask_it_reads(mask: int) -> None:
    source = NvmlGpuSource.open(
        nvml=FakeNvml([FakeGpu(UUID_A, clock_reasons=mask)]).module(), watch_xid=False
    )
    try:
        reading = source.read(only(source, "0"))
    finally:
        source.close()
    assert reading.labelled[Field.THROTTLE_REASONS] == throttle_reasons(mask)


# -- MIG ---------------------------------------------------------------------------------------


def mig_gpu() -> FakeGpu:
    return FakeGpu(
        UUID_A,
        mig_enabled=True,
        errors={"nvmlDeviceGetUtilizationRates": real_pynvml.NVML_ERROR_NOT_SUPPORTED},
        migs=[
            FakeMig("MIG-11111111-0000-0000-0000-000000000000", gpu_instance_id=7),
            FakeMig(
                "MIG-22222222-0000-0000-0000-000000000000",
                gpu_instance_id=2,
                name="NVIDIA H100 80GB HBM3 MIG 3g.40gb",
                gpu_instance_slices=3,
                compute_instance_slices=3,
                memory_mib=40448,
                compute_processes=[(4242, 3 * GIB)],
            ),
        ],
    )


def test_mig_instances_are_devices_of_their_own(source_of: list[NvmlGpuSource]) -> None:
    source = open_source(FakeNvml([mig_gpu(), FakeGpu(UUID_B)]))
    source_of.append(source)

    devices = {d.index: d for d in source.devices()}

    assert sorted(devices) == ["0", "0/2", "0/7", "1"]
    assert devices["0"].mig_mode == "enabled"
    assert devices["1"].mig_mode == "disabled"
    small = devices["0/7"]
    assert small.uuid == "MIG-11111111-0000-0000-0000-000000000000"
    assert small.parent_uuid == UUID_A
    assert small.mig_profile == "1g.10gb"
    assert small.is_mig_instance
    assert devices["0/2"].mig_profile == "3g.40gb"
    assert devices["0/2"].pci_bus_id == devices["0"].pci_bus_id


def test_mig_instance_reads_memory_and_marks_the_rest_not_supported(source_of: list[NvmlGpuSource]) -> None:
    fake = FakeNvml([mig_gpu()])
    source = open_source(fake)
    source_of.append(source)
    before = fake.calls.copy()

    reading = source.read(only(source, "0/7"))

    assert reading.values[Field.MEMORY_TOTAL] == 9856 * MIB
    assert reading.values[Field.MEMORY_USED] == 1 * GIB
    failures = {e.field: e.failure for e in reading.errors}
    assert failures[Field.TEMPERATURE] is FieldFailure.NOT_SUPPORTED
    assert failures[Field.UTILIZATION] is FieldFailure.NOT_SUPPORTED
    assert Field.MEMORY_USED not in failures
    assert fake.calls["nvmlDeviceGetTemperature"] == before["nvmlDeviceGetTemperature"]


def test_mig_parent_keeps_its_physical_fields(source_of: list[NvmlGpuSource]) -> None:
    source = open_source(FakeNvml([mig_gpu()]))
    source_of.append(source)

    reading = source.read(only(source, "0"))

    assert reading.values[Field.TEMPERATURE] == 41.0
    assert [(e.field, e.failure) for e in reading.errors] == [
        (Field.UTILIZATION, FieldFailure.NOT_SUPPORTED),
        (Field.MEMORY_UTILIZATION, FieldFailure.NOT_SUPPORTED),
    ]


def test_mig_profile_comes_from_attributes_when_the_name_lacks_it(source_of: list[NvmlGpuSource]) -> None:
    gpu = FakeGpu(
        UUID_A,
        mig_enabled=True,
        memory_total=81559 * MIB,
        migs=[
            FakeMig(
                "MIG-33333333-0000-0000-0000-000000000000",
                gpu_instance_id=1,
                name="NVIDIA H100 80GB HBM3",
                gpu_instance_slices=2,
                compute_instance_slices=1,
                memory_mib=20096,
            )
        ],
    )
    source = open_source(FakeNvml([gpu]))
    source_of.append(source)

    assert only(source, "0/1").mig_profile == "1c.2g.20gb"


def test_split_gpu_instances_get_their_compute_instance_in_the_index(source_of: list[NvmlGpuSource]) -> None:
    gpu = FakeGpu(
        UUID_A,
        mig_enabled=True,
        migs=[
            FakeMig("MIG-a", gpu_instance_id=1, compute_instance_id=0, name="NVIDIA H100 MIG 1c.2g.20gb"),
            FakeMig("MIG-b", gpu_instance_id=1, compute_instance_id=1, name="NVIDIA H100 MIG 1c.2g.20gb"),
        ],
    )
    source = open_source(FakeNvml([gpu]))
    source_of.append(source)

    assert sorted(d.index for d in source.devices()) == ["0", "0/1/0", "0/1/1"]


def test_mig_processes_come_from_the_instance(source_of: list[NvmlGpuSource]) -> None:
    source = open_source(FakeNvml([mig_gpu()]))
    source_of.append(source)

    (process,) = source.processes(only(source, "0/2"))

    assert process.pid == 4242
    assert process.used_memory_bytes == 3 * GIB
    assert process.sm_utilization_ratio is None


@pytest.mark.parametrize(
    ("name", "profile"),
    [
        ("NVIDIA A100-SXM4-40GB MIG 1g.5gb", "1g.5gb"),
        ("NVIDIA H100 80GB HBM3 MIG 1g.10gb+me", "1g.10gb+me"),
        ("NVIDIA A100 80GB PCIe MIG 1c.3g.40gb", "1c.3g.40gb"),
        ("NVIDIA H100 80GB HBM3", ""),
    ],
)
def test_profile_from_name(name: str, profile: str) -> None:
    assert profile_from_name(name) == profile


@pytest.mark.parametrize(
    ("slices", "memory_mib", "parent_mib", "profile"),
    [
        ((1, 1), 4864, 40536, "1g.5gb"),
        ((7, 7), 40192, 40536, "7g.40gb"),
        ((1, 1), 9856, 81559, "1g.10gb"),
        ((3, 3), 40448, 81559, "3g.40gb"),
        ((7, 7), 80896, 81559, "7g.80gb"),
        ((2, 1), 20096, 81559, "1c.2g.20gb"),
    ],
)
def test_profile_from_attributes(
    slices: tuple[int, int], memory_mib: int, parent_mib: int, profile: str
) -> None:
    assert profile_from_attributes(slices[0], slices[1], memory_mib, parent_mib * MIB) == profile


# -- processes ---------------------------------------------------------------------------------


def test_processes_merge_both_lists_and_average_sm_samples_since_last_call(
    source_of: list[NvmlGpuSource],
) -> None:
    gpu = FakeGpu(
        UUID_A,
        compute_processes=[(100, 1 * GIB), (200, None)],
        graphics_processes=[(100, 1 * GIB), (300, 2 * GIB)],
        samples=[(100, 1_000, 50), (100, 2_000, 70), (300, 1_500, 10)],
    )
    fake = FakeNvml([gpu])
    source = open_source(fake)
    source_of.append(source)
    device = only(source, "0")

    first = {p.pid: p for p in source.processes(device)}
    gpu.samples.append((200, 3_000, 90))
    second = {p.pid: p for p in source.processes(device)}
    third = {p.pid: p for p in source.processes(device)}

    assert sorted(first) == [100, 200, 300]
    assert first[100].used_memory_bytes == 1 * GIB
    assert first[200].used_memory_bytes is None
    assert first[300].used_memory_bytes == 2 * GIB
    assert first[100].sm_utilization_ratio == pytest.approx(0.6)
    assert first[300].sm_utilization_ratio == pytest.approx(0.1)
    assert first[200].sm_utilization_ratio is None
    assert second[200].sm_utilization_ratio == pytest.approx(0.9)
    assert second[100].sm_utilization_ratio is None
    assert all(p.sm_utilization_ratio is None for p in third.values())
    assert fake.process_utilization_since == [0, 2_000, 3_000]


def test_processes_where_graphics_is_not_supported(source_of: list[NvmlGpuSource]) -> None:
    gpu = FakeGpu(
        UUID_A,
        compute_processes=[(7, 512 * MIB)],
        errors={
            "nvmlDeviceGetGraphicsRunningProcesses": real_pynvml.NVML_ERROR_NOT_SUPPORTED,
            "nvmlDeviceGetProcessUtilization": real_pynvml.NVML_ERROR_NOT_SUPPORTED,
        },
    )
    source = open_source(FakeNvml([gpu]))
    source_of.append(source)

    assert [
        (p.pid, p.used_memory_bytes, p.sm_utilization_ratio) for p in source.processes(only(source, "0"))
    ] == [(7, 512 * MIB, None)]


# -- lost GPUs and re-enumeration --------------------------------------------------------------


def test_lost_gpu_fails_every_field_and_is_re_enumerated(
    clock: FakeClock, source_of: list[NvmlGpuSource]
) -> None:
    gpu = FakeGpu(UUID_A)
    fake = FakeNvml([gpu])
    source = open_source(fake, clock)
    source_of.append(source)
    device = only(source, "0")
    scans = fake.calls["nvmlDeviceGetCount"]

    gpu.lost = True
    reading = source.read(device)

    assert reading.values == {}
    assert {e.failure for e in reading.errors} == {FieldFailure.GPU_LOST}
    assert not source.up
    source.devices()
    assert fake.calls["nvmlDeviceGetCount"] == scans  # not on every scrape

    clock.now += LOST_RESCAN_SECONDS
    assert source.devices() == ()
    assert fake.calls["nvmlDeviceGetCount"] == scans + 1
    assert not source.up

    gpu.lost = False
    clock.now += 60.0
    assert [d.uuid for d in source.devices()] == [UUID_A]
    assert source.up


def test_one_lost_gpu_of_two_keeps_the_source_up(source_of: list[NvmlGpuSource]) -> None:
    lost = FakeGpu(UUID_A)
    source = open_source(FakeNvml([lost, FakeGpu(UUID_B)]))
    source_of.append(source)
    lost.lost = True

    source.read(only(source, "0"))

    assert source.up


def test_devices_are_re_enumerated_on_the_slow_timer(
    clock: FakeClock, source_of: list[NvmlGpuSource]
) -> None:
    fake = FakeNvml([FakeGpu(UUID_A)])
    source = open_source(fake, clock, rescan_interval_seconds=60.0)
    source_of.append(source)

    fake.gpus.append(FakeGpu(UUID_B))
    clock.now += 59.0
    assert len(source.devices()) == 1
    clock.now += 1.0
    assert [d.uuid for d in source.devices()] == [UUID_A, UUID_B]


def test_handles_are_opened_once_not_per_scrape(source_of: list[NvmlGpuSource]) -> None:
    fake = FakeNvml([FakeGpu(UUID_A)])
    source = open_source(fake)
    source_of.append(source)

    for _ in range(5):
        for device in source.devices():
            source.read(device)

    assert fake.calls["nvmlDeviceGetHandleByIndex"] == 1
    assert fake.calls["nvmlDeviceGetUUID"] == 1


def test_close_shuts_down_and_leaves_nothing_to_read() -> None:
    fake = FakeNvml([FakeGpu(UUID_A)])
    source = open_source(fake)
    device = only(source, "0")

    source.close()
    source.close()

    assert not source.up
    assert source.devices() == ()
    with pytest.raises(LookupError):
        source.read(device)
    assert fake.initialised == 0


# -- XID events --------------------------------------------------------------------------------


def xid_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "nvml-xid"]


def test_xid_events_are_counted_per_device_and_code_and_the_thread_stops_on_close() -> None:
    gpu = mig_gpu()
    fake = FakeNvml([gpu, FakeGpu(UUID_B)])
    source = open_source(fake)
    wait_until(lambda: all(len(s.registered) == 2 for s in fake.event_sets))
    parent, instance = only(source, "0"), only(source, "0/2")

    fake.inject_xid(gpu, 79)
    fake.inject_xid(gpu, 79)
    fake.inject_xid(gpu, 31, gpu_instance_id=2)

    wait_until(lambda: source.read(parent).labelled.get(Field.XID_ERRORS) == {"79": 2.0})
    assert source.read(instance).labelled[Field.XID_ERRORS] == {"31": 1.0}
    assert source.read(only(source, "1")).labelled[Field.XID_ERRORS] == {}
    assert len(xid_threads()) == 1

    source.close()

    assert xid_threads() == []
    assert all(s.freed for s in fake.event_sets)


def test_gpus_without_event_support_are_read_without_xid_counts() -> None:
    fake = FakeNvml([FakeGpu(UUID_A, events_supported=False), FakeGpu(UUID_B)])
    source = open_source(fake)
    try:
        wait_until(lambda: fake.calls["nvmlDeviceRegisterEvents"] >= 2)
        wait_until(lambda: Field.XID_ERRORS in source.read(only(source, "1")).labelled)
        reading = source.read(only(source, "0"))
        assert Field.XID_ERRORS not in reading.labelled
        assert reading.errors == ()
    finally:
        source.close()
    assert fake.calls["nvmlDeviceRegisterEvents"] == 2


def test_xid_thread_can_be_left_off() -> None:
    fake = FakeNvml([FakeGpu(UUID_A)])
    source = NvmlGpuSource.open(nvml=fake.module(), watch_xid=False)
    try:
        assert xid_threads() == []
        assert Field.XID_ERRORS not in source.read(only(source, "0")).labelled
    finally:
        source.close()
    assert fake.calls["nvmlEventSetCreate"] == 0

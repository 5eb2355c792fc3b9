"""GPU device series: one per device per field, labelled with the device and its sole holder."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric

from exporter.collectors.errors import ErrorCounts
from exporter.gpu.model import Field, FieldFailure, GpuDevice, GpuReading
from exporter.gpu.source import GpuSource
from exporter.pods.model import DeviceHolders, HolderSource, NoHolders

log = logging.getLogger(__name__)

DEVICE_LABELS = ("gpu", "uuid", "namespace", "pod", "container")
INFO_LABELS = (
    "gpu",
    "uuid",
    "node",
    "model",
    "pci_bus_id",
    "driver_version",
    "mig_mode",
    "parent_uuid",
    "mig_profile",
)


@dataclass(frozen=True)
class FieldMetric:
    """How one ``Field`` is exposed."""

    name: str
    help: str
    counter: bool = False
    sample_label: str = ""


FIELD_METRICS: dict[Field, FieldMetric] = {
    Field.UTILIZATION: FieldMetric(
        "gpu_utilization_ratio", "Fraction of the last sample period in which a kernel ran on the GPU (0-1)."
    ),
    Field.MEMORY_UTILIZATION: FieldMetric(
        "gpu_memory_utilization_ratio",
        "Fraction of the last sample period in which device memory was read or written (0-1).",
    ),
    Field.MEMORY_USED: FieldMetric("gpu_memory_used_bytes", "Framebuffer memory in use."),
    Field.MEMORY_FREE: FieldMetric("gpu_memory_free_bytes", "Framebuffer memory free."),
    Field.MEMORY_TOTAL: FieldMetric("gpu_memory_total_bytes", "Framebuffer memory installed."),
    Field.MEMORY_RESERVED: FieldMetric(
        "gpu_memory_reserved_bytes", "Framebuffer memory reserved by the driver and firmware."
    ),
    Field.TEMPERATURE: FieldMetric("gpu_temperature_celsius", "GPU die temperature."),
    Field.POWER: FieldMetric("gpu_power_watts", "Power drawn by the board."),
    Field.POWER_LIMIT: FieldMetric("gpu_power_limit_watts", "Power limit the board enforces."),
    Field.ENERGY: FieldMetric(
        "gpu_energy_joules",
        "Energy used since the driver loaded (refreshed every few seconds).",
        counter=True,
    ),
    Field.SM_CLOCK: FieldMetric("gpu_sm_clock_hertz", "Streaming-multiprocessor clock."),
    Field.MEMORY_CLOCK: FieldMetric("gpu_memory_clock_hertz", "Memory clock."),
    Field.THROTTLE_REASONS: FieldMetric(
        "gpu_throttle_reasons",
        "1 while the clocks are held down for this reason, else 0.",
        sample_label="reason",
    ),
    Field.ECC_ERRORS: FieldMetric(
        "gpu_ecc_errors", "ECC errors since the driver loaded, by type.", counter=True, sample_label="type"
    ),
    Field.XID_ERRORS: FieldMetric(
        "gpu_xid_errors",
        "XID errors seen since the exporter started, by XID code.",
        counter=True,
        sample_label="xid",
    ),
}


class ReadingsView(Protocol):
    """Another exposition of the same scrape's readings (e.g. dcgm-exporter-compatible names)."""

    def families(self, readings: Sequence[GpuReading], holders: DeviceHolders) -> Iterable[Metric]: ...


def device_label_values(device: GpuDevice, holders: DeviceHolders) -> tuple[str, ...]:
    """The device labels; ``namespace/pod/container`` only when exactly one container holds it."""
    held_by = holders.holders(device)
    sole = held_by[0] if len(held_by) == 1 else None
    return (
        device.index,
        device.uuid,
        sole.namespace if sole else "",
        sole.pod if sole else "",
        sole.container if sole else "",
    )


class GpuCollector:
    """Reads every device from the source on each scrape and yields the GPU metric families."""

    def __init__(
        self,
        source: GpuSource,
        *,
        collector_errors: ErrorCounts,
        field_errors: ErrorCounts,
        holders: HolderSource | None = None,
        node: str = "",
        views: Sequence[ReadingsView] = (),
    ) -> None:
        self._source = source
        self._node = node
        self._views = tuple(views)
        self._collector_errors = collector_errors
        self._field_errors = field_errors
        self._holders = holders or NoHolders()

    def collect(self) -> Iterator[Metric]:
        holders = self._holders.snapshot()
        readings = list(self._read_all())
        info = InfoMetricFamily("gpu", "Static facts about each GPU or MIG instance.", labels=INFO_LABELS)
        for reading in readings:
            d = reading.device
            info.add_metric(
                [
                    d.index,
                    d.uuid,
                    self._node,
                    d.model,
                    d.pci_bus_id,
                    d.driver_version,
                    d.mig_mode,
                    d.parent_uuid,
                    d.mig_profile,
                ],
                {},
            )
        yield info
        yield from self._field_families(readings, holders)
        for view in self._views:
            yield from view.families(readings, holders)

    def _read_all(self) -> Iterable[GpuReading]:
        for device in self._source.devices():
            try:
                reading = self._source.read(device)
            except Exception as exc:  # noqa: BLE001 - one device failing must not fail the scrape
                self._collector_errors.add("gpu")
                self._field_errors.add("all", type(exc).__name__)
                log.warning(
                    "gpu read failed", extra={"gpu": device.index, "uuid": device.uuid, "error": str(exc)}
                )
                continue
            for error in reading.errors:
                # A field the device does not have (ECC off, MIG instances) is a fact, not a fault.
                if error.failure is not FieldFailure.NOT_SUPPORTED:
                    self._collector_errors.add("gpu")
                self._field_errors.add(error.field.value, error.failure.value)
            yield reading

    def _field_families(self, readings: list[GpuReading], holders: DeviceHolders) -> Iterator[Metric]:
        labels = {r.device.uuid: list(device_label_values(r.device, holders)) for r in readings}
        for field, spec in FIELD_METRICS.items():
            family_labels = [*DEVICE_LABELS, spec.sample_label] if spec.sample_label else list(DEVICE_LABELS)
            family: Metric
            if spec.counter:
                family = CounterMetricFamily(spec.name, spec.help, labels=family_labels)
            else:
                family = GaugeMetricFamily(spec.name, spec.help, labels=family_labels)
            for reading in readings:
                base = labels[reading.device.uuid]
                if spec.sample_label:
                    for label_value, value in sorted(reading.labelled.get(field, {}).items()):
                        family.add_metric([*base, label_value], value)
                elif field in reading.values:
                    family.add_metric(base, reading.values[field])
            yield family

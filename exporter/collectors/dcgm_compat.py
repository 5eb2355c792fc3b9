"""dcgm-exporter's names, units and labels for the core GPU fields (``--compat dcgm``).

Dashboards, OpenCost and the PromQL of existing dcgm-exporter setups keep working when they read
these series. Names, units and (but for the energy counter) types follow dcgm-exporter's
``default-counters.csv``; the labels are the ones dcgm-exporter attaches: ``gpu``, ``UUID``,
``pci_bus_id``, ``device``, ``modelName``, ``Hostname``, ``DCGM_FI_DRIVER_VERSION``, ``container``,
``namespace``, ``pod``, and for MIG instances ``GPU_I_PROFILE`` / ``GPU_I_ID`` with ``gpu`` and
``UUID`` naming the parent GPU. Values keep their fraction (dcgm-exporter rounds percent and MiB to
integers), which no query can tell apart except by being more exact.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import Metric

from exporter.collectors.gpu import device_label_values
from exporter.gpu.model import Field, GpuDevice, GpuReading
from exporter.pods.model import DeviceHolders

MIB = 1024 * 1024

LABELS = (
    "gpu",
    "UUID",
    "pci_bus_id",
    "device",
    "modelName",
    "Hostname",
    "DCGM_FI_DRIVER_VERSION",
    "GPU_I_PROFILE",
    "GPU_I_ID",
    "container",
    "namespace",
    "pod",
)


@dataclass(frozen=True)
class DcgmField:
    """One dcgm-exporter field: its name, Prometheus type, help text and our field scaled into its unit."""

    name: str
    type: str
    help: str
    source: Field
    scale: float


DCGM_FIELDS = (
    DcgmField("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", Field.SM_CLOCK, 1e-6),
    DcgmField("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).", Field.MEMORY_CLOCK, 1e-6),
    DcgmField("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", Field.TEMPERATURE, 1.0),
    DcgmField("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", Field.POWER, 1.0),
    # A counter in dcgm-exporter's text output; OpenMetrics requires a counter's samples to end in
    # ``_total`` (and client_python's text writer puts ``_total`` on the TYPE line), so the one way to
    # keep dcgm-exporter's exact series name in both formats is an untyped family. PromQL's rate() and
    # increase() treat it the same.
    DcgmField(
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        "unknown",
        "Total energy consumption since boot (in mJ).",
        Field.ENERGY,
        1000.0,
    ),
    DcgmField("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", Field.UTILIZATION, 100.0),
    DcgmField(
        "DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).", Field.MEMORY_UTILIZATION, 100.0
    ),
    DcgmField(
        "DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).", Field.MEMORY_FREE, 1 / MIB
    ),
    DcgmField(
        "DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", Field.MEMORY_USED, 1 / MIB
    ),
)


def dcgm_label_values(device: GpuDevice, holders: DeviceHolders, hostname: str) -> dict[str, str]:
    """dcgm-exporter's labels for ``device``; the pod labels only when one container holds it."""
    _, _, namespace, pod, container = device_label_values(device, holders)
    gpu, _, rest = device.index.partition("/")
    instance = rest.partition("/")[0] if device.is_mig_instance else ""
    return {
        "gpu": gpu,
        "UUID": device.parent_uuid or device.uuid,
        "pci_bus_id": device.pci_bus_id,
        "device": f"nvidia{gpu}",
        "modelName": device.model,
        "Hostname": hostname,
        "DCGM_FI_DRIVER_VERSION": device.driver_version,
        "GPU_I_PROFILE": device.mig_profile if device.is_mig_instance else "",
        "GPU_I_ID": instance,
        "container": container,
        "namespace": namespace,
        "pod": pod,
    }


class DcgmCompatView:
    """A ``ReadingsView`` that exposes each scrape's readings again under dcgm-exporter's names."""

    def __init__(self, hostname: str) -> None:
        self._hostname = hostname

    def families(self, readings: Sequence[GpuReading], holders: DeviceHolders) -> Iterable[Metric]:
        labels = {r.device.uuid: dcgm_label_values(r.device, holders, self._hostname) for r in readings}
        return self._families(readings, labels)

    @staticmethod
    def _families(readings: Sequence[GpuReading], labels: dict[str, dict[str, str]]) -> Iterator[Metric]:
        for spec in DCGM_FIELDS:
            family = Metric(spec.name, spec.help, spec.type)
            for reading in readings:
                if spec.source in reading.values:
                    family.add_sample(
                        spec.name, labels[reading.device.uuid], reading.values[spec.source] * spec.scale
                    )
            yield family

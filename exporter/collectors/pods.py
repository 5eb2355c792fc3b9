"""Pod attribution series: who holds each GPU (allocated view) and who uses it (observed view)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Sequence
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily, InfoMetricFamily, Metric

from exporter.collectors.errors import ErrorCounts
from exporter.gpu.model import GpuDevice
from exporter.gpu.source import GpuSource
from exporter.pods.allocations import AllocationSnapshot, Holding, PodResourcesHolders
from exporter.pods.cgroups import ContainerCgroup
from exporter.pods.model import NoPodDirectory, PodDirectory
from exporter.pods.usage import DeviceUsage, device_usage

log = logging.getLogger(__name__)

DEVICE_LABELS = ("gpu", "uuid")
CONTAINER_LABELS = ("gpu", "uuid", "namespace", "pod", "container")
POD_INFO_LABELS = ("namespace", "pod", "uid", "owner_kind", "owner_name")


class CgroupReader(Protocol):
    """Where a process's pod and container come from; :class:`ProcCgroups` reads ``/proc``."""

    def container_of(self, pid: int) -> ContainerCgroup | None: ...


def label_name(pod_label: str) -> str:
    """The series label for a pod label: ``app.kubernetes.io/name`` -> ``label_app_kubernetes_io_name``."""
    return "label_" + re.sub(r"[^a-zA-Z0-9_]", "_", pod_label)


class PodsCollector:
    """Yields the attribution families fresh on every scrape."""

    def __init__(
        self,
        source: GpuSource,
        holders: PodResourcesHolders,
        cgroups: CgroupReader,
        *,
        errors: ErrorCounts,
        directory: PodDirectory | None = None,
        pod_labels: Sequence[str] = (),
    ) -> None:
        self._source = source
        self._holders = holders
        self._cgroups = cgroups
        self._errors = errors
        self._directory = directory or NoPodDirectory()
        # Two pod labels that sanitise to one series label would collide; the first listed wins.
        self._pod_labels = {label_name(key): key for key in reversed(pod_labels)}

    def collect(self) -> Iterator[Metric]:
        snapshot = self._holders.snapshot()
        # Each device's holdings once per scrape: with hundreds of time-slicing replicas on a GPU,
        # sorting them is what a scrape spends most on.
        held = [(device, snapshot.holdings(device)) for device in self._source.devices()]
        yield self._allocation_info(held)
        yield from self._counts(snapshot)
        usages = list(self._usages(held))
        yield from self._usage_families(usages)
        named = {h.container for _, holdings in held for h in holdings}
        named |= {u.container for usage in usages for u in usage.containers}
        yield self._pod_info({(c.namespace, c.pod) for c in named})

    def _allocation_info(self, held: list[tuple[GpuDevice, tuple[Holding, ...]]]) -> Metric:
        family = InfoMetricFamily(
            "gpu_allocation",
            "1 for each container the kubelet allocated the device to (once however many replica slots "
            "of it the container holds); join device series on gpu and uuid to attribute shared GPUs.",
            labels=[*CONTAINER_LABELS, "resource"],
        )
        for device, holdings in held:
            for holding in holdings:
                c = holding.container
                family.add_metric(
                    [device.index, device.uuid, c.namespace, c.pod, c.container, holding.resource], {}
                )
        return family

    def _counts(self, snapshot: AllocationSnapshot) -> Iterator[Metric]:
        allocatable = self._holders.allocatable()
        replicas = (
            "as the kubelet counts them: with time-slicing or MPS each replica slot counts as one device"
        )
        allocatable_family = GaugeMetricFamily(
            "gpu_allocatable",
            f"GPU devices the kubelet can allocate on this node, {replicas}.",
            labels=["resource"],
        )
        allocated_family = GaugeMetricFamily(
            "gpu_allocated",
            f"GPU devices allocated to containers on this node, {replicas}.",
            labels=["resource"],
        )
        for resource, count in (allocatable or {}).items():
            allocatable_family.add_metric([resource], count)
        if self._holders.up:
            for resource in sorted(set(allocatable or {}) | set(snapshot.allocated)):
                allocated_family.add_metric([resource], snapshot.allocated.get(resource, 0))
        yield allocatable_family
        yield allocated_family

    def _usages(self, held: list[tuple[GpuDevice, tuple[Holding, ...]]]) -> Iterator[DeviceUsage]:
        for device, holdings in held:
            try:
                processes = self._source.processes(device)
            except Exception as error:  # noqa: BLE001 - one device's process list failing must not fail the rest
                self._errors.add("pods")
                log.warning(
                    "gpu process list failed",
                    extra={"gpu": device.index, "uuid": device.uuid, "error": str(error)},
                )
                continue
            holders = tuple(sorted({holding.container for holding in holdings}))
            yield device_usage(device, processes, self._cgroups.container_of, holders, self._directory)

    def _usage_families(self, usages: list[DeviceUsage]) -> Iterator[Metric]:
        memory = GaugeMetricFamily(
            "gpu_container_memory_used_bytes",
            "Framebuffer memory used on the device by the container's processes.",
            labels=CONTAINER_LABELS,
        )
        utilization = GaugeMetricFamily(
            "gpu_container_utilization_ratio",
            "Share of the device's SM time used by the container's processes over NVML's last sample "
            "window (0-1).",
            labels=CONTAINER_LABELS,
        )
        unattributed = GaugeMetricFamily(
            "gpu_unattributed_memory_used_bytes",
            "Framebuffer memory used on the device by processes in no container the exporter could name: "
            "outside any pod, exited before they could be placed, or sharing a device with other containers "
            "while the Kubernetes API is unavailable.",
            labels=DEVICE_LABELS,
        )
        for usage in usages:
            device = usage.device
            for used in usage.containers:
                c = used.container
                labels = [device.index, device.uuid, c.namespace, c.pod, c.container]
                if used.memory_bytes is not None:
                    memory.add_metric(labels, used.memory_bytes)
                if used.sm_utilization_ratio is not None:
                    utilization.add_metric(labels, used.sm_utilization_ratio)
            unattributed.add_metric([device.index, device.uuid], usage.unattributed_memory_bytes)
        yield memory
        yield utilization
        yield unattributed

    def _pod_info(self, pods: set[tuple[str, str]]) -> Metric:
        label_names = sorted(self._pod_labels)
        family = InfoMetricFamily(
            "gpu_pod",
            "Metadata of pods holding or using a GPU on this node, from the Kubernetes API; join on "
            "namespace and pod.",
            labels=[*POD_INFO_LABELS, *label_names],
        )
        for namespace, pod in sorted(pods):
            meta = self._directory.by_name(namespace, pod)
            if meta is None:
                continue
            values = [meta.namespace, meta.name, meta.uid, meta.owner_kind, meta.owner_name]
            values += [meta.labels.get(self._pod_labels[name], "") for name in label_names]
            family.add_metric(values, {})
        return family

"""The allocated view: which containers the kubelet gave each GPU, built once per scrape from ``List``.

A container holding several replica slots of one GPU (``GPU-x::0`` ... ``GPU-x::3`` under
time-slicing) holds that GPU once: holders are sets, so nothing downstream counts it twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from exporter.collectors.errors import ErrorCounts
from exporter.gpu.model import GpuDevice
from exporter.pods.device_ids import (
    DEFAULT_RESOURCE_PATTERNS,
    DeviceKey,
    device_keys,
    parse_device_id,
    resource_matches,
)
from exporter.pods.model import AllocatableDevices, ContainerRef, DeviceAllocation

log = logging.getLogger(__name__)


@dataclass(frozen=True, order=True)
class Holding:
    """A container holding a device through one resource."""

    container: ContainerRef
    resource: str


@dataclass(frozen=True)
class AllocationSnapshot:
    """Holders of every allocated GPU and counts per resource, as of one ``List`` answer."""

    by_key: Mapping[DeviceKey, frozenset[Holding]] = field(default_factory=dict)
    allocated: Mapping[str, int] = field(default_factory=dict)

    def holdings(self, device: GpuDevice) -> tuple[Holding, ...]:
        """Each (container, resource) holding ``device``, once, sorted."""
        found: set[Holding] = set()
        for key in device_keys(device):
            found |= self.by_key.get(key, frozenset())
        return tuple(sorted(found))

    def holders(self, device: GpuDevice) -> Sequence[ContainerRef]:
        """Each container holding ``device``, once, sorted."""
        return tuple(sorted({holding.container for holding in self.holdings(device)}))


def build_snapshot(
    allocations: Iterable[DeviceAllocation], resource_patterns: Sequence[str]
) -> AllocationSnapshot:
    """Index allocations of matching resources by device key; count distinct IDs per resource.

    ``allocated`` counts device IDs as the kubelet does: each replica slot is one.
    """
    by_key: dict[DeviceKey, set[Holding]] = {}
    ids_by_resource: dict[str, set[str]] = {}
    for allocation in allocations:
        if not resource_matches(allocation.resource, resource_patterns):
            continue
        ids_by_resource.setdefault(allocation.resource, set()).update(allocation.device_ids)
        for device_id in allocation.device_ids:
            key = parse_device_id(device_id)
            if key is None:
                log.debug(
                    "unrecognised device id", extra={"resource": allocation.resource, "device_id": device_id}
                )
                continue
            by_key.setdefault(key, set()).add(Holding(allocation.container, allocation.resource))
    return AllocationSnapshot(
        by_key={key: frozenset(holdings) for key, holdings in by_key.items()},
        allocated={resource: len(ids) for resource, ids in sorted(ids_by_resource.items())},
    )


def count_allocatable(
    allocatable: Iterable[AllocatableDevices], resource_patterns: Sequence[str]
) -> dict[str, int]:
    """Distinct allocatable device IDs per matching resource (each replica slot is one)."""
    counts: dict[str, int] = {}
    for devices in allocatable:
        if resource_matches(devices.resource, resource_patterns):
            counts[devices.resource] = counts.get(devices.resource, 0) + len(set(devices.device_ids))
    return dict(sorted(counts.items()))


class AllocationReader(Protocol):
    """The kubelet calls the allocated view needs; :class:`PodResourcesClient` is one."""

    @property
    def up(self) -> bool: ...

    def list_allocations(self) -> tuple[DeviceAllocation, ...] | None: ...

    def allocatable(self) -> tuple[AllocatableDevices, ...] | None: ...


class PodResourcesHolders:
    """The ``HolderSource`` backed by the kubelet; an unanswered ``List`` means no holders."""

    def __init__(
        self,
        reader: AllocationReader,
        resource_patterns: Sequence[str] = DEFAULT_RESOURCE_PATTERNS,
        *,
        errors: ErrorCounts | None = None,
    ) -> None:
        self._reader = reader
        self.resource_patterns = tuple(resource_patterns)
        self._errors = errors
        self._lock = threading.Lock()
        self._built_from: tuple[DeviceAllocation, ...] | None = None
        self._built = AllocationSnapshot()

    @property
    def up(self) -> bool:
        return self._reader.up

    def snapshot(self) -> AllocationSnapshot:
        """The allocated view; the same object while the client serves the same cached answer."""
        try:
            allocations = self._reader.list_allocations()
            if allocations is None:
                return AllocationSnapshot()
            with self._lock:
                if allocations is not self._built_from:
                    self._built = build_snapshot(allocations, self.resource_patterns)
                    self._built_from = allocations
                return self._built
        except Exception:  # the GPU collector relies on snapshot() never raising
            if self._errors is not None:
                self._errors.add("pods")
            log.exception("building the pod allocation view failed")
            return AllocationSnapshot()

    def allocatable(self) -> dict[str, int] | None:
        """Allocatable device counts per matching resource, or None when the kubelet does not say."""
        allocatable = self._reader.allocatable()
        return None if allocatable is None else count_allocatable(allocatable, self.resource_patterns)

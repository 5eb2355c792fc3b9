"""Values that cross the attribution seam."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from exporter.gpu.model import GpuDevice


@dataclass(frozen=True, order=True)
class ContainerRef:
    """A container in a pod, as the kubelet names it."""

    namespace: str
    pod: str
    container: str


class DeviceHolders(Protocol):
    """Which containers hold each device, as of one scrape."""

    def holders(self, device: GpuDevice) -> Sequence[ContainerRef]:
        """The containers the kubelet allocated ``device`` to, each once, sorted."""
        ...


class HolderSource(Protocol):
    """Gives a consistent allocation view for the duration of one scrape."""

    @property
    def up(self) -> bool:
        """Whether the allocation source (the kubelet) answered lately (``kgm_pod_resources_up``)."""
        ...

    def snapshot(self) -> DeviceHolders:
        """The current allocations; never raises (a failing source answers "nobody")."""
        ...


class NoHolders:
    """Attribution switched off or unavailable: no device has a holder."""

    up = False

    def holders(self, device: GpuDevice) -> Sequence[ContainerRef]:
        return ()

    def snapshot(self) -> DeviceHolders:
        return self


@dataclass(frozen=True)
class DeviceAllocation:
    """Devices of one resource that the kubelet allocated to one container, IDs as the plugin named them."""

    container: ContainerRef
    resource: str
    device_ids: tuple[str, ...]


@dataclass(frozen=True)
class AllocatableDevices:
    """Devices of one resource that the kubelet can allocate on this node."""

    resource: str
    device_ids: tuple[str, ...]


@dataclass(frozen=True)
class PodMeta:
    """What the Kubernetes API says about one pod on this node.

    ``uid`` is the API object's UID; ``cgroup_uid`` is the UID its containers' cgroups carry, which
    differs for static pods (the manifest hash, read from the mirror pod's annotation).
    ``containers`` maps runtime container IDs (without the ``containerd://`` scheme) to names.
    """

    uid: str
    namespace: str
    name: str
    cgroup_uid: str = ""
    containers: Mapping[str, str] = field(default_factory=dict)
    owner_kind: str = ""
    owner_name: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


class PodDirectory(Protocol):
    """Pod metadata by cgroup UID or by name; the optional Kubernetes API enrichment."""

    def by_cgroup_uid(self, uid: str) -> PodMeta | None:
        """The pod whose containers run in cgroups named with ``uid``."""
        ...

    def by_name(self, namespace: str, name: str) -> PodMeta | None:
        """The pod called ``namespace/name`` on this node."""
        ...


class NoPodDirectory:
    """No Kubernetes API access: pods are known only by what the kubelet's pod-resources API says."""

    def by_cgroup_uid(self, uid: str) -> PodMeta | None:
        return None

    def by_name(self, namespace: str, name: str) -> PodMeta | None:
        return None

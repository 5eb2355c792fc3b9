"""Values that cross the attribution seam."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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

"""A holder source for the exporter's collectors that answers fixed containers per GPU UUID."""

from __future__ import annotations

from collections.abc import Sequence

from exporter.gpu.model import GpuDevice
from exporter.pods.model import ContainerRef, DeviceHolders


class Holders:
    """Always up; its own snapshot, so a test may change ``by_uuid`` between scrapes."""

    up = True

    def __init__(self, by_uuid: dict[str, list[ContainerRef]]) -> None:
        self.by_uuid = by_uuid

    def holders(self, device: GpuDevice) -> Sequence[ContainerRef]:
        return self.by_uuid.get(device.uuid, [])

    def snapshot(self) -> DeviceHolders:
        return self

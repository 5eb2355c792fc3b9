"""The GPU-source seam and the source that reports no GPUs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from exporter.gpu.model import GpuDevice, GpuReading, ProcessUsage


class GpuSource(Protocol):
    """Where GPU readings come from: NVML on a real node, a simulation in the demo and tests."""

    @property
    def name(self) -> str:
        """Short name for logs and ``kgm_build_info`` (``nvml``, ``simulated``, ``none``)."""
        ...

    @property
    def up(self) -> bool:
        """Whether the source is answering (``kgm_nvml_up``)."""
        ...

    def devices(self) -> Sequence[GpuDevice]:
        """The devices present now, MIG instances included; may change between calls."""
        ...

    def read(self, device: GpuDevice) -> GpuReading:
        """One reading of ``device``; failures of single fields go into ``GpuReading.errors``."""
        ...

    def processes(self, device: GpuDevice) -> Sequence[ProcessUsage]:
        """Processes using ``device`` now (compute and graphics), with memory and SM share."""
        ...

    def close(self) -> None:
        """Release the library and handles; the source is not used afterwards."""
        ...


class NoGpuSource:
    """A node with no GPU, or one where NVML is unavailable: no devices, never up."""

    name = "none"
    up = False

    def devices(self) -> Sequence[GpuDevice]:
        return ()

    def read(self, device: GpuDevice) -> GpuReading:
        raise LookupError(f"no GPU source: device {device.uuid} cannot be read")

    def processes(self, device: GpuDevice) -> Sequence[ProcessUsage]:
        return ()

    def close(self) -> None:
        """Nothing to release."""

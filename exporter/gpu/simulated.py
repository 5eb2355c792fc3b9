"""Simulated GPUs that follow load profiles: the demo's, the tests' and the HPA lab's GPU source."""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from exporter.gpu.model import Field, GpuDevice, GpuReading, ProcessUsage
from exporter.gpu.profiles import LoadProfile, Sine

MIB = 1024 * 1024
DEFAULT_MODEL = "NVIDIA H100 80GB HBM3"
DEFAULT_MEMORY_BYTES = 81559 * MIB
DRIVER_VERSION = "simulated"
RESERVED_BYTES = 512 * MIB
IDLE_POWER_WATTS = 70.0
POWER_LIMIT_WATTS = 700.0
SM_CLOCK_IDLE_HZ = 345e6
SM_CLOCK_BUSY_HZ = 1980e6
MEMORY_CLOCK_HZ = 2619e6


@dataclass(frozen=True)
class SimulatedGpuSpec:
    """One simulated GPU: its model, framebuffer size and load profile."""

    profile: LoadProfile
    model: str = DEFAULT_MODEL
    memory_bytes: int = DEFAULT_MEMORY_BYTES


def default_profiles(count: int) -> list[LoadProfile]:
    """Out-of-phase sine waves, so a demo with several GPUs shows different, moving values."""
    return [Sine(low=0.15, high=0.85, period=120.0, phase=i * 120.0 / max(count, 1)) for i in range(count)]


class SimulatedGpuSource:
    """GPUs whose readings derive from their utilisation profile, plus seeded noise.

    Readings are a pure function of (seed, GPU, elapsed whole second), so two sources with the
    same seed read at the same elapsed times agree; energy integrates power between reads.
    """

    name = "simulated"
    up = True

    def __init__(
        self,
        specs: Sequence[SimulatedGpuSpec],
        *,
        seed: int = 0,
        noise: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._specs = list(specs)
        self._seed = seed
        self._noise = noise
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._energy_joules = [0.0] * len(self._specs)
        self._last_power: list[tuple[float, float] | None] = [None] * len(self._specs)
        self._devices = [self._device(i, spec) for i, spec in enumerate(self._specs)]

    def _device(self, index: int, spec: SimulatedGpuSpec) -> GpuDevice:
        digest = hashlib.sha256(f"{self._seed}:{index}".encode()).hexdigest()
        uuid = f"GPU-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
        return GpuDevice(
            index=str(index),
            uuid=uuid,
            model=spec.model,
            pci_bus_id=f"00000000:{0x18 + index:02X}:00.0",
            driver_version=DRIVER_VERSION,
        )

    def devices(self) -> Sequence[GpuDevice]:
        return self._devices

    def utilization(self, index: int, elapsed: float) -> float:
        """The profile's utilisation plus this GPU's noise for that second, clamped to 0..1."""
        base = self._specs[index].profile.utilization(elapsed)
        jitter = random.Random(f"{self._seed}:{index}:{int(elapsed)}").gauss(0.0, self._noise)  # noqa: S311
        return min(1.0, max(0.0, base + jitter))

    def read(self, device: GpuDevice) -> GpuReading:
        index = int(device.index)
        spec = self._specs[index]
        elapsed = self._clock() - self._started
        util = self.utilization(index, elapsed)
        used = int(spec.memory_bytes * (0.05 + 0.6 * util))
        power = IDLE_POWER_WATTS + (POWER_LIMIT_WATTS - IDLE_POWER_WATTS) * util * 0.9
        with self._lock:
            energy = self._integrate_energy(index, elapsed, power)
        values = {
            Field.UTILIZATION: util,
            Field.MEMORY_UTILIZATION: 0.7 * util,
            Field.MEMORY_USED: float(used),
            Field.MEMORY_FREE: float(spec.memory_bytes - used - RESERVED_BYTES),
            Field.MEMORY_TOTAL: float(spec.memory_bytes),
            Field.MEMORY_RESERVED: float(RESERVED_BYTES),
            Field.TEMPERATURE: round(30.0 + 45.0 * util),
            Field.POWER: power,
            Field.POWER_LIMIT: POWER_LIMIT_WATTS,
            Field.ENERGY: energy,
            Field.SM_CLOCK: SM_CLOCK_IDLE_HZ if util < 0.01 else SM_CLOCK_BUSY_HZ,
            Field.MEMORY_CLOCK: MEMORY_CLOCK_HZ,
        }
        labelled = {
            Field.THROTTLE_REASONS: {"gpu_idle": 1.0 if util < 0.01 else 0.0, "sw_power_cap": 0.0},
            Field.ECC_ERRORS: {"corrected": 0.0, "uncorrected": 0.0},
        }
        return GpuReading(device=device, values=values, labelled=labelled)

    def _integrate_energy(self, index: int, elapsed: float, power: float) -> float:
        last = self._last_power[index]
        if last is not None and elapsed > last[0]:
            self._energy_joules[index] += (elapsed - last[0]) * (power + last[1]) / 2
        if last is None or elapsed > last[0]:
            self._last_power[index] = (elapsed, power)
        return self._energy_joules[index]

    def processes(self, device: GpuDevice) -> Sequence[ProcessUsage]:
        return ()

    def close(self) -> None:
        """Nothing to release."""

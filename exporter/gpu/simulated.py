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


def simulated_device(seed: int, index: int, model: str) -> GpuDevice:
    """Simulated GPU ``index``: its UUID derives from the seed, so a restart shows the same devices."""
    digest = hashlib.sha256(f"{seed}:{index}".encode()).hexdigest()
    uuid = f"GPU-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
    return GpuDevice(
        index=str(index),
        uuid=uuid,
        model=model,
        pci_bus_id=f"00000000:{0x18 + index:02X}:00.0",
        driver_version=DRIVER_VERSION,
    )


def simulated_power(utilization: float) -> float:
    """Board power at ``utilization``: idle power plus a share of the limit."""
    return IDLE_POWER_WATTS + (POWER_LIMIT_WATTS - IDLE_POWER_WATTS) * utilization * 0.9


def simulated_reading(device: GpuDevice, utilization: float, memory_bytes: int, energy: float) -> GpuReading:
    """Every field of a simulated GPU, derived from its utilisation (memory, power, clocks, temperature)."""
    used = int(memory_bytes * (0.05 + 0.6 * utilization))
    values = {
        Field.UTILIZATION: utilization,
        Field.MEMORY_UTILIZATION: 0.7 * utilization,
        Field.MEMORY_USED: float(used),
        Field.MEMORY_FREE: float(memory_bytes - used - RESERVED_BYTES),
        Field.MEMORY_TOTAL: float(memory_bytes),
        Field.MEMORY_RESERVED: float(RESERVED_BYTES),
        Field.TEMPERATURE: round(30.0 + 45.0 * utilization),
        Field.POWER: simulated_power(utilization),
        Field.POWER_LIMIT: POWER_LIMIT_WATTS,
        Field.ENERGY: energy,
        Field.SM_CLOCK: SM_CLOCK_IDLE_HZ if utilization < 0.01 else SM_CLOCK_BUSY_HZ,
        Field.MEMORY_CLOCK: MEMORY_CLOCK_HZ,
    }
    labelled = {
        Field.THROTTLE_REASONS: {"gpu_idle": 1.0 if utilization < 0.01 else 0.0, "sw_power_cap": 0.0},
        Field.ECC_ERRORS: {"corrected": 0.0, "uncorrected": 0.0},
    }
    return GpuReading(device=device, values=values, labelled=labelled)


class EnergyMeter:
    """Per-GPU energy counters: the power of successive reads integrated over the time between them."""

    def __init__(self, count: int) -> None:
        self._lock = threading.Lock()
        self._joules = [0.0] * count
        self._last: list[tuple[float, float] | None] = [None] * count

    def add(self, index: int, elapsed: float, power: float) -> float:
        """Record ``power`` at ``elapsed`` seconds and return the GPU's energy so far."""
        with self._lock:
            last = self._last[index]
            if last is not None and elapsed > last[0]:
                self._joules[index] += (elapsed - last[0]) * (power + last[1]) / 2
            if last is None or elapsed > last[0]:
                self._last[index] = (elapsed, power)
            return self._joules[index]


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
        self._energy = EnergyMeter(len(self._specs))
        self._devices = [simulated_device(seed, i, spec.model) for i, spec in enumerate(self._specs)]

    def devices(self) -> Sequence[GpuDevice]:
        return self._devices

    def utilization(self, index: int, elapsed: float) -> float:
        """The profile's utilisation plus this GPU's noise for that second, clamped to 0..1."""
        base = self._specs[index].profile.utilization(elapsed)
        jitter = random.Random(f"{self._seed}:{index}:{int(elapsed)}").gauss(0.0, self._noise)  # noqa: S311
        return min(1.0, max(0.0, base + jitter))

    def read(self, device: GpuDevice) -> GpuReading:
        index = int(device.index)
        elapsed = self._clock() - self._started
        util = self.utilization(index, elapsed)
        energy = self._energy.add(index, elapsed, simulated_power(util))
        return simulated_reading(device, util, self._specs[index].memory_bytes, energy)

    def processes(self, device: GpuDevice) -> Sequence[ProcessUsage]:
        return ()

    def close(self) -> None:
        """Nothing to release."""

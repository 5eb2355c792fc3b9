"""The simulated GPU source: determinism, physical plausibility, profiles per GPU."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.gpu.model import Field
from exporter.gpu.profiles import Constant, Ramp
from exporter.gpu.simulated import POWER_LIMIT_WATTS, SimulatedGpuSource, SimulatedGpuSpec


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def source(
    profile_values: list[float], *, seed: int = 7, noise: float = 0.0
) -> tuple[SimulatedGpuSource, FakeClock]:
    clock = FakeClock()
    specs = [SimulatedGpuSpec(Constant(v)) for v in profile_values]
    return SimulatedGpuSource(specs, seed=seed, noise=noise, clock=clock), clock


def test_devices_have_stable_distinct_identities() -> None:
    first, _ = source([0.1, 0.2, 0.3])
    again, _ = source([0.1, 0.2, 0.3])
    other_seed, _ = source([0.1, 0.2, 0.3], seed=8)
    assert [d.uuid for d in first.devices()] == [d.uuid for d in again.devices()]
    assert len({d.uuid for d in first.devices()}) == 3
    assert {d.uuid for d in first.devices()}.isdisjoint(d.uuid for d in other_seed.devices())
    assert [d.index for d in first.devices()] == ["0", "1", "2"]
    assert all(d.uuid.startswith("GPU-") for d in first.devices())


def test_reading_follows_the_profile() -> None:
    gpus, _ = source([0.0, 0.75])
    idle, busy = (gpus.read(d) for d in gpus.devices())
    assert idle.values[Field.UTILIZATION] == 0.0
    assert busy.values[Field.UTILIZATION] == 0.75
    assert idle.labelled[Field.THROTTLE_REASONS]["gpu_idle"] == 1.0
    assert busy.values[Field.POWER] > idle.values[Field.POWER]
    assert busy.values[Field.MEMORY_USED] > idle.values[Field.MEMORY_USED]


def test_memory_adds_up_and_power_stays_under_the_limit() -> None:
    gpus, _ = source([1.0])
    reading = gpus.read(gpus.devices()[0])
    v = reading.values
    assert v[Field.MEMORY_USED] + v[Field.MEMORY_FREE] + v[Field.MEMORY_RESERVED] == v[Field.MEMORY_TOTAL]
    assert v[Field.POWER] <= POWER_LIMIT_WATTS == v[Field.POWER_LIMIT]


def test_energy_integrates_power_and_never_decreases() -> None:
    gpus, clock = source([0.5])
    device = gpus.devices()[0]
    first = gpus.read(device)
    clock.now += 10
    second = gpus.read(device)
    assert first.values[Field.ENERGY] == 0.0
    assert second.values[Field.ENERGY] == pytest.approx(10 * second.values[Field.POWER])
    clock.now -= 5  # a read that lands "earlier" (concurrent scrapes) must not subtract energy
    assert gpus.read(device).values[Field.ENERGY] == second.values[Field.ENERGY]


@given(st.integers(min_value=0, max_value=2**32), st.floats(min_value=0, max_value=1e5))
def test_same_seed_same_readings(seed: int, elapsed: float) -> None:
    a, clock_a = source([0.5], seed=seed, noise=0.05)
    b, clock_b = source([0.5], seed=seed, noise=0.05)
    clock_a.now += elapsed
    clock_b.now += elapsed
    ra, rb = a.read(a.devices()[0]), b.read(b.devices()[0])
    assert ra.values[Field.UTILIZATION] == rb.values[Field.UTILIZATION]
    assert 0.0 <= ra.values[Field.UTILIZATION] <= 1.0


def test_time_moves_the_profile() -> None:
    clock = FakeClock()
    gpus = SimulatedGpuSource([SimulatedGpuSpec(Ramp(0.0, 1.0, 100.0))], noise=0.0, clock=clock)
    device = gpus.devices()[0]
    clock.now += 50
    assert gpus.read(device).values[Field.UTILIZATION] == pytest.approx(0.5)

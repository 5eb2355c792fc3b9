"""RetryingGpuSource: no GPUs until the real source opens, attempts spaced by a doubling delay."""

from __future__ import annotations

import pytest

from exporter.gpu.model import GpuDevice
from exporter.gpu.profiles import Constant
from exporter.gpu.retrying import RetryingGpuSource
from exporter.gpu.simulated import SimulatedGpuSource, SimulatedGpuSpec


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Opener:
    """Fails ``failures`` times, then opens one simulated GPU."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.opened: SimulatedGpuSource | None = None

    def __call__(self) -> SimulatedGpuSource:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError(f"attempt {self.calls} failed")
        self.opened = SimulatedGpuSource([SimulatedGpuSpec(Constant(0.5))], seed=0)
        return self.opened


def test_attempts_back_off_and_the_source_is_used_once_open() -> None:
    clock, opener = Clock(), Opener(failures=3)
    source = RetryingGpuSource(
        "nvml", opener, retry_on=OSError, first_error="attempt 0", max_delay=4.0, clock=clock
    )
    assert (source.name, source.up, source.devices()) == ("nvml", False, ())
    attempts_at = []
    for tick in range(40):
        clock.now = tick * 0.5
        calls = opener.calls
        devices = source.devices()
        if opener.calls > calls:
            attempts_at.append(clock.now)
        if devices:
            break
    # First retry after 1 s, then 2, 4, and the ceiling of 4.
    assert attempts_at == [1.0, 3.0, 7.0, 11.0]
    assert source.up
    assert source.read(devices[0]).values
    source.close()
    assert opener.opened is not None
    assert not source.up


def test_reads_before_opening_fail_like_a_missing_device() -> None:
    source = RetryingGpuSource("nvml", Opener(failures=1), retry_on=OSError, first_error="x", clock=Clock())
    device = GpuDevice(index="0", uuid="GPU-x", model="m", pci_bus_id="p", driver_version="d")
    with pytest.raises(LookupError):
        source.read(device)
    assert source.processes(device) == ()

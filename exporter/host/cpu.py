"""Per-CPU time counters and the guard that keeps them monotonic across scrapes."""

from __future__ import annotations

import operator
from dataclasses import dataclass

CPU_MODES = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")

# node_exporter treats an idle counter falling this far as a CPU hot-unplug/replug and starts over.
JUMP_BACK_SECONDS = 3.0


@dataclass(frozen=True)
class CpuTimes:
    """Seconds one CPU has spent in each mode since boot, in ``CPU_MODES`` order."""

    user: float
    nice: float
    system: float
    idle: float
    iowait: float
    irq: float
    softirq: float
    steal: float

    def values(self) -> tuple[float, ...]:
        """The seconds in ``CPU_MODES`` order."""
        return (self.user, self.nice, self.system, self.idle, self.iowait, self.irq, self.softirq, self.steal)

    def by_mode(self) -> tuple[tuple[str, float], ...]:
        return tuple(zip(CPU_MODES, self.values(), strict=True))


def hold_monotonic(previous: CpuTimes | None, current: CpuTimes) -> CpuTimes:
    """The value to expose: ``current``, except that a mode never goes below what was exposed before.

    The kernel's idle and iowait counters can step backwards on tickless kernels; a counter that
    decreases reads as a reset to Prometheus and turns into a huge ``rate()``. node_exporter holds the
    previous value in that case, and starts afresh when idle drops by ``JUMP_BACK_SECONDS`` or more.
    """
    if previous is None or previous.idle - current.idle >= JUMP_BACK_SECONDS:
        return current
    before, now = previous.values(), current.values()
    if all(map(operator.le, before, now)):
        return current
    return CpuTimes(*map(max, before, now))

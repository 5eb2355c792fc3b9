"""Clock throttle (NVML "clock event") reasons: the bitmask NVML reports, as named 0/1 samples."""

from __future__ import annotations

from collections.abc import Mapping

# The bits of nvmlClocksEventReasonAll (the same values as the older nvmlClocksThrottleReason*); bits
# only some nvidia-ml-py releases name are left out. Every name is always reported, so a reason
# switching off shows as 0 rather than a vanished series.
THROTTLE_REASON_BITS: Mapping[str, int] = {
    "gpu_idle": 0x1,
    "applications_clocks_setting": 0x2,
    "sw_power_cap": 0x4,
    "hw_slowdown": 0x8,
    "sync_boost": 0x10,
    "sw_thermal_slowdown": 0x20,
    "hw_thermal_slowdown": 0x40,
    "hw_power_brake_slowdown": 0x80,
    "display_clock_setting": 0x100,
}


def throttle_reasons(mask: int) -> dict[str, float]:
    """Each known reason -> 1.0 when its bit is set in ``mask``, else 0.0; unknown bits are ignored."""
    return {name: 1.0 if mask & bit else 0.0 for name, bit in THROTTLE_REASON_BITS.items()}

"""GPU sources: where device readings come from (NVML, simulated, none)."""

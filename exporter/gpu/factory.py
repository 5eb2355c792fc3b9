"""Choosing and opening the GPU source named by ``--gpu-source``."""

from __future__ import annotations

import logging

from exporter.config import ExporterConfig
from exporter.gpu.retrying import RetryingGpuSource
from exporter.gpu.scenario import ControlFile, ScenarioGpuSource, ScenarioNode
from exporter.gpu.simulated import SimulatedGpuSource, SimulatedGpuSpec, default_profiles
from exporter.gpu.source import GpuSource, NoGpuSource
from kgm_common.scenario import Scenario

log = logging.getLogger(__name__)


class GpuSourceError(RuntimeError):
    """The requested GPU source cannot start; the message says why and what to do."""


def simulated_source(config: ExporterConfig) -> SimulatedGpuSource:
    """The simulated GPUs described by the config; profiles beyond the last given repeat it."""
    count = config.simulated_gpus
    profiles = list(config.simulated_profiles) or default_profiles(count)
    specs = [
        SimulatedGpuSpec(
            profile=profiles[min(i, len(profiles) - 1)],
            model=config.simulated_model,
            memory_bytes=config.simulated_memory_bytes,
        )
        for i in range(count)
    ]
    return SimulatedGpuSource(specs, seed=config.simulated_seed)


def scenario_source(config: ExporterConfig, scenario: Scenario) -> ScenarioGpuSource:
    """Simulated GPUs whose pods and load follow an HPA-lab scenario."""
    control = config.scenario_control_file
    node = ScenarioNode(
        scenario,
        deployment=config.scenario_deployment.pod,
        gpus=config.simulated_gpus,
        speed=config.scenario_speed,
        control=ControlFile(control) if control is not None else None,
    )
    return ScenarioGpuSource(
        node,
        model=config.simulated_model,
        memory_bytes=config.simulated_memory_bytes,
        seed=config.simulated_seed,
    )


def open_gpu_source(config: ExporterConfig) -> GpuSource:
    """Open the configured source; ``auto`` falls back to no GPUs, with one clear log line.

    A node without NVML at all gets no GPUs (``auto``) or a start error (``nvml``); NVML that is there
    but does not start yet (driver loading) is retried with backoff while the exporter serves.
    """
    if config.scenario is not None:
        return scenario_source(config, config.scenario)
    if config.gpu_source == "simulated":
        return simulated_source(config)
    if config.gpu_source == "none":
        return NoGpuSource()
    from exporter.gpu.nvml import NvmlGpuSource, NvmlMissing, NvmlUnavailable  # noqa: PLC0415 - pynvml is optional

    def open_nvml() -> GpuSource:
        return NvmlGpuSource.open(energy_ttl_seconds=config.nvml_energy_ttl_seconds)

    try:
        return open_nvml()
    except NvmlMissing as exc:
        if config.gpu_source == "nvml":
            raise GpuSourceError(f"--gpu-source=nvml but NVML is unavailable: {exc}") from exc
        log.warning(
            "NVML unavailable; exporting no GPU series (use --gpu-source=simulated for a demo)",
            extra={"reason": str(exc)},
        )
        return NoGpuSource()
    except NvmlUnavailable as exc:
        log.warning(
            "NVML did not start; serving without GPU series (kgm_nvml_up 0) and retrying",
            extra={"reason": str(exc)},
        )
        return RetryingGpuSource("nvml", open_nvml, retry_on=NvmlUnavailable, first_error=str(exc))

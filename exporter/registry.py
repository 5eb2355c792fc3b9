"""The exporter's registry: every collector guarded, then the self collector reporting on them."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from exporter.collectors.errors import ErrorCounts
from exporter.collectors.gpu import GpuCollector, ReadingsView
from exporter.collectors.guard import Collector, CollectorRuns, GuardedCollector
from exporter.collectors.self_metrics import SelfCollector
from exporter.gpu.source import GpuSource
from exporter.pods.model import HolderSource


@dataclass(frozen=True)
class Telemetry:
    """The exporter's own bookkeeping, shared by the collectors that feed it and the one reporting it."""

    runs: CollectorRuns = field(default_factory=CollectorRuns)
    collector_errors: ErrorCounts = field(default_factory=ErrorCounts)
    field_errors: ErrorCounts = field(default_factory=ErrorCounts)


def build_registry(
    *,
    source: GpuSource,
    holders: HolderSource,
    extra: list[tuple[str, Collector]],
    telemetry: Telemetry | None = None,
    node: str = "",
    views: tuple[ReadingsView, ...] = (),
) -> CollectorRegistry:
    """One registry: the GPU collector and ``extra`` collectors, each guarded, then the self collector."""
    telemetry = telemetry or Telemetry()
    registry = CollectorRegistry(auto_describe=False)
    gpu = GpuCollector(
        source,
        collector_errors=telemetry.collector_errors,
        field_errors=telemetry.field_errors,
        holders=holders,
        node=node,
        views=views,
    )
    for name, collector in [("gpu", gpu), *extra]:
        registry.register(GuardedCollector(name, collector, telemetry.runs, telemetry.collector_errors))
    registry.register(
        SelfCollector(
            runs=telemetry.runs,
            collector_errors=telemetry.collector_errors,
            field_errors=telemetry.field_errors,
            gpu_source_name=source.name,
            nvml_up=lambda: source.name == "nvml" and source.up,
            pod_resources_up=lambda: holders.up,
        )
    )
    return registry

"""The exporter's registry: every collector guarded, then the self collector reporting on them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from exporter.collectors.errors import ErrorCounts
from exporter.collectors.gpu import GpuCollector
from exporter.collectors.guard import Collector, CollectorRuns, GuardedCollector
from exporter.collectors.self_metrics import SelfCollector
from exporter.gpu.source import GpuSource
from exporter.pods.model import HolderSource


def build_registry(
    *,
    source: GpuSource,
    holders: HolderSource,
    extra: list[tuple[str, Collector]],
    node: str = "",
) -> CollectorRegistry:
    """One registry: every collector guarded, then the self collector reporting on them."""
    runs = CollectorRuns()
    collector_errors = ErrorCounts()
    field_errors = ErrorCounts()
    registry = CollectorRegistry(auto_describe=False)
    named: list[tuple[str, Collector]] = [
        (
            "gpu",
            GpuCollector(
                source,
                collector_errors=collector_errors,
                field_errors=field_errors,
                holders=holders,
                node=node,
            ),
        ),
        *extra,
    ]
    for name, collector in named:
        registry.register(GuardedCollector(name, collector, runs, collector_errors))
    registry.register(
        SelfCollector(
            runs=runs,
            collector_errors=collector_errors,
            field_errors=field_errors,
            gpu_source_name=source.name,
            nvml_up=lambda: source.name == "nvml" and source.up,
            pod_resources_up=lambda: holders.up,
        )
    )
    return registry

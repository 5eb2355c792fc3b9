"""The exporter's own health: collector timings and errors, source state, build facts."""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric

from exporter import __version__
from exporter.collectors.errors import ErrorCounts
from exporter.collectors.guard import CollectorRuns


class SelfCollector:
    """Yields ``kgm_*`` series; registered last so it reports the collectors of the same scrape."""

    def __init__(
        self,
        *,
        runs: CollectorRuns,
        collector_errors: ErrorCounts,
        field_errors: ErrorCounts,
        gpu_source_name: str,
        nvml_up: Callable[[], bool],
        pod_resources_up: Callable[[], bool],
    ) -> None:
        self._runs = runs
        self._collector_errors = collector_errors
        self._field_errors = field_errors
        self._gpu_source_name = gpu_source_name
        self._nvml_up = nvml_up
        self._pod_resources_up = pod_resources_up

    def collect(self) -> Iterator[Metric]:
        runs = self._runs.snapshot()
        duration = GaugeMetricFamily(
            "kgm_exporter_scrape_duration_seconds",
            "Time each collector took in the latest scrape.",
            labels=["collector"],
        )
        success = GaugeMetricFamily(
            "kgm_exporter_scrape_collector_success",
            "1 if the collector succeeded in the latest scrape, else 0.",
            labels=["collector"],
        )
        for name, run in sorted(runs.items()):
            duration.add_metric([name], run.duration_seconds)
            success.add_metric([name], 1.0 if run.success else 0.0)
        yield duration
        yield success

        errors = CounterMetricFamily(
            "kgm_exporter_collector_errors",
            "Errors by collector: whole-collector failures plus single fields or devices that failed.",
            labels=["collector"],
        )
        counts = self._collector_errors.snapshot()
        for name in sorted(set(runs) | {key[0] for key in counts}):
            errors.add_metric([name], counts.get((name,), 0))
        yield errors

        field_errors = CounterMetricFamily(
            "kgm_gpu_field_errors",
            "GPU fields that could not be read, by field and reason.",
            labels=["field", "reason"],
        )
        for (field, reason), count in sorted(self._field_errors.snapshot().items()):
            field_errors.add_metric([field, reason], count)
        yield field_errors

        yield GaugeMetricFamily(
            "kgm_nvml_up",
            "1 if NVML is initialised and answering, else 0.",
            value=1.0 if self._nvml_up() else 0.0,
        )
        yield GaugeMetricFamily(
            "kgm_pod_resources_up",
            "1 if the kubelet pod-resources API answered the latest call, else 0.",
            value=1.0 if self._pod_resources_up() else 0.0,
        )
        info = InfoMetricFamily(
            "kgm_build",
            "Exporter build and runtime facts.",
            labels=["version", "python_version", "gpu_source"],
        )
        info.add_metric([__version__, platform.python_version(), self._gpu_source_name], {})
        yield info

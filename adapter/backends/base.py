"""The backend seam: the API layer asks for values of named objects; backends know the numbers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

from adapter.selectors import Selector


class BackendUnavailable(Exception):
    """The backend cannot answer now (scrape targets down, Prometheus slow); the API answers 503."""


class UnknownMetric(LookupError):
    """No such metric for this resource; the API answers 404."""


# Tuples rather than dataclasses for the two types built, hashed and sorted once per object of every
# answer: their hashing, equality and order run in C, several times faster at thousands of pods.
class ObjectKey(NamedTuple):
    """A Kubernetes object the API asks about; ``namespace`` is empty for nodes and namespaces."""

    namespace: str
    name: str


class MetricSample(NamedTuple):
    """One value for one object: ``timestamp`` is unix seconds, ``window_seconds`` the averaging window."""

    value: float
    timestamp: float
    window_seconds: int


@dataclass(frozen=True)
class MetricDescriptor:
    """A metric the backend can serve and the resources (``pods``, ``nodes``, ...) it serves it for."""

    name: str
    resources: frozenset[str]


class MetricsBackend(Protocol):
    """Answers "metric M for these objects"; knows nothing about HTTP, discovery or auth."""

    @property
    def ready(self) -> bool:
        """Whether the backend has data to answer with (``/readyz``)."""
        ...

    async def start(self) -> None:
        """Begin background work (scrape loops, discovery refresh)."""
        ...

    async def close(self) -> None:
        """Stop background work and release connections."""
        ...

    def metrics(self) -> Sequence[MetricDescriptor]:
        """The metrics served now, for discovery."""
        ...

    async def values(
        self,
        metric: str,
        resource: str,
        objects: Sequence[ObjectKey],
        metric_selector: Selector | None = None,
    ) -> Mapping[ObjectKey, MetricSample]:
        """Values of ``metric`` for ``objects`` of ``resource``; objects with no fresh data are absent.

        Raises ``UnknownMetric`` or ``BackendUnavailable``.
        """
        ...

    async def aggregate(
        self,
        metric: str,
        pods: Sequence[ObjectKey],
        metric_selector: Selector | None = None,
    ) -> MetricSample | None:
        """One value of ``metric`` over a group of pods (a workload's), aggregated as the metric defines."""
        ...


@dataclass(frozen=True)
class ExternalSample:
    """One value of an external metric: the labels of the series it came from, as ``metricLabels``."""

    labels: Mapping[str, str]
    value: float
    timestamp: float
    window_seconds: int | None


@runtime_checkable
class ExternalMetricsBackend(Protocol):
    """Answers ``external.metrics.k8s.io`` reads: a metric's values in a namespace, by label selector."""

    def external_metrics(self) -> Sequence[str]:
        """The external metrics served now, for discovery."""
        ...

    async def external_values(
        self, metric: str, namespace: str, selector: Selector | None = None
    ) -> Sequence[ExternalSample]:
        """Every value of ``metric`` for ``namespace`` whose labels match ``selector``.

        Raises ``UnknownMetric`` or ``BackendUnavailable``.
        """
        ...

"""In-memory stand-ins for the adapter's backend and object resolver, and a launcher that runs the real
adapter command line with them: ``python -m tests.fakes.adapter_doubles [kube-gpu-adapter flags]``.

The launcher is how integration tests reach every path shape (workloads, labels, several namespaces)
without a cluster: everything but the numbers and the object lists is the real adapter.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from adapter.backends.base import BackendUnavailable, MetricDescriptor, MetricSample, ObjectKey, UnknownMetric
from adapter.cli import main as adapter_main
from adapter.config import AdapterConfig
from adapter.objects.base import ObjectNotFound
from adapter.selectors import Selector

GPU_METRICS = ("gpu_utilization", "gpu_memory_used_bytes", "gpu_memory_utilization")
ALL_RESOURCES = frozenset({"pods", "nodes", "namespaces"})
# A fixed instant keeps expected documents literal: 2026-01-02T03:04:05Z.
NOW = 1767323045.0
WINDOW = 60


@dataclass
class Lifecycle:
    """Readiness a test sets, and whether the adapter started and closed the double."""

    is_ready: bool = True
    started: bool = False
    closed: bool = False

    @property
    def ready(self) -> bool:
        return self.is_ready

    async def start(self) -> None:
        self.started = True

    async def close(self) -> None:
        self.closed = True


@dataclass
class FakeBackend(Lifecycle):
    """Values keyed by (metric, resource, object); ``unavailable`` makes every read raise."""

    samples: dict[tuple[str, str, ObjectKey], float] = field(default_factory=dict)
    descriptors: tuple[MetricDescriptor, ...] = tuple(MetricDescriptor(m, ALL_RESOURCES) for m in GPU_METRICS)
    unavailable: str = ""
    calls: list[tuple[str, str, tuple[ObjectKey, ...], str]] = field(default_factory=list)

    def metrics(self) -> Sequence[MetricDescriptor]:
        return self.descriptors

    def _sample(self, value: float) -> MetricSample:
        return MetricSample(value=value, timestamp=NOW, window_seconds=WINDOW)

    def _check(self, metric: str) -> None:
        if self.unavailable:
            raise BackendUnavailable(self.unavailable)
        if metric not in {d.name for d in self.descriptors}:
            raise UnknownMetric(metric)

    async def values(
        self,
        metric: str,
        resource: str,
        objects: Sequence[ObjectKey],
        metric_selector: Selector | None = None,
    ) -> Mapping[ObjectKey, MetricSample]:
        self._check(metric)
        self.calls.append((metric, resource, tuple(objects), str(metric_selector or "")))
        return {
            key: self._sample(self.samples[(metric, resource, key)])
            for key in objects
            if (metric, resource, key) in self.samples
        }

    async def aggregate(
        self,
        metric: str,
        pods: Sequence[ObjectKey],
        metric_selector: Selector | None = None,
    ) -> MetricSample | None:
        self._check(metric)
        self.calls.append((metric, "aggregate", tuple(pods), str(metric_selector or "")))
        found = [self.samples[(metric, "pods", pod)] for pod in pods if (metric, "pods", pod) in self.samples]
        if not found:
            return None
        total = sum(found) if metric.endswith("_bytes") else statistics.fmean(found)
        return self._sample(total)


@dataclass
class FakeResolver(Lifecycle):
    """Objects with labels per resource, and the pods of each workload."""

    objects: dict[str, dict[ObjectKey, dict[str, str]]] = field(default_factory=dict)
    workloads: dict[tuple[str, str, str], tuple[ObjectKey, ...]] = field(default_factory=dict)

    async def select(self, resource: str, namespace: str, selector: Selector) -> Sequence[ObjectKey]:
        return sorted(
            key
            for key, labels in self.objects.get(resource, {}).items()
            if key.namespace == namespace and selector.matches(labels)
        )

    async def get(self, resource: str, namespace: str, name: str) -> ObjectKey:
        key = ObjectKey(namespace, name)
        if key not in self.objects.get(resource, {}):
            raise ObjectNotFound(f"{resource} {namespace}/{name}")
        return key

    async def workload_pods(self, resource: str, namespace: str, name: str) -> Sequence[ObjectKey]:
        pods = self.workloads.get((resource, namespace, name))
        if pods is None:
            raise ObjectNotFound(f"{resource} {namespace}/{name}")
        return pods


def demo_cluster() -> tuple[FakeBackend, FakeResolver]:
    """Two namespaces, two nodes, a deployment of two pods, a job and a pod without data."""
    web0, web1 = ObjectKey("default", "web-0"), ObjectKey("default", "web-1")
    trainer = ObjectKey("ml", "trainer-0")
    idle = ObjectKey("default", "idle")
    node_a, node_b = ObjectKey("", "node-a"), ObjectKey("", "node-b")
    ns_default, ns_ml = ObjectKey("", "default"), ObjectKey("", "ml")
    resolver = FakeResolver(
        objects={
            "pods": {
                web0: {"app": "web", "tier": "front"},
                web1: {"app": "web", "tier": "back"},
                idle: {"app": "idle"},
                trainer: {"app": "trainer"},
            },
            "nodes": {node_a: {"gpu": "h100"}, node_b: {"gpu": "a100"}},
            "namespaces": {ns_default: {"team": "web"}, ns_ml: {"team": "ml"}},
            "deployments": {ObjectKey("default", "web"): {"app": "web"}},
            "jobs": {ObjectKey("ml", "trainer"): {"app": "trainer"}},
        },
        workloads={
            ("deployments", "default", "web"): (web0, web1),
            ("jobs", "ml", "trainer"): (trainer,),
        },
    )
    samples: dict[tuple[str, str, ObjectKey], float] = {}
    for key, utilization, used in ((web0, 40.0, 2e9), (web1, 60.5, 3.5e9), (trainer, 97.25, 70e9)):
        samples[("gpu_utilization", "pods", key)] = utilization
        samples[("gpu_memory_used_bytes", "pods", key)] = used
        samples[("gpu_memory_utilization", "pods", key)] = used / 80e9 * 100
    for key, utilization in ((node_a, 50.25), (node_b, 97.25)):
        samples[("gpu_utilization", "nodes", key)] = utilization
    for key, utilization in ((ns_default, 50.25), (ns_ml, 97.25)):
        samples[("gpu_utilization", "namespaces", key)] = utilization
    return FakeBackend(samples=samples), resolver


def _demo_components(config: AdapterConfig, api_client: object) -> tuple[FakeBackend, FakeResolver]:
    return demo_cluster()


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kube-gpu-adapter`` with the demo cluster in place of a backend and a resolver."""
    return adapter_main(argv, components=_demo_components)


if __name__ == "__main__":
    sys.exit(main())

"""The ``prometheus`` backend: answers metric reads with PromQL built from rules (``adapter/rules.py``).

Discovery lists, every ``discovery_interval`` seconds, which rules' ``seriesQuery`` have series in
Prometheus; only those are served (until the first listing succeeds, every rule is, so an outage at
start reads as 503, not as 404). When Prometheus cannot be reached the backend is not ready, reads
answer 503 within the client's timeout, and discovery retries every few seconds until it answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence

from adapter.backends.base import (
    BackendUnavailable,
    ExternalSample,
    MetricDescriptor,
    MetricSample,
    ObjectKey,
    UnknownMetric,
)
from adapter.backends.prometheus_api import PrometheusClient, QueryRejected, VectorSample
from adapter.backends.promql import Matcher, NoMatchError, one_of, render_matchers, selector_matchers
from adapter.objects.base import WORKLOAD_RESOURCES
from adapter.rules import ExternalRule, MetricRule, RuleSet, render
from adapter.selectors import Selector

log = logging.getLogger(__name__)


class PrometheusBackend:
    """``MetricsBackend`` and ``ExternalMetricsBackend`` over Prometheus."""

    def __init__(
        self,
        rules: RuleSet,
        client: PrometheusClient,
        *,
        discovery_interval: float = 60.0,
        retry_interval: float = 2.0,
        discovery_lookback: float = 600.0,
        track_objects: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._rules = rules
        self._client = client
        self._discovery_interval = discovery_interval
        self._retry_interval = retry_interval
        self._lookback = discovery_lookback
        self._track_objects = track_objects
        self._clock = clock
        self._available: frozenset[str] | None = None
        self._healthy = False
        self._error = "Prometheus has not been asked yet"
        self._task: asyncio.Task[None] | None = None
        self._seen: dict[str, frozenset[ObjectKey]] = {}
        self._wake = asyncio.Event()

    @property
    def ready(self) -> bool:
        """Prometheus answered the latest discovery (or query) and series were listed once."""
        return self._healthy and self._available is not None

    @property
    def error(self) -> str:
        """Why the backend is not ready; empty when it is."""
        return "" if self.ready else self._error

    async def start(self) -> None:
        await self._client.start()
        if self._task is None:
            self._task = asyncio.create_task(self._discover_forever(), name="prometheus-discovery")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._client.close()

    def metrics(self) -> Sequence[MetricDescriptor]:
        descriptors = []
        for rule in self._rules.metrics:
            if self._served(rule.name):
                workloads = WORKLOAD_RESOURCES if "pods" in rule.queries else frozenset()
                descriptors.append(MetricDescriptor(rule.name, rule.resources | workloads))
        return descriptors

    def external_metrics(self) -> Sequence[str]:
        return [rule.name for rule in self._rules.external if self._served(rule.name)]

    def seen_objects(self, resource: str) -> Collection[ObjectKey]:
        """Objects a served rule had a value for at the latest discovery, when ``track_objects`` is on.

        Without a Kubernetes API the static resolver takes its pods, nodes and namespaces from here.
        """
        return self._seen.get(resource, frozenset())

    async def values(
        self,
        metric: str,
        resource: str,
        objects: Sequence[ObjectKey],
        metric_selector: Selector | None = None,
    ) -> Mapping[ObjectKey, MetricSample]:
        rule = self._rules.metric(metric)
        if rule is None or not self._served(rule.name) or resource not in rule.queries:
            raise UnknownMetric(f"metric {metric!r} is not served for {resource}")
        if not objects:
            return {}
        try:
            matchers = object_matchers(rule, resource, objects) + _selector_matchers(metric_selector)
        except NoMatchError:
            return {}
        samples = await self._query(
            rule.name, render(rule.queries[resource], render_matchers(matchers), rule.window_seconds)
        )
        wanted = set(objects)
        key_of, window = object_key(rule, resource), rule.window_seconds
        result: dict[ObjectKey, MetricSample] = {}
        for labels, value, timestamp in samples:
            key = key_of(labels)
            if key in wanted:
                result[key] = MetricSample(value, timestamp, window)
        return result

    async def aggregate(
        self,
        metric: str,
        pods: Sequence[ObjectKey],
        metric_selector: Selector | None = None,
    ) -> MetricSample | None:
        rule = self._rules.metric(metric)
        if rule is None or "pods" not in rule.queries:
            raise UnknownMetric(f"metric {metric!r} is not served for pods")
        samples = list((await self.values(metric, "pods", pods, metric_selector)).values())
        if not samples:
            return None
        total = sum(s.value for s in samples)
        value = total if rule.aggregate == "sum" else total / len(samples)
        return MetricSample(value, max(s.timestamp for s in samples), rule.window_seconds)

    async def external_values(
        self, metric: str, namespace: str, selector: Selector | None = None
    ) -> Sequence[ExternalSample]:
        rule = self._rules.external_metric(metric)
        if rule is None or not self._served(rule.name):
            raise UnknownMetric(f"external metric {metric!r} is not served")
        try:
            scope = [one_of(rule.namespace_label, [namespace])] if rule.namespaced else []
            matchers = scope + _selector_matchers(selector)
        except NoMatchError:
            return []
        samples = await self._query(
            rule.name, render(rule.query, render_matchers(matchers), rule.window_seconds)
        )
        return [
            ExternalSample(
                {k: v for k, v in s.labels.items() if k != "__name__"},
                s.value,
                s.timestamp,
                rule.window_seconds,
            )
            for s in samples
        ]

    async def discover(self) -> None:
        """List which rules' series exist now; on failure keep the last listing and mark not ready."""
        since = self._clock() - self._lookback
        rules: list[MetricRule | ExternalRule] = [*self._rules.metrics, *self._rules.external]
        selectors = sorted({rule.series for rule in rules if rule.series})
        try:
            present = {s for s in selectors if await self._client.has_series(s, since=since, probe=True)}
        except BackendUnavailable as exc:
            self._mark_down(str(exc))
            return
        names = frozenset(rule.name for rule in rules if not rule.series or rule.series in present)
        if self._available != names:
            log.info("prometheus metrics discovered", extra={"served": sorted(names)})
        self._available = names
        self._mark_up()
        if self._track_objects:
            await self._list_objects()

    async def _list_objects(self) -> None:
        seen: dict[str, set[ObjectKey]] = defaultdict(set)
        for rule in self._rules.metrics:
            if not self._served(rule.name):
                continue
            for resource, template in rule.queries.items():
                try:
                    samples = await self._query(rule.name, render(template, "", rule.window_seconds))
                except BackendUnavailable:
                    return
                key_of = object_key(rule, resource)
                keys = (key_of(s.labels) for s in samples)
                seen[resource].update(key for key in keys if key.name)
        self._seen = {resource: frozenset(keys) for resource, keys in seen.items()}

    def _served(self, name: str) -> bool:
        return self._available is None or name in self._available

    async def _query(self, rule: str, promql: str) -> list[VectorSample]:
        try:
            samples = await self._client.query(promql)
        except QueryRejected as exc:
            log.error(
                "prometheus rejected a rule's query", extra={"rule": rule, "query": promql, "error": str(exc)}
            )
            raise BackendUnavailable(f"rule {rule}: {exc}") from None
        except BackendUnavailable as exc:
            self._mark_down(str(exc))
            raise
        self._mark_up()
        return samples

    def _mark_down(self, error: str) -> None:
        if self._healthy or self._error != error:
            log.warning("prometheus unavailable", extra={"url": self._client.url, "error": error})
        self._healthy, self._error = False, error
        # Discovery doubles as the health probe: retry soon rather than after a full interval.
        self._wake.set()

    def _mark_up(self) -> None:
        if not self._healthy:
            log.info("prometheus answering", extra={"url": self._client.url})
        self._healthy, self._error = True, ""

    async def _discover_forever(self) -> None:
        while True:
            try:
                await self.discover()
            except Exception:  # the loop must outlive anything one round throws
                log.exception("prometheus discovery failed")
            if self._healthy:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._discovery_interval)
            else:
                await asyncio.sleep(self._retry_interval)


def _selector_matchers(selector: Selector | None) -> list[Matcher]:
    try:
        return selector_matchers(selector)
    except ValueError as exc:
        raise UnknownMetric(f"metric label selector not supported: {exc}") from None


def object_matchers(rule: MetricRule, resource: str, objects: Sequence[ObjectKey]) -> list[Matcher]:
    """Matchers selecting ``objects`` by the rule's object labels (a superset when namespaces differ)."""
    labels = rule.labels
    if resource == "pods":
        by_namespace: dict[str, list[str]] = defaultdict(list)
        for key in objects:
            by_namespace[key.namespace].append(key.name)
        return [
            one_of(labels.namespace, by_namespace),
            one_of(labels.pod, [name for names in by_namespace.values() for name in names]),
        ]
    label = labels.node if resource == "nodes" else labels.namespace
    return [one_of(label, [key.name for key in objects])]


def object_key(rule: MetricRule, resource: str) -> Callable[[Mapping[str, str]], ObjectKey]:
    """How to tell the object a result series of ``rule`` for ``resource`` is about, from its labels."""
    names = rule.labels
    if resource == "pods":
        namespace, pod = names.namespace, names.pod
        return lambda labels: ObjectKey(labels.get(namespace, ""), labels.get(pod, ""))
    label = names.node if resource == "nodes" else names.namespace
    return lambda labels: ObjectKey("", labels.get(label, ""))

"""Metric reads: path shapes as custom-metrics-apiserver routes them, answered from resolver and backend."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from adapter.api.documents import MetricValue
from adapter.api.resources import NAMESPACE, ResourceKind, lookup_resource, serves
from adapter.api.status import StatusError, bad_request, not_found, unavailable
from adapter.backends.base import BackendUnavailable, MetricsBackend, ObjectKey, UnknownMetric
from adapter.objects.base import ObjectNotFound, ObjectResolver
from adapter.selectors import EVERYTHING, Selector, SelectorError, parse_selector

WILDCARD = "*"


@dataclass(frozen=True)
class MetricRequest:
    """What a metric path asks for; ``name`` is ``*`` for every object matching ``label_selector``."""

    kind: ResourceKind
    namespace: str
    name: str
    metric: str
    label_selector: Selector = EVERYTHING
    metric_selector: Selector | None = None


def parse_path(parts: Sequence[str]) -> tuple[ResourceKind, str, str, str]:
    """Resource, namespace, object name and metric from the path below ``/apis/<group>/<version>/``.

    Shapes: ``namespaces/{ns}/{resource}/{name}/{metric}``, ``{resource}/{name}/{metric}`` for root
    resources, and ``namespaces/{ns}/metrics/{metric}``, upstream's path for a namespace's own metric.
    """
    if len(parts) == 4 and parts[0] == "namespaces" and parts[2] == "metrics":
        resource, namespace, name, metric = NAMESPACE.qualified, "", parts[1], parts[3]
    elif len(parts) == 5 and parts[0] == "namespaces":
        namespace, resource, name, metric = parts[1], parts[2], parts[3], parts[4]
    elif len(parts) == 3:
        resource, namespace, name, metric = parts[0], "", parts[1], parts[2]
    else:
        raise not_found()
    if not all((resource, name, metric)) or (len(parts) == 5 and not namespace):
        raise bad_request("invalid request path: empty path segment")
    kind = lookup_resource(resource)
    if kind is None:
        raise not_found(f"the server could not find the metric {metric} for {resource}")
    if kind.namespaced and not namespace:
        raise bad_request(
            f"{kind.qualified} are namespaced: ask /namespaces/{{namespace}}/{kind.qualified}/..."
        )
    if not kind.namespaced and namespace:
        raise bad_request(
            f"{kind.qualified} are not namespaced: ask /{kind.qualified}/... without a namespace"
        )
    return kind, namespace, name, metric


def parse_query_selector(parameter: str, text: str | None) -> Selector | None:
    """A selector from a query parameter; a bad one is a 400 with the parser's message."""
    if text is None:
        return None
    try:
        return parse_selector(text)
    except SelectorError as exc:
        raise bad_request(f"{parameter}: {exc}") from None


async def read_metric(
    request: MetricRequest, backend: MetricsBackend, resolver: ObjectResolver
) -> list[MetricValue]:
    """The values a metric request asks for, in object order; raises ``StatusError``."""
    kind, metric = request.kind, request.metric
    if not any(d.name == metric and serves(kind, d.resources) for d in backend.metrics()):
        raise not_found(f"the server could not find the metric {metric} for {kind.qualified}")
    try:
        keys = await _objects(request, resolver)
        if kind.workload:
            values = await _workload_values(request, keys, backend, resolver)
        else:
            samples = await backend.values(metric, kind.resource, keys, request.metric_selector)
            values = [MetricValue(kind, key, metric, samples[key]) for key in keys if key in samples]
    except ObjectNotFound:
        raise _object_not_found(kind, request.name) from None
    except UnknownMetric:
        raise not_found(f"the server could not find the metric {metric} for {kind.qualified}") from None
    except BackendUnavailable as exc:
        raise unavailable(f"unable to fetch metric {metric} for {kind.qualified}: {exc}") from None
    if request.name != WILDCARD and not values:
        raise not_found(f"the server could not find the metric {metric} for {kind.qualified} {request.name}")
    return values


def _object_not_found(kind: ResourceKind, name: str) -> StatusError:
    """Upstream's ``NewNotFound``: message ``pods "x" not found`` and details naming the object."""
    details = {"name": name, **({"group": kind.group} if kind.group else {}), "kind": kind.resource}
    return StatusError(404, f'{kind.qualified} "{name}" not found', details)


async def _objects(request: MetricRequest, resolver: ObjectResolver) -> list[ObjectKey]:
    kind = request.kind
    if request.name == WILDCARD:
        return sorted(await resolver.select(kind.resource, request.namespace, request.label_selector))
    return [await resolver.get(kind.resource, request.namespace, request.name)]


async def _workload_values(
    request: MetricRequest, keys: Sequence[ObjectKey], backend: MetricsBackend, resolver: ObjectResolver
) -> list[MetricValue]:
    values = []
    for key in keys:
        try:
            pods = await resolver.workload_pods(request.kind.resource, key.namespace, key.name)
        except ObjectNotFound:
            if request.name == WILDCARD:
                continue  # deleted between the list and this read
            raise
        sample = await backend.aggregate(request.metric, pods, request.metric_selector)
        if sample is not None:
            values.append(MetricValue(request.kind, key, request.metric, sample))
    return values

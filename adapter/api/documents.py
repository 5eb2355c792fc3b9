"""``MetricValueList`` documents in each version's JSON shape (k8s.io/metrics custom_metrics types)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapter.api.resources import GROUP, ResourceKind
from adapter.api.status import bad_request
from adapter.backends.base import MetricSample, ObjectKey
from adapter.quantity import format_quantity
from adapter.selectors import Operator, Selector

_EXPRESSION_OPERATORS = {
    Operator.IN: "In",
    Operator.NOT_IN: "NotIn",
    Operator.EXISTS: "Exists",
    Operator.DOES_NOT_EXIST: "DoesNotExist",
    # metav1.ParseToLabelSelector rejects "!="; "NotIn" with the one value means the same and keeps it shown.
    Operator.NOT_EQUALS: "NotIn",
}


@dataclass(frozen=True)
class MetricValue:
    """One answered object: what it is, which metric, and the sample."""

    kind: ResourceKind
    key: ObjectKey
    metric: str
    sample: MetricSample


def label_selector(selector: Selector | None) -> dict[str, Any] | None:
    """The ``metav1.LabelSelector`` for a metric selector, as ``metav1.ParseToLabelSelector`` builds it."""
    if selector is None or selector.empty:
        return None
    match_labels: dict[str, str] = {}
    expressions: list[dict[str, Any]] = []
    for requirement in selector.requirements:
        if requirement.operator in (Operator.EQUALS, Operator.DOUBLE_EQUALS):
            match_labels[requirement.key] = requirement.values[0]
            continue
        operator = _EXPRESSION_OPERATORS.get(requirement.operator)
        if operator is None:
            raise bad_request(f"{requirement.operator.value!r} isn't supported in metric label selectors")
        expression: dict[str, Any] = {"key": requirement.key, "operator": operator}
        if requirement.values:
            expression["values"] = list(requirement.values)
        expressions.append(expression)
    document: dict[str, Any] = {}
    if match_labels:
        document["matchLabels"] = dict(sorted(match_labels.items()))
    if expressions:
        document["matchExpressions"] = expressions
    return document


def rfc3339(timestamp: float) -> str:
    """``metav1.Time`` JSON: RFC 3339 in UTC at whole seconds, ``Z`` suffix."""
    return _rfc3339_seconds(int(timestamp))


# The items of one answer share the few times their exporters were scraped; formatting the time of
# each item anew took a third of building a thousand-pod answer.
@functools.lru_cache(maxsize=1024)
def _rfc3339_seconds(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def described_object(kind: ResourceKind, key: ObjectKey) -> dict[str, str]:
    """``v1.ObjectReference`` keys in Go's order; empty fields are omitted as ``omitempty`` does."""
    reference = {"kind": kind.kind}
    if key.namespace:
        reference["namespace"] = key.namespace
    reference["name"] = key.name
    reference["apiVersion"] = kind.api_version
    return reference


def _item(version: str, value: MetricValue, selector: dict[str, Any] | None) -> dict[str, Any]:
    sample = value.sample
    item: dict[str, Any] = {"describedObject": described_object(value.kind, value.key)}
    if version == "v1beta1":
        item["metricName"] = value.metric
        item["timestamp"] = rfc3339(sample.timestamp)
        item["window"] = sample.window_seconds
        item["value"] = format_quantity(sample.value)
        item["selector"] = selector
    else:
        item["metric"] = {"name": value.metric, "selector": selector}
        item["timestamp"] = rfc3339(sample.timestamp)
        item["windowSeconds"] = sample.window_seconds
        item["value"] = format_quantity(sample.value)
    return item


def metric_value_list(
    version: str, values: Sequence[MetricValue], metric_selector: Selector | None
) -> dict[str, Any]:
    """``MetricValueList`` of ``version``: ``metricName``/``window`` in v1beta1, ``metric{}`` in v1beta2."""
    selector = label_selector(metric_selector)
    return {
        "kind": "MetricValueList",
        "apiVersion": f"{GROUP}/{version}",
        "metadata": {},
        "items": [_item(version, value, selector) for value in values],
    }

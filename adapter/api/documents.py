"""``MetricValueList`` documents in each version's JSON shape (k8s.io/metrics custom_metrics types)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any, NamedTuple

from adapter.api.resources import GROUP, ResourceKind
from adapter.api.status import bad_request, compact_json, go_escaped
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


class MetricValue(NamedTuple):
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


def _reference_parts(kind: ResourceKind) -> tuple[str, str]:
    """The JSON around a namespace and name in ``describedObject`` (``v1.ObjectReference``, Go's key
    order); an empty namespace is omitted as ``omitempty`` does."""
    return f'{{"kind":{_string(kind.kind)},', f',"apiVersion":{_string(kind.api_version)}}}'


def _reference(kind_parts: tuple[str, str], key: ObjectKey) -> str:
    namespace = f'"namespace":{_string(key.namespace)},' if key.namespace else ""
    return f'{kind_parts[0]}{namespace}"name":{_string(key.name)}{kind_parts[1]}'


def metric_value_list(version: str, values: Sequence[MetricValue], metric_selector: Selector | None) -> bytes:
    """``MetricValueList`` of ``version`` as JSON (``metricName``/``window`` in v1beta1, ``metric{}``
    in v1beta2).

    Written as text an item at a time rather than built as dicts for ``json.dumps``: an answer holds
    one item per pod, and the dicts cost three times the text. Keys are in the order of the Go types'
    fields, as kube-apiserver would write them.
    """
    selector = compact_json(label_selector(metric_selector))
    items = []
    # An answer is nearly always of one kind and one metric: their JSON is written once.
    last_kind: ResourceKind | None = None
    last_metric: str | None = None
    kind_parts, metric = ("", ""), ""
    for kind, key, metric_name, (value, timestamp, window) in values:
        if kind is not last_kind:
            last_kind, kind_parts = kind, _reference_parts(kind)
        if metric_name != last_metric:
            last_metric, metric = metric_name, _string(metric_name)
        reference = _reference(kind_parts, key)
        time = rfc3339(timestamp)
        quantity = format_quantity(value)
        if version == "v1beta1":
            items.append(
                f'{{"describedObject":{reference},"metricName":{metric},"timestamp":"{time}",'
                f'"window":{window},"value":"{quantity}","selector":{selector}}}'
            )
        else:
            items.append(
                f'{{"describedObject":{reference},"metric":{{"name":{metric},"selector":{selector}}},'
                f'"timestamp":"{time}","windowSeconds":{window},"value":"{quantity}"}}'
            )
    api_version = _string(f"{GROUP}/{version}")
    head = f'{{"kind":"MetricValueList","apiVersion":{api_version},"metadata":{{}},"items":['
    return go_escaped(head + ",".join(items) + "]}")


# The C string encoder json.dumps uses, without the call's setup: once or twice per item.
_string: Callable[[str], str] = encode_basestring

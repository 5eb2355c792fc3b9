"""MetricValueList text: the JSON kube-apiserver's types give, whatever the names and values."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from adapter.api.documents import MetricValue, label_selector, metric_value_list, rfc3339
from adapter.api.resources import ALL_KINDS, GROUP
from adapter.backends.base import MetricSample, ObjectKey
from adapter.quantity import format_quantity
from adapter.selectors import Selector, parse_selector

names = st.text(max_size=12)
values = st.builds(
    lambda kind, namespace, name, metric, value, timestamp, window: MetricValue(
        kind,
        ObjectKey(namespace if kind.namespaced else "", name),
        metric,
        MetricSample(value, timestamp, window),
    ),
    st.sampled_from(ALL_KINDS),
    names,
    names,
    names,
    st.floats(),
    st.floats(min_value=0, max_value=4e9),
    st.integers(min_value=0, max_value=10**6),
)
selectors = st.sampled_from([None, "", "gpu=0", "node in (a,b),!uuid", "gpu!=3,node notin (x.y,z)"])


def expected_item(version: str, value: MetricValue, selector: dict[str, Any] | None) -> dict[str, Any]:
    reference = {"kind": value.kind.kind}
    if value.key.namespace:
        reference["namespace"] = value.key.namespace
    reference |= {"name": value.key.name, "apiVersion": value.kind.api_version}
    timestamp = rfc3339(value.sample.timestamp)
    quantity = format_quantity(value.sample.value)
    if version == "v1beta1":
        return {
            "describedObject": reference,
            "metricName": value.metric,
            "timestamp": timestamp,
            "window": value.sample.window_seconds,
            "value": quantity,
            "selector": selector,
        }
    return {
        "describedObject": reference,
        "metric": {"name": value.metric, "selector": selector},
        "timestamp": timestamp,
        "windowSeconds": value.sample.window_seconds,
        "value": quantity,
    }


@given(st.sampled_from(["v1beta1", "v1beta2"]), st.lists(values, max_size=5), selectors)
def test_items_have_the_go_types_fields_in_their_order(
    version: str, items: list[MetricValue], selector_text: str | None
) -> None:
    selector: Selector | None = None if selector_text is None else parse_selector(selector_text)
    body = metric_value_list(version, items, selector)
    document = json.loads(body)
    shown = label_selector(selector)
    assert list(document) == ["kind", "apiVersion", "metadata", "items"]
    assert document["apiVersion"] == f"{GROUP}/{version}"
    for item, value in zip(document["items"], items, strict=True):
        expected = expected_item(version, value, shown)
        assert item == expected
        assert list(item) == list(expected)
        assert list(item["describedObject"]) == list(expected["describedObject"])
    # Go's encoder escapes these three everywhere; a client comparing bytes sees what it would.
    assert not {b"<", b">", b"&"} & {bytes([c]) for c in body}

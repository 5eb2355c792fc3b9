"""The fast exposition writer (exporter) and reader (adapter) agree with client_python byte for byte."""

from __future__ import annotations

import math
from collections.abc import Iterator

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from adapter.backends.exposition import parse_exposition
from exporter.server import render_families

names = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True).filter(
    lambda n: not n.endswith(("_total", "_created", "_info", "_bucket", "_count", "_sum"))
)
label_names = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
label_values = st.text(st.characters(codec="utf-8"), max_size=12)
values = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-(10**12), 10**12).map(float)


@st.composite
def families(draw: st.DrawFn) -> list[Metric]:
    result: list[Metric] = []
    for name in draw(st.lists(names, min_size=1, max_size=4, unique=True)):
        labels = draw(st.lists(label_names, max_size=3, unique=True))
        kind = draw(st.sampled_from(["gauge", "counter", "info"]))
        family: Metric
        if kind == "gauge":
            family = GaugeMetricFamily(name, draw(st.text(max_size=20)), labels=labels)
        elif kind == "counter":
            family = CounterMetricFamily(name, draw(st.text(max_size=20)), labels=labels)
        else:
            family = InfoMetricFamily(name, draw(st.text(max_size=20)), labels=labels)
        seen: set[tuple[str, ...]] = set()
        for _ in range(draw(st.integers(0, 3))):
            label_set = tuple(draw(label_values) for _ in labels)
            if label_set in seen:
                continue
            seen.add(label_set)
            if kind == "info":
                assert isinstance(family, InfoMetricFamily)
                family.add_metric(list(label_set), {})
            else:
                assert isinstance(family, GaugeMetricFamily | CounterMetricFamily)
                value = draw(values)
                family.add_metric(list(label_set), abs(value) if kind == "counter" else value)
        result.append(family)
    return result


class Fixed:
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


def registry_of(metrics: list[Metric]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed(metrics))
    return registry


@settings(max_examples=300)
@given(families())
def test_text_writer_matches_client_python(metrics: list[Metric]) -> None:
    ours = render_families(metrics, openmetrics_format=False)
    if ours is not None:
        assert ours == generate_latest(registry_of(metrics))


@settings(max_examples=300)
@given(families())
def test_openmetrics_writer_matches_client_python(metrics: list[Metric]) -> None:
    ours = render_families(metrics, openmetrics_format=True)
    if ours is not None:
        assert ours == generate_openmetrics(registry_of(metrics))  # type: ignore[no-untyped-call]


def reference_samples(text: str, wanted: set[str]) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
    return sorted(
        (s.name, tuple(sorted(s.labels.items())), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name in wanted and not math.isnan(s.value)
    )


@settings(max_examples=300)
@given(families(), st.data())
def test_reader_matches_client_python(metrics: list[Metric], data: st.DataObject) -> None:
    text = generate_latest(registry_of(metrics)).decode()
    sample_names = sorted({s.name for family in metrics for s in family.samples} | {"absent_series"})
    wanted = set(data.draw(st.lists(st.sampled_from(sample_names), unique=True)))
    ours = sorted((s.name, s.labels, s.value) for s in parse_exposition(text, wanted))
    assert ours == reference_samples(text, wanted)

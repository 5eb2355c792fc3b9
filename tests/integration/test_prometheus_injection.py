"""No name or selector value can change what a query matches, against a real Prometheus.

Prometheus scrapes a target whose GPU series carry hostile label values (quotes, backslashes, ``}``,
``or``, newlines, regex syntax, unicode). Hypothesis asks the prometheus backend for generated
objects and selectors mixing those values, near misses and arbitrary text; the series matched must
be exactly the ones the request means.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric

from adapter.backends.base import ObjectKey
from adapter.backends.prometheus import PrometheusBackend
from adapter.backends.prometheus_api import PrometheusClient, PrometheusOptions
from adapter.rules import ExternalRule, RuleSet, builtin
from adapter.selectors import Operator, Requirement, Selector
from tests.integration.prometheus import RunningPrometheus, running_prometheus

HOSTILE = (
    "ml",
    'q"uote',
    "back\\slash",
    '\\"',
    "brace}",
    '"} or vector(1) or {a="',
    "a or b",
    "or",
    "new\nline",
    "tab\tstop",
    "ünïcødé",
    "😀",
    ".*",
    "a|b",
    "(?i)ML",
    "$1",
    "x{2}",
    "\u2028",
)
# (namespace, pod, container, node, utilization): every hostile value as namespace, pod and node.
SERIES = [
    (
        value,
        HOSTILE[(i + 1) % len(HOSTILE)],
        HOSTILE[(i + 2) % len(HOSTILE)],
        HOSTILE[(i + 3) % len(HOSTILE)],
        (i + 1) / 100,
    )
    for i, value in enumerate(HOSTILE)
] + [("ml", "train-0", "main", "node-a", 0.5)]
PODS = {ObjectKey(ns, pod): util for ns, pod, _, _, util in SERIES}
NODES = {node for _, _, _, node, _ in SERIES}
PROBE = ExternalRule("probe", "gpu_utilization_ratio{<<matchers>>}")


class HostileCollector:
    def collect(self) -> Iterator[Metric]:
        util = GaugeMetricFamily(
            "gpu_utilization_ratio", "u", labels=["gpu", "uuid", "namespace", "pod", "container"]
        )
        info = GaugeMetricFamily("gpu_info", "i", labels=["gpu", "uuid", "node"])
        for i, (namespace, pod, container, node, value) in enumerate(SERIES):
            util.add_metric(["0", f"GPU-{i}", namespace, pod, container], value)
            info.add_metric(["0", f"GPU-{i}", node], 1)
        yield util
        yield info


def serve_exposition() -> ThreadingHTTPServer:
    registry = CollectorRegistry()
    registry.register(HostileCollector())
    body = generate_latest(registry)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPrometheus]:
    target = serve_exposition()
    directory: Path = tmp_path_factory.mktemp("injection")
    try:
        with running_prometheus(directory, [f"127.0.0.1:{target.server_address[1]}"]) as running:
            running.wait_for("gpu_utilization_ratio", count=len(SERIES))
            running.wait_for("gpu_info", count=len(SERIES))
            yield running
    finally:
        target.shutdown()


async def _ask(url: str, work: str, *args: object) -> object:
    rules = RuleSet(builtin("default").metrics, (PROBE,))
    client = PrometheusClient(PrometheusOptions(url, timeout_seconds=10))
    # Not started: without a discovery round, every rule is served.
    backend = PrometheusBackend(rules, client)
    await client.start()
    try:
        method = getattr(backend, work)
        return await method(*args)
    finally:
        await client.close()


def ask(prometheus: RunningPrometheus, work: str, *args: object) -> object:
    return asyncio.run(_ask(prometheus.url, work, *args))


hostile = st.sampled_from(HOSTILE)
near_miss = st.one_of(
    hostile.map(lambda v: v + "x"),
    hostile.map(lambda v: v[:-1]),
    hostile.map(str.upper),
    hostile.map(lambda v: v + "\n"),
    hostile.map(lambda v: ".*" + v),
)
anything = st.text(st.characters(codec="utf-8"), max_size=12)
value = st.one_of(hostile, near_miss, anything)
pod_key = st.one_of(
    st.sampled_from(sorted(PODS)),
    st.builds(ObjectKey, value, value),
    st.sampled_from(sorted(PODS)).map(lambda k: ObjectKey(k.namespace, k.name + "|.*")),
)
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(st.lists(pod_key, min_size=1, max_size=6))
def test_pods_match_exactly_the_asked_ones(prometheus: RunningPrometheus, keys: list[ObjectKey]) -> None:
    result = ask(prometheus, "values", "gpu_utilization", "pods", keys)
    assert isinstance(result, dict)
    expected = {key for key in keys if key in PODS}
    assert set(result) == expected
    for key in expected:
        assert result[key].value == pytest.approx(100 * PODS[key])


@SETTINGS
@given(st.lists(value, min_size=1, max_size=6))
def test_nodes_and_namespaces_match_exactly_the_asked_ones(
    prometheus: RunningPrometheus, names: list[str]
) -> None:
    nodes = ask(prometheus, "values", "gpu_utilization", "nodes", [ObjectKey("", n) for n in names])
    assert isinstance(nodes, dict)
    assert {key.name for key in nodes} == set(names) & NODES
    namespaces = ask(prometheus, "values", "gpu_utilization", "namespaces", [ObjectKey("", n) for n in names])
    assert isinstance(namespaces, dict)
    assert {key.name for key in namespaces} == set(names) & {ns for ns, *_ in SERIES}


requirement = st.builds(
    Requirement,
    st.sampled_from(["container", "pod", "uuid", "missing", "app.kubernetes.io/name"]),
    st.sampled_from([Operator.IN, Operator.NOT_IN, Operator.EQUALS, Operator.NOT_EQUALS]),
    st.lists(st.one_of(hostile, near_miss, anything), min_size=1, max_size=3).map(
        lambda vs: tuple(sorted(set(vs)))
    ),
) | st.builds(
    Requirement,
    st.sampled_from(["container", "missing", "app.kubernetes.io/name"]),
    st.sampled_from([Operator.EXISTS, Operator.DOES_NOT_EXIST]),
)


def _matching(namespace: str, selector: Selector) -> Sequence[dict[str, str]]:
    series = [
        {"gpu": "0", "uuid": f"GPU-{i}", "namespace": ns, "pod": pod, "container": container}
        for i, (ns, pod, container, _, _) in enumerate(SERIES)
    ]
    return [labels for labels in series if labels["namespace"] == namespace and selector.matches(labels)]


@SETTINGS
@given(value, st.lists(requirement, max_size=3))
def test_external_selectors_match_as_they_mean(
    prometheus: RunningPrometheus, namespace: str, requirements: list[Requirement]
) -> None:
    selector = Selector(tuple(sorted(requirements)))
    found = ask(prometheus, "external_values", "probe", namespace, selector)
    assert isinstance(found, list)
    got = sorted(sample.labels["uuid"] for sample in found)
    assert got == sorted(labels["uuid"] for labels in _matching(namespace, selector))

"""external.metrics.k8s.io/v1beta1 over the prometheus backend: discovery, documents, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapter.api import external
from adapter.api.app import build_app
from adapter.backends.prometheus import PrometheusBackend
from adapter.backends.prometheus_api import PrometheusClient, PrometheusOptions
from adapter.objects.static import StaticResolver
from adapter.rules import builtin
from tests.fakes.stub_prometheus import StubPrometheus

BASE = "/apis/external.metrics.k8s.io/v1beta1"
RESULT = [
    {"metric": {"namespace": "ml"}, "value": [1767323045.0, "37.5"]},
    {"metric": {"namespace": "ml", "queue": "b"}, "value": [1767323045.0, "2"]},
]


@pytest.fixture
async def client() -> AsyncIterator[tuple[TestClient[web.Request, web.Application], StubPrometheus]]:
    stub = StubPrometheus(result=list(RESULT))
    async with TestServer(stub.app()) as prometheus:
        options = PrometheusOptions(str(prometheus.make_url("/")), timeout_seconds=1.0)
        backend = PrometheusBackend(builtin("default"), PrometheusClient(options))
        app = build_app(backend, StaticResolver(backend))
        external.register(app, backend)
        async with TestClient(TestServer(app)) as test_client:
            yield test_client, stub


async def test_group_and_discovery(
    client: tuple[TestClient[web.Request, web.Application], StubPrometheus],
) -> None:
    http, _ = client
    group = await (await http.get("/apis/external.metrics.k8s.io")).json()
    assert group == {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": "external.metrics.k8s.io",
        "versions": [{"groupVersion": "external.metrics.k8s.io/v1beta1", "version": "v1beta1"}],
        "preferredVersion": {"groupVersion": "external.metrics.k8s.io/v1beta1", "version": "v1beta1"},
    }
    resources = await (await http.get(BASE)).json()
    assert resources["kind"] == "APIResourceList"
    assert resources["groupVersion"] == "external.metrics.k8s.io/v1beta1"
    assert resources["resources"][0] == {
        "name": "cluster_gpu_utilization",
        "singularName": "",
        "namespaced": True,
        "kind": "ExternalMetricValueList",
        "verbs": ["get"],
    }
    assert {r["name"] for r in resources["resources"]} == {
        "cluster_gpu_utilization",
        "namespace_gpu_memory_used_bytes",
        "namespace_gpu_utilization",
        "namespace_gpu_utilization_total",
    }


async def test_read_is_an_external_metric_value_list(
    client: tuple[TestClient[web.Request, web.Application], StubPrometheus],
) -> None:
    http, stub = client
    answer = await http.get(
        f"{BASE}/namespaces/ml/namespace_gpu_utilization", params={"labelSelector": "gpu in (0,1)"}
    )
    assert answer.status == 200, await answer.text()
    assert await answer.json() == {
        "kind": "ExternalMetricValueList",
        "apiVersion": "external.metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": [
            {
                "metricName": "namespace_gpu_utilization",
                "metricLabels": {"namespace": "ml"},
                "timestamp": "2026-01-02T03:04:05Z",
                "window": 60,
                "value": "37500m",
            },
            {
                "metricName": "namespace_gpu_utilization",
                "metricLabels": {"namespace": "ml", "queue": "b"},
                "timestamp": "2026-01-02T03:04:05Z",
                "window": 60,
                "value": "2",
            },
        ],
    }
    queries = [form["query"] for endpoint, form, _ in stub.requests if endpoint == "query"]
    assert any('namespace="ml", gpu=~"0|1"' in query for query in queries)


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        (f"{BASE}/namespaces/ml/no_such_metric", 404, "could not find the external metric no_such_metric"),
        (f"{BASE}/namespaces/ml/namespace_gpu_utilization?labelSelector=a%3D%3D%3D", 400, "labelSelector"),
    ],
)
async def test_errors_are_status(
    client: tuple[TestClient[web.Request, web.Application], StubPrometheus],
    path: str,
    status: int,
    message: str,
) -> None:
    http, _ = client
    answer = await http.get(path)
    assert answer.status == status
    document = await answer.json()
    assert (document["kind"], document["code"]) == ("Status", status)
    assert message in document["message"]


async def test_prometheus_failing_is_503(
    client: tuple[TestClient[web.Request, web.Application], StubPrometheus],
) -> None:
    http, stub = client
    stub.mode = "error"
    answer = await http.get(f"{BASE}/namespaces/ml/namespace_gpu_utilization")
    assert answer.status == 503
    assert "HTTP 500" in (await answer.json())["message"]

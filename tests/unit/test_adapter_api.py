"""The custom.metrics.k8s.io surface over in-memory doubles: documents compared key by key with the
shapes of k8s.io/metrics ``custom_metrics/v1beta1`` and ``v1beta2`` types, and every error as a Status."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st

from adapter.api.app import build_app
from adapter.api.documents import label_selector
from adapter.api.metrics import parse_path, parse_query_selector
from adapter.api.status import StatusError
from adapter.backends.base import BackendUnavailable, MetricDescriptor
from tests.fakes.adapter_doubles import FakeBackend, FakeResolver, demo_cluster

V1 = "/apis/custom.metrics.k8s.io/v1beta1"
V2 = "/apis/custom.metrics.k8s.io/v1beta2"
TIMESTAMP = "2026-01-02T03:04:05Z"


@dataclass
class Api:
    client: TestClient[Any, Any]
    backend: FakeBackend
    resolver: FakeResolver

    async def get(self, path: str, status: int = 200, **params: str) -> Any:
        response = await self.client.get(path, params=params or None)
        body = await response.read()
        assert response.status == status, body
        if response.content_type == "application/json":
            return json.loads(body)
        return body.decode()


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    backend, resolver = demo_cluster()
    async with TestClient(TestServer(build_app(backend, resolver))) as client:
        yield Api(client, backend, resolver)


def assert_same(actual: Any, expected: Any) -> None:
    """Equal, with the same key order at every level (Go's encoder writes fields in declaration order)."""
    assert actual == expected
    if isinstance(expected, dict):
        assert list(actual) == list(expected)
        for key in expected:
            assert_same(actual[key], expected[key])
    elif isinstance(expected, list):
        for got, want in zip(actual, expected, strict=True):
            assert_same(got, want)


def v1beta1_item(ref: dict[str, str], metric: str, value: str, selector: Any = None) -> dict[str, Any]:
    return {
        "describedObject": ref,
        "metricName": metric,
        "timestamp": TIMESTAMP,
        "window": 60,
        "value": value,
        "selector": selector,
    }


def v1beta2_item(ref: dict[str, str], metric: str, value: str, selector: Any = None) -> dict[str, Any]:
    return {
        "describedObject": ref,
        "metric": {"name": metric, "selector": selector},
        "timestamp": TIMESTAMP,
        "windowSeconds": 60,
        "value": value,
    }


def value_list(version: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "kind": "MetricValueList",
        "apiVersion": f"custom.metrics.k8s.io/{version}",
        "metadata": {},
        "items": items,
    }


def pod(namespace: str, name: str) -> dict[str, str]:
    return {"kind": "Pod", "namespace": namespace, "name": name, "apiVersion": "/v1"}


def status(code: int, reason: str, message: str, details: dict[str, str] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details:
        document["details"] = details
    document["code"] = code
    return document


# Discovery


async def test_group_list_names_both_versions_and_prefers_v1beta1(api: Api) -> None:
    versions = [
        {"groupVersion": "custom.metrics.k8s.io/v1beta1", "version": "v1beta1"},
        {"groupVersion": "custom.metrics.k8s.io/v1beta2", "version": "v1beta2"},
    ]
    group = {"name": "custom.metrics.k8s.io", "versions": versions, "preferredVersion": versions[0]}
    assert_same(await api.get("/apis"), {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]})
    assert_same(
        await api.get("/apis/custom.metrics.k8s.io"), {"kind": "APIGroup", "apiVersion": "v1", **group}
    )


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2"])
async def test_resource_list_offers_each_metric_on_objects_and_workloads(api: Api, version: str) -> None:
    api.backend.descriptors = (
        MetricDescriptor("gpu_utilization", frozenset({"pods", "nodes", "namespaces"})),
        MetricDescriptor("gpu_node_only", frozenset({"nodes"})),
    )
    document = await api.get(f"/apis/custom.metrics.k8s.io/{version}")

    def entry(name: str, namespaced: bool) -> dict[str, Any]:
        return {
            "name": name,
            "singularName": "",
            "namespaced": namespaced,
            "kind": "MetricValueList",
            "verbs": ["get"],
        }

    expected = [
        entry("nodes/gpu_node_only", False),
        entry("pods/gpu_utilization", True),
        entry("nodes/gpu_utilization", False),
        entry("namespaces/gpu_utilization", False),
        entry("deployments.apps/gpu_utilization", True),
        entry("statefulsets.apps/gpu_utilization", True),
        entry("replicasets.apps/gpu_utilization", True),
        entry("daemonsets.apps/gpu_utilization", True),
        entry("jobs.batch/gpu_utilization", True),
    ]
    assert_same(
        document,
        {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"custom.metrics.k8s.io/{version}",
            "resources": expected,
        },
    )
    assert await api.get(f"/apis/custom.metrics.k8s.io/{version}/") == document


# Metric reads, every path shape in both versions


async def test_single_pod_v1beta1_document(api: Api) -> None:
    document = await api.get(f"{V1}/namespaces/default/pods/web-1/gpu_utilization")
    assert_same(
        document, value_list("v1beta1", [v1beta1_item(pod("default", "web-1"), "gpu_utilization", "60500m")])
    )


async def test_single_pod_v1beta2_document(api: Api) -> None:
    document = await api.get(f"{V2}/namespaces/default/pods/web-1/gpu_utilization")
    assert_same(
        document, value_list("v1beta2", [v1beta2_item(pod("default", "web-1"), "gpu_utilization", "60500m")])
    )


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2"])
async def test_all_pods_of_a_namespace_skip_pods_without_data(api: Api, version: str) -> None:
    document = await api.get(
        f"/apis/custom.metrics.k8s.io/{version}/namespaces/default/pods/*/gpu_memory_used_bytes"
    )
    assert [(i["describedObject"]["name"], i["value"]) for i in document["items"]] == [
        ("web-0", "2G"),
        ("web-1", "3500M"),
    ]


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2"])
@pytest.mark.parametrize(
    ("selector", "names"),
    [
        ("app=web", ["web-0", "web-1"]),
        ("app==web,tier!=front", ["web-1"]),
        ("tier in (front)", ["web-0"]),
        ("tier notin (front)", ["idle", "web-1"]),
        ("tier", ["web-0", "web-1"]),
        ("!tier", ["idle"]),
        ("app=nothing", []),
    ],
)
async def test_label_selector_picks_the_pods(api: Api, version: str, selector: str, names: list[str]) -> None:
    path = f"/apis/custom.metrics.k8s.io/{version}/namespaces/default/pods/*/gpu_utilization"
    await api.get(path, labelSelector=selector)
    assert [key.name for key in api.backend.calls[-1][2]] == names


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2"])
async def test_nodes_by_name_and_by_selector(api: Api, version: str) -> None:
    base = f"/apis/custom.metrics.k8s.io/{version}/nodes"
    one = await api.get(f"{base}/node-a/gpu_utilization")
    assert_same(one["items"][0]["describedObject"], {"kind": "Node", "name": "node-a", "apiVersion": "/v1"})
    assert one["items"][0]["value"] == "50250m"
    selected = await api.get(f"{base}/*/gpu_utilization", labelSelector="gpu=a100")
    assert [i["describedObject"]["name"] for i in selected["items"]] == ["node-b"]


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2"])
@pytest.mark.parametrize(
    "path",
    ["namespaces/ml/metrics/gpu_utilization", "namespaces/ml/gpu_utilization"],
    ids=["upstream-namespace-path", "root-resource-path"],
)
async def test_a_namespace_metric(api: Api, version: str, path: str) -> None:
    document = await api.get(f"/apis/custom.metrics.k8s.io/{version}/{path}")
    assert_same(
        document["items"][0]["describedObject"], {"kind": "Namespace", "name": "ml", "apiVersion": "/v1"}
    )
    assert document["items"][0]["value"] == "97250m"


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2"])
async def test_all_namespaces_by_selector(api: Api, version: str) -> None:
    document = await api.get(
        f"/apis/custom.metrics.k8s.io/{version}/namespaces/*/metrics/gpu_utilization",
        labelSelector="team=web",
    )
    assert [i["describedObject"]["name"] for i in document["items"]] == ["default"]


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2"])
@pytest.mark.parametrize("resource", ["deployments.apps", "deployments"])
async def test_deployment_is_the_aggregate_of_its_pods(api: Api, version: str, resource: str) -> None:
    document = await api.get(
        f"/apis/custom.metrics.k8s.io/{version}/namespaces/default/{resource}/web/gpu_utilization"
    )
    assert_same(
        document["items"][0]["describedObject"],
        {"kind": "Deployment", "namespace": "default", "name": "web", "apiVersion": "apps/v1"},
    )
    assert document["items"][0]["value"] == "50250m"
    assert api.backend.calls[-1][1:3] == (
        "aggregate",
        tuple(api.resolver.workloads[("deployments", "default", "web")]),
    )


async def test_job_and_workload_wildcard(api: Api) -> None:
    job = await api.get(f"{V2}/namespaces/ml/jobs.batch/trainer/gpu_memory_used_bytes")
    assert job["items"][0]["describedObject"]["apiVersion"] == "batch/v1"
    assert job["items"][0]["value"] == "70G"
    every = await api.get(
        f"{V1}/namespaces/default/deployments.apps/*/gpu_utilization", labelSelector="app=web"
    )
    assert [i["describedObject"]["name"] for i in every["items"]] == ["web"]


async def test_metric_label_selector_is_passed_on_and_echoed(api: Api) -> None:
    path = "namespaces/default/pods/web-0/gpu_utilization"
    selector = "gpu in (0,1),model=h100,mig!=yes,!spare"
    shown = {
        "matchLabels": {"model": "h100"},
        "matchExpressions": [
            {"key": "gpu", "operator": "In", "values": ["0", "1"]},
            {"key": "mig", "operator": "NotIn", "values": ["yes"]},
            {"key": "spare", "operator": "DoesNotExist"},
        ],
    }
    v1 = await api.get(f"{V1}/{path}", metricLabelSelector=selector)
    assert_same(v1["items"][0], v1beta1_item(pod("default", "web-0"), "gpu_utilization", "40", shown))
    v2 = await api.get(f"{V2}/{path}", metricLabelSelector=selector)
    assert_same(v2["items"][0], v1beta2_item(pod("default", "web-0"), "gpu_utilization", "40", shown))
    assert api.backend.calls[-1][3] == "gpu in (0,1),mig!=yes,model=h100,!spare"


async def test_empty_wildcard_answers_an_empty_list(api: Api) -> None:
    assert_same(await api.get(f"{V2}/namespaces/nowhere/pods/*/gpu_utilization"), value_list("v1beta2", []))


async def test_output_is_compact_go_style_json(api: Api) -> None:
    response = await api.client.get(f"{V1}/namespaces/default/pods/web-0/gpu_utilization")
    body = await response.text()
    assert response.headers["Content-Type"] == "application/json"
    assert body.startswith(
        '{"kind":"MetricValueList","apiVersion":"custom.metrics.k8s.io/v1beta1","metadata":{}'
    )
    assert ": " not in body
    assert ", " not in body


# Errors as metav1.Status


async def test_unknown_metric_is_404(api: Api) -> None:
    document = await api.get(f"{V1}/namespaces/default/pods/web-0/gpu_nothing", status=404)
    assert_same(
        document, status(404, "NotFound", "the server could not find the metric gpu_nothing for pods")
    )


async def test_metric_not_served_for_a_resource_is_404(api: Api) -> None:
    api.backend.descriptors = (MetricDescriptor("gpu_utilization", frozenset({"nodes"})),)
    document = await api.get(f"{V2}/namespaces/default/pods/web-0/gpu_utilization", status=404)
    assert document["message"] == "the server could not find the metric gpu_utilization for pods"


async def test_unknown_object_is_404_with_details(api: Api) -> None:
    document = await api.get(f"{V1}/namespaces/default/pods/ghost/gpu_utilization", status=404)
    assert_same(
        document, status(404, "NotFound", 'pods "ghost" not found', {"name": "ghost", "kind": "pods"})
    )
    workload = await api.get(f"{V1}/namespaces/default/deployments.apps/ghost/gpu_utilization", status=404)
    assert workload["details"] == {"name": "ghost", "group": "apps", "kind": "deployments"}


async def test_object_without_data_is_404(api: Api) -> None:
    document = await api.get(f"{V1}/namespaces/default/pods/idle/gpu_utilization", status=404)
    assert document["message"] == "the server could not find the metric gpu_utilization for pods idle"


async def test_unknown_resource_is_404(api: Api) -> None:
    document = await api.get(f"{V1}/namespaces/default/services/web/gpu_utilization", status=404)
    assert document["message"] == "the server could not find the metric gpu_utilization for services"


@pytest.mark.parametrize("parameter", ["labelSelector", "metricLabelSelector"])
async def test_bad_selector_is_400_with_the_parser_message(api: Api, parameter: str) -> None:
    document = await api.get(
        f"{V2}/namespaces/default/pods/*/gpu_utilization", status=400, **{parameter: "app in (web"}
    )
    assert document["reason"] == "BadRequest"
    assert document["code"] == 400
    assert document["message"].startswith(f"{parameter}: unable to parse label selector 'app in (web'")


async def test_numeric_metric_selector_cannot_be_shown_and_is_400(api: Api) -> None:
    document = await api.get(
        f"{V2}/namespaces/default/pods/web-0/gpu_utilization", status=400, metricLabelSelector="gpu>1"
    )
    assert document["message"] == "'gt' isn't supported in metric label selectors"


@pytest.mark.parametrize(
    ("path", "code", "message"),
    [
        ("pods/web-0/gpu_utilization", 400, "pods are namespaced: ask /namespaces/{namespace}/pods/..."),
        ("namespaces/default/nodes/node-a/gpu_utilization", 400, "nodes are not namespaced"),
        ("namespaces/default/pods//gpu_utilization", 400, "invalid request path: empty path segment"),
        ("namespaces/default/pods/web-0", 404, "the server could not find the requested resource"),
        ("namespaces/default/pods/web-0/gpu_utilization/extra", 404, "the server could not find"),
        ("nodes", 404, "the server could not find the requested resource"),
    ],
)
async def test_bad_paths(api: Api, path: str, code: int, message: str) -> None:
    document = await api.get(f"{V1}/{path}", status=code)
    assert document["code"] == code
    assert document["message"].startswith(message)


async def test_backend_unavailable_is_503(api: Api) -> None:
    api.backend.unavailable = "no exporter answered in the last 60s"
    document = await api.get(f"{V2}/namespaces/default/pods/web-0/gpu_utilization", status=503)
    assert_same(
        document,
        status(
            503,
            "ServiceUnavailable",
            "unable to fetch metric gpu_utilization for pods: no exporter answered in the last 60s",
        ),
    )


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
async def test_writes_are_405(api: Api, method: str) -> None:
    response = await api.client.request(method, f"{V1}/namespaces/default/pods/web-0/gpu_utilization")
    assert response.status == 405
    document = await response.json()
    assert document["reason"] == "MethodNotAllowed"
    assert document["kind"] == "Status"


@pytest.mark.parametrize(
    "path", ["/apis/custom.metrics.k8s.io/v2", "/api/v1/pods", "/apis/other.k8s.io/v1/x/y/z"]
)
async def test_unknown_paths_are_404_status(api: Api, path: str) -> None:
    assert_same(
        await api.get(path, status=404),
        status(404, "NotFound", "the server could not find the requested resource"),
    )


async def test_a_bug_is_500_status(api: Api) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError("boom")

    api.backend.values = broken  # type: ignore[assignment, method-assign]
    document = await api.get(f"{V1}/namespaces/default/pods/web-0/gpu_utilization", status=500)
    assert document["reason"] == "InternalError"
    assert "boom" not in document["message"]


# Health, readiness, lifecycle, OpenAPI


async def test_health_and_readiness(api: Api) -> None:
    assert await api.get("/healthz") == "ok"
    assert await api.get("/livez") == "ok"
    assert await api.get("/readyz") == "ok"
    api.resolver.is_ready = False
    assert await api.get("/readyz", status=503) == "[-]resolver not ready\n"
    api.backend.is_ready = False
    assert "[-]backend not ready" in await api.get("/readyz", status=503)


async def test_ready_notes_are_shown() -> None:
    backend, resolver = demo_cluster()
    app = build_app(backend, resolver, ready_notes=["WARNING: authentication is off"])
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/readyz")
        assert await response.text() == "WARNING: authentication is off\nok"


async def test_backend_and_resolver_start_and_close_with_the_app() -> None:
    backend, resolver = demo_cluster()
    async with TestClient(TestServer(build_app(backend, resolver))):
        assert backend.started
        assert resolver.started
        assert not backend.closed
    assert (backend.closed, resolver.closed) == (True, True)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


async def test_openapi_v2_is_swagger_with_resolvable_references(api: Api) -> None:
    document = await api.get("/openapi/v2")
    assert document["swagger"] == "2.0"
    assert f"{V1}/namespaces/{{namespace}}/{{resource}}/{{name}}/{{metric}}" in document["paths"]
    assert f"{V2}/namespaces/{{name}}/metrics/{{metric}}" in document["paths"]
    for ref in _refs(document):
        assert ref.removeprefix("#/definitions/") in document["definitions"]
    operation_ids = [p["get"]["operationId"] for p in document["paths"].values()]
    assert len(operation_ids) == len(set(operation_ids)) == 6


async def test_openapi_v3_root_points_at_hashed_documents(api: Api) -> None:
    root = await api.get("/openapi/v3")
    assert sorted(root["paths"]) == [
        "apis/custom.metrics.k8s.io/v1beta1",
        "apis/custom.metrics.k8s.io/v1beta2",
    ]
    for entry in root["paths"].values():
        response = await api.client.get(entry["serverRelativeURL"])
        assert response.status == 200
        digest = entry["serverRelativeURL"].split("hash=")[1]
        assert response.headers["ETag"] == f'"{digest}"'
        document = await response.json()
        assert document["openapi"] == "3.0.0"
        for ref in _refs(document):
            assert ref.removeprefix("#/components/schemas/") in document["components"]["schemas"]


async def test_resolver_not_synced_is_503(api: Api) -> None:
    async def not_synced(*args: object) -> None:
        raise BackendUnavailable("the pods cache has not synced with the Kubernetes API yet")

    api.resolver.select = not_synced  # type: ignore[assignment, method-assign]
    document = await api.get(f"{V1}/namespaces/default/pods/*/gpu_utilization", status=503)
    assert document["message"].endswith("the pods cache has not synced with the Kubernetes API yet")


# Arbitrary input is a 400 or 404, never a 500


segments = st.text(alphabet=st.sampled_from("ab*.-_/ %nmespacod"), max_size=12)


@given(st.lists(segments, max_size=7))
def test_any_path_parses_or_is_a_status(parts: list[str]) -> None:
    code = 0
    try:
        kind, namespace, name, metric = parse_path(parts)
    except StatusError as exc:
        code = exc.code
    else:
        assert name
        assert metric
        assert bool(namespace) == kind.namespaced
    assert code in (0, 400, 404)


@given(st.text(max_size=40))
def test_any_selector_text_parses_or_is_a_400(text: str) -> None:
    code = 0
    try:
        label_selector(parse_query_selector("metricLabelSelector", text))
    except StatusError as exc:
        code = exc.code
    assert code in (0, 400)

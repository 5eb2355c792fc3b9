"""``kube-gpu-hpa watch`` against a stub adapter over real TLS (trustme): the controller's requests, the
upstream ``MetricValueList`` shape, server verification and client certificates."""

from __future__ import annotations

import json
import logging
import ssl
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from hpalab.algorithm import Decision
from hpalab.hpa_spec import ObjectReference, load_hpa, parse_hpa
from hpalab.watch import ClusterView, WatchError, pod_metrics, resource_path, run_watch, tls_context

REPO = Path(__file__).resolve().parents[2]
HPA = load_hpa(REPO / "examples" / "hpa" / "hpa-gpu-utilization.yaml")
PODS_PATH = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/gpu-demo/pods/*/gpu_utilization"
OBJECT_PATH = (
    "/apis/custom.metrics.k8s.io/v1beta2/namespaces/gpu-demo/deployments.apps/llm-inference/gpu_utilization"
)


def metric_value_list(kind: str, api_version: str, values: dict[str, str]) -> dict[str, Any]:
    """``MetricValueList`` as custom.metrics.k8s.io/v1beta2 serves it."""
    return {
        "kind": "MetricValueList",
        "apiVersion": "custom.metrics.k8s.io/v1beta2",
        "metadata": {},
        "items": [
            {
                "describedObject": {
                    "kind": kind,
                    "namespace": "gpu-demo",
                    "name": name,
                    "apiVersion": api_version,
                },
                "metric": {"name": "gpu_utilization", "selector": None},
                "timestamp": "2026-11-25T18:00:00Z",
                "windowSeconds": 60,
                "value": value,
            }
            for name, value in values.items()
        ],
    }


@dataclass
class StubAdapter:
    """Serves fixed documents by path and records every request (path and query)."""

    url: str
    ca: trustme.CA
    ca_file: Path
    client_ca: trustme.CA
    requests: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    documents: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)


def _handler(stub: StubAdapter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parsed = urllib.parse.urlsplit(self.path)
            path = urllib.parse.unquote(parsed.path)
            stub.requests.append((path, urllib.parse.parse_qs(parsed.query)))
            status, document = stub.documents.get(
                path,
                (
                    404,
                    {"kind": "Status", "status": "Failure", "code": 404, "message": f"no metric at {path}"},
                ),
            )
            body = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    return Handler


def _serve(tmp_path: Path, require_client_cert: bool) -> Iterator[StubAdapter]:
    ca = trustme.CA()
    client_ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    if require_client_cert:
        client_ca.configure_trust(context)
        context.verify_mode = ssl.CERT_REQUIRED
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    stub = StubAdapter("", ca, ca_file, client_ca)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    stub.url = f"https://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def adapter(tmp_path: Path) -> Iterator[StubAdapter]:
    yield from _serve(tmp_path, require_client_cert=False)


@pytest.fixture
def mtls_adapter(tmp_path: Path) -> Iterator[StubAdapter]:
    yield from _serve(tmp_path, require_client_cert=True)


def watch(stub: StubAdapter, context: ssl.SSLContext, syncs: int = 1, **options: Any) -> list[Decision]:
    decisions: list[Decision] = []

    def record(decision: Decision, _view: ClusterView) -> None:
        decisions.append(decision)

    options.setdefault("selector", "app=llm-inference")
    run_watch(
        options.pop("hpa", HPA),
        adapter=stub.url,
        context=context,
        syncs=syncs,
        sleep=lambda _s: None,
        on_decision=record,
        **options,
    )
    return decisions


def test_pods_metric_request_and_decision(adapter: StubAdapter, caplog: pytest.LogCaptureFixture) -> None:
    """Two pods at 90 % against 60 %: ratio 1.5, ceil(1.5 * 2) = 3, within the scale-up policies."""
    adapter.documents[PODS_PATH] = (200, metric_value_list("Pod", "/v1", {"llm-0": "90", "llm-1": "90"}))
    with caplog.at_level(logging.INFO, logger="hpalab.watch"):
        decisions = watch(adapter, tls_context(ca_file=str(adapter.ca_file)), syncs=2)
    assert adapter.requests == [(PODS_PATH, {"labelSelector": ["app=llm-inference"]})] * 2
    first = decisions[0]
    assert (first.current_replicas, first.desired_replicas, first.rescale) == (2, 3, True)
    assert first.metrics is not None
    assert first.metrics.proposals[0].usage == 90_000
    assert "would scale" in caplog.text


def test_metric_selector_is_sent_as_metric_label_selector(adapter: StubAdapter) -> None:
    text = (
        (REPO / "examples" / "hpa" / "hpa-gpu-utilization.yaml")
        .read_text()
        .replace(
            "name: gpu_utilization", "name: gpu_utilization\n          selector: {matchLabels: {gpu: h100}}"
        )
    )
    adapter.documents[PODS_PATH] = (200, metric_value_list("Pod", "/v1", {"llm-0": "60", "llm-1": "60"}))
    decisions = watch(adapter, tls_context(ca_file=str(adapter.ca_file)), hpa=parse_hpa(text))
    assert adapter.requests[0][1] == {
        "labelSelector": ["app=llm-inference"],
        "metricLabelSelector": ["gpu=h100"],
    }
    assert decisions[0].rescale is False


def test_object_metric_uses_the_qualified_resource(adapter: StubAdapter) -> None:
    text = (
        (REPO / "examples" / "hpa" / "hpa-gpu-utilization.yaml")
        .read_text()
        .replace(
            "    - type: Pods\n      pods:\n        metric:",
            "    - type: Object\n      object:\n"
            "        describedObject: {apiVersion: apps/v1, kind: Deployment, name: llm-inference}\n"
            "        metric:",
        )
        .replace("type: AverageValue\n          averageValue", "type: Value\n          value")
    )
    adapter.documents[OBJECT_PATH] = (
        200,
        metric_value_list("Deployment", "apps/v1", {"llm-inference": "30"}),
    )
    decisions = watch(adapter, tls_context(ca_file=str(adapter.ca_file)), hpa=parse_hpa(text), replicas=4)
    assert adapter.requests == [(OBJECT_PATH, {})]
    assert decisions[0].metrics is not None
    assert decisions[0].metrics.proposals[0].usage == 30_000


def test_empty_selector_asks_for_every_pod(adapter: StubAdapter) -> None:
    adapter.documents[PODS_PATH] = (200, metric_value_list("Pod", "/v1", {"llm-0": "60", "llm-1": "60"}))
    watch(adapter, tls_context(ca_file=str(adapter.ca_file)), selector="")
    assert adapter.requests == [(PODS_PATH, {})]


def test_status_errors_make_the_metric_invalid(adapter: StubAdapter) -> None:
    decisions = watch(adapter, tls_context(ca_file=str(adapter.ca_file)))
    assert decisions[0].rescale is False
    assert decisions[0].metrics is not None
    assert "404 no metric at" in (decisions[0].metrics.error or "")


def test_unknown_certificate_is_refused_unless_verification_is_skipped(adapter: StubAdapter) -> None:
    adapter.documents[PODS_PATH] = (200, metric_value_list("Pod", "/v1", {"llm-0": "90", "llm-1": "90"}))
    refused = watch(adapter, tls_context())
    assert refused[0].metrics is not None
    assert "CERTIFICATE_VERIFY_FAILED" in (refused[0].metrics.error or "")
    assert adapter.requests == []
    accepted = watch(adapter, tls_context(insecure=True))
    assert accepted[0].desired_replicas == 3


def test_client_certificate(mtls_adapter: StubAdapter, tmp_path: Path) -> None:
    mtls_adapter.documents[PODS_PATH] = (200, metric_value_list("Pod", "/v1", {"llm-0": "90", "llm-1": "90"}))
    without = watch(mtls_adapter, tls_context(ca_file=str(mtls_adapter.ca_file)))
    assert without[0].metrics is not None
    assert without[0].metrics.error is not None
    leaf = mtls_adapter.client_ca.issue_cert("hpa-watch")
    cert, key = tmp_path / "client.pem", tmp_path / "client-key.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    context = tls_context(ca_file=str(mtls_adapter.ca_file), client_cert=str(cert), client_key=str(key))
    assert watch(mtls_adapter, context)[0].desired_replicas == 3


def test_setup_errors() -> None:
    with pytest.raises(WatchError, match="TLS setup failed"):
        tls_context(ca_file="/nonexistent/ca.pem")
    with pytest.raises(WatchError, match="give --selector"):
        run_watch(HPA, adapter="https://127.0.0.1:1", context=None, syncs=1)


@pytest.mark.parametrize(
    ("kind", "api_version", "resource"),
    [
        ("Deployment", "apps/v1", "deployments.apps"),
        ("StatefulSet", "apps/v1", "statefulsets.apps"),
        ("Service", "v1", "services"),
        ("Ingress", "networking.k8s.io/v1", "ingresses.networking.k8s.io"),
        ("NetworkPolicy", "networking.k8s.io/v1", "networkpolicies.networking.k8s.io"),
    ],
)
def test_resource_path_is_the_rest_mapper_group_resource(kind: str, api_version: str, resource: str) -> None:
    assert resource_path(ObjectReference(kind, "x", api_version)) == resource


def test_v1beta1_metric_value_lists_are_read_too() -> None:
    document = {
        "kind": "MetricValueList",
        "apiVersion": "custom.metrics.k8s.io/v1beta1",
        "items": [
            {
                "describedObject": {
                    "kind": "Pod",
                    "namespace": "gpu-demo",
                    "name": "llm-0",
                    "apiVersion": "/v1",
                },
                "metricName": "gpu_utilization",
                "timestamp": "2026-11-25T18:00:00Z",
                "window": 30,
                "value": "61500m",
            }
        ],
    }
    (sample,) = pod_metrics(document, now=0.0).values()
    assert (sample.value, sample.window) == (61_500, 30.0)
    assert sample.timestamp == datetime(2026, 11, 25, 18, tzinfo=UTC).timestamp()

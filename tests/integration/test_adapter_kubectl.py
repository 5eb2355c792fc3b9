"""The adapter as a real process over real TLS, read with the installed ``kubectl get --raw``.

Delegated auth runs for real: kubectl presents a client certificate (trustme, signed by the
``--client-ca-file`` CA) and the adapter asks a fake Kubernetes API, over HTTPS, to review access.
Numbers and objects come from the in-memory doubles (``python -m tests.fakes.adapter_doubles``, the real
command line with the demo cluster wired in); the last test runs ``python -m adapter`` against a real
exporter process instead.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.fake_kube_api import FakeKubeApi, allow, serve_in_thread, write_kubeconfig
from tests.integration.processes import spawn, start
from tests.pki import Pki
from tests.support import RunningProcess, require_program, wait_until

GROUP = "/apis/custom.metrics.k8s.io"
DISCOVERY_PATHS = (
    "/apis",
    GROUP,
    f"{GROUP}/v1beta1",
    f"{GROUP}/v1beta2",
    "/openapi/v2",
    "/openapi/v3",
    f"/openapi/v3{GROUP}/v1beta1",
    f"/openapi/v3{GROUP}/v1beta2",
)


@dataclass
class Adapter:
    """A running adapter process, the kubeconfig kubectl uses for it, and TLS material for raw clients."""

    server: RunningProcess
    kubeconfig: Path
    server_ca: Path
    client_cert: Path | None = None
    kube: FakeKubeApi | None = None

    def kubectl(self, path: str, *, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [require_program("kubectl"), "--kubeconfig", str(self.kubeconfig), "get", "--raw", path],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if check:
            assert result.returncode == 0, f"kubectl get --raw {path}: {result.stderr}\n{self.server.log()}"
        return result

    def get_json(self, path: str) -> Any:
        return json.loads(self.kubectl(path).stdout)

    def request(
        self,
        path: str,
        *,
        method: str = "GET",
        cert: Path | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """A raw HTTPS request (no kubectl) for the error cases; returns status and parsed JSON."""
        context = ssl.create_default_context(cafile=str(self.server_ca))
        if cert is not None:
            context.load_cert_chain(str(cert))
        request = urllib.request.Request(self.server.url + path, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as response:
                return int(response.status), json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())


def _kubeconfig(path: Path, url: str, server_ca: Path, user: dict[str, str]) -> Path:
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "adapter", "cluster": {"server": url, "certificate-authority": str(server_ca)}}
        ],
        "users": [{"name": "user", "user": user}],
        "contexts": [{"name": "adapter", "context": {"cluster": "adapter", "user": "user"}}],
        "current-context": "adapter",
    }
    path.write_text(yaml.safe_dump(document))
    return path


@contextlib.contextmanager
def _serving(module: str, flags: list[str], pki: Pki, log_path: Path) -> Iterator[RunningProcess]:
    """``python -m <module>`` serving TLS from ``pki`` on a free port, healthy on entry and required to
    exit 0 on SIGTERM at the end."""
    server = start(
        module,
        [*pki.serving_flags(), "--log-format", "logfmt", *flags],
        log_path,
        scheme="https",
        tls=pki.client_context(),
    )
    try:
        server.wait_answers("/healthz")
        yield server
    finally:
        assert server.stop() == 0, server.log()


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path)


@pytest.fixture
def adapter(pki: Pki, tmp_path: Path) -> Iterator[Adapter]:
    """The adapter with delegated auth; the user ``hpa-controller`` may read every metric and discovery."""
    require_program("kubectl")
    kube = FakeKubeApi(
        # kube-apiserver reads /namespaces/{ns}/{metric} as "list" of a resource named after the metric.
        rules=[allow("hpa-controller", resource="*"), allow("hpa-controller", verb="list", resource="*")]
        + [allow("hpa-controller", path=path) for path in DISCOVERY_PATHS]
    )
    with serve_in_thread(kube, pki.serving_context()) as kube_url:
        server_ca = pki.ca_file(pki.server_ca, "server-ca")
        with _serving(
            "tests.fakes.adapter_doubles",
            [
                "--client-ca-file", str(pki.client_ca_file()),
                "--requestheader-client-ca-file", str(pki.ca_file(pki.proxy_ca, "proxy-ca")),
                "--requestheader-allowed-names", "front-proxy-client",
                "--kubeconfig", str(write_kubeconfig(tmp_path / "adapter-kubeconfig", kube_url, server_ca)),
            ],
            pki,
            tmp_path / "adapter.log",
        ) as server:  # fmt: skip
            user_cert, user_key = pki.client_pair(pki.client_ca, "hpa-controller")
            kubeconfig = _kubeconfig(
                tmp_path / "kubeconfig",
                server.url,
                server_ca,
                {"client-certificate": str(user_cert), "client-key": str(user_key)},
            )
            yield Adapter(
                server, kubeconfig, server_ca, pki.client_file(pki.client_ca, "hpa-controller"), kube
            )


def test_discovery_through_kubectl(adapter: Adapter) -> None:
    groups = adapter.get_json("/apis")
    assert groups["kind"] == "APIGroupList"
    assert [v["version"] for v in groups["groups"][0]["versions"]] == ["v1beta1", "v1beta2"]
    assert adapter.get_json(GROUP)["preferredVersion"]["version"] == "v1beta1"
    for version in ("v1beta1", "v1beta2"):
        resources = adapter.get_json(f"{GROUP}/{version}")
        assert resources["groupVersion"] == f"custom.metrics.k8s.io/{version}"
        names = {r["name"]: r["namespaced"] for r in resources["resources"]}
        assert names["pods/gpu_utilization"] is True
        assert names["nodes/gpu_memory_used_bytes"] is False
        assert names["namespaces/gpu_memory_utilization"] is False
        assert names["deployments.apps/gpu_utilization"] is True
        assert names["jobs.batch/gpu_utilization"] is True
        assert {tuple(r["verbs"]) for r in resources["resources"]} == {("get",)}
    assert adapter.get_json("/openapi/v2")["swagger"] == "2.0"
    for entry in adapter.get_json("/openapi/v3")["paths"].values():
        assert adapter.get_json(entry["serverRelativeURL"])["openapi"] == "3.0.0"


PATH_SHAPES: list[tuple[str, list[tuple[str, str, str]]]] = [
    ("namespaces/default/pods/web-1/gpu_utilization", [("Pod", "web-1", "60500m")]),
    ("namespaces/default/pods/*/gpu_memory_used_bytes", [("Pod", "web-0", "2G"), ("Pod", "web-1", "3500M")]),
    (
        "namespaces/default/pods/*/gpu_utilization?labelSelector=tier%20notin%20(front),app",
        [("Pod", "web-1", "60500m")],
    ),
    ("nodes/node-b/gpu_utilization", [("Node", "node-b", "97250m")]),
    ("nodes/*/gpu_utilization?labelSelector=gpu%3Dh100", [("Node", "node-a", "50250m")]),
    ("namespaces/ml/metrics/gpu_utilization", [("Namespace", "ml", "97250m")]),
    (
        "namespaces/*/metrics/gpu_utilization",
        [("Namespace", "default", "50250m"), ("Namespace", "ml", "97250m")],
    ),
    ("namespaces/default/gpu_utilization", [("Namespace", "default", "50250m")]),
    ("namespaces/default/deployments.apps/web/gpu_utilization", [("Deployment", "web", "50250m")]),
    ("namespaces/default/deployments/*/gpu_memory_used_bytes", [("Deployment", "web", "5500M")]),
    ("namespaces/ml/jobs.batch/trainer/gpu_utilization", [("Job", "trainer", "97250m")]),
    ("namespaces/default/pods/web-0/gpu_utilization?metricLabelSelector=gpu%3D0", [("Pod", "web-0", "40")]),
]


@pytest.mark.parametrize("version", ["v1beta1", "v1beta2"])
def test_every_path_shape_through_kubectl(adapter: Adapter, version: str) -> None:
    for path, expected in PATH_SHAPES:
        document = adapter.get_json(f"{GROUP}/{version}/{path}")
        assert document["kind"] == "MetricValueList"
        assert document["apiVersion"] == f"custom.metrics.k8s.io/{version}"
        got = [
            (i["describedObject"]["kind"], i["describedObject"]["name"], i["value"])
            for i in document["items"]
        ]
        assert got == expected, path
        for item in document["items"]:
            window, name = ("window", "metricName") if version == "v1beta1" else ("windowSeconds", "metric")
            assert item[window] == 60
            assert name in item
            assert item["timestamp"] == "2026-01-02T03:04:05Z"


def test_upstream_item_shapes(adapter: Adapter) -> None:
    v1 = adapter.get_json(f"{GROUP}/v1beta1/namespaces/default/pods/web-0/gpu_utilization")
    assert v1 == {
        "kind": "MetricValueList",
        "apiVersion": "custom.metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": [
            {
                "describedObject": {
                    "kind": "Pod",
                    "namespace": "default",
                    "name": "web-0",
                    "apiVersion": "/v1",
                },
                "metricName": "gpu_utilization",
                "timestamp": "2026-01-02T03:04:05Z",
                "window": 60,
                "value": "40",
                "selector": None,
            }
        ],
    }
    v2 = adapter.get_json(
        f"{GROUP}/v1beta2/namespaces/default/pods/web-0/gpu_utilization?metricLabelSelector=gpu%3D0"
    )
    assert v2["items"][0] == {
        "describedObject": {"kind": "Pod", "namespace": "default", "name": "web-0", "apiVersion": "/v1"},
        "metric": {"name": "gpu_utilization", "selector": {"matchLabels": {"gpu": "0"}}},
        "timestamp": "2026-01-02T03:04:05Z",
        "windowSeconds": 60,
        "value": "40",
    }


def test_kubectl_reads_status_errors(adapter: Adapter) -> None:
    missing = adapter.kubectl(f"{GROUP}/v1beta1/namespaces/default/pods/ghost/gpu_utilization", check=False)
    assert missing.returncode != 0
    assert 'Error from server (NotFound): pods "ghost" not found' in missing.stderr
    bad = adapter.kubectl(
        f"{GROUP}/v1beta1/namespaces/default/pods/*/gpu_utilization?labelSelector=a%20in", check=False
    )
    assert "Error from server (BadRequest)" in bad.stderr


@pytest.mark.parametrize(
    ("path", "code", "reason"),
    [
        (f"{GROUP}/v1beta1/namespaces/default/pods/web-0/gpu_nothing", 404, "NotFound"),
        (f"{GROUP}/v1beta2/namespaces/default/deployments.apps/ghost/gpu_utilization", 404, "NotFound"),
        (
            f"{GROUP}/v1beta2/namespaces/default/pods/*/gpu_utilization?labelSelector=%3D%3D",
            400,
            "BadRequest",
        ),
        (f"{GROUP}/v1beta2/pods/web-0/gpu_utilization", 400, "BadRequest"),
        (f"{GROUP}/v3/namespaces/default/pods/web-0/gpu_utilization", 404, "NotFound"),
    ],
)
def test_error_statuses_over_https(adapter: Adapter, path: str, code: int, reason: str) -> None:
    status, document = adapter.request(path, cert=adapter.client_cert)
    assert (status, document["kind"], document["reason"], document["code"]) == (code, "Status", reason, code)


def test_auth_errors_over_https(adapter: Adapter, pki: Pki) -> None:
    pod = f"{GROUP}/v1beta1/namespaces/default/pods/web-0/gpu_utilization"
    status, document = adapter.request(pod, headers={"X-Remote-User": "hpa-controller"})
    assert (status, document["reason"]) == (401, "Unauthorized")
    outsider = pki.client_file(pki.client_ca, "outsider")
    status, document = adapter.request(pod, cert=outsider)
    assert (status, document["reason"]) == (403, "Forbidden")
    assert 'User "outsider" cannot get resource "pods/gpu_utilization"' in document["message"]
    proxy = pki.client_file(pki.proxy_ca, "front-proxy-client")
    status, _ = adapter.request(pod, cert=proxy, headers={"X-Remote-User": "hpa-controller"})
    assert status == 200
    # Writes are authorized as "create", which nobody is granted here.
    status, document = adapter.request(pod, method="POST", cert=adapter.client_cert)
    assert (status, document["reason"]) == (403, "Forbidden")
    assert adapter.kube is not None
    assert adapter.kube.count("SubjectAccessReview") >= 2


def test_insecure_local_refuses_other_addresses(tmp_path: Path) -> None:
    log_path = tmp_path / "adapter.log"
    process = spawn(
        "adapter", ["--insecure-local", "--listen", "0.0.0.0:0", "--exporter-url", "http://x:1"], log_path
    )
    assert process.wait(timeout=30) == 2
    assert "--insecure-local serves without authentication and only on loopback" in log_path.read_text()


def test_prometheus_backend_without_a_url_is_a_clear_start_error(tmp_path: Path) -> None:
    log_path = tmp_path / "adapter.log"
    process = spawn("adapter", ["--insecure-local", "--backend", "prometheus"], log_path)
    assert process.wait(timeout=30) == 2
    assert "--backend prometheus needs --prometheus-url" in log_path.read_text()


def test_bad_rules_file_is_a_start_error_quoting_the_rule(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "metrics:\n  - name: gpu_hot\n    resources: [pods]\n    query: 'max(gpu_temperature_celsius)'\n"
    )
    log_path = tmp_path / "adapter.log"
    process = spawn(
        "adapter",
        [
            "--insecure-local",
            "--backend",
            "prometheus",
            "--prometheus-url",
            "http://127.0.0.1:9",
            "--config",
            str(rules),
        ],
        log_path,
    )
    assert process.wait(timeout=30) == 2
    assert f"{rules}:" in log_path.read_text()


def test_insecure_local_against_a_real_exporter(
    start_exporter: Callable[..., Any], pki: Pki, tmp_path: Path
) -> None:
    """``python -m adapter --insecure-local --exporter-url ...``: the demo's shape, direct backend."""
    require_program("kubectl")
    exporter = start_exporter(
        "--gpu-source", "simulated", "--simulated-profile", "constant:0.6", "--node-name", "gpu-node-1",
        "--host-metrics", "false",
    )  # fmt: skip
    server_ca = pki.ca_file(pki.server_ca, "server-ca")
    log_path = tmp_path / "adapter.log"
    with _serving("adapter", ["--insecure-local", "--exporter-url", exporter.url], pki, log_path) as server:
        adapter = Adapter(
            server, _kubeconfig(tmp_path / "kc", server.url, server_ca, {"token": "unused"}), server_ca
        )

        def has_value() -> bool:
            result = adapter.kubectl(f"{GROUP}/v1beta1/nodes/gpu-node-1/gpu_utilization", check=False)
            return result.returncode == 0

        wait_until(has_value, timeout=30)
        item = adapter.get_json(f"{GROUP}/v1beta1/nodes/gpu-node-1/gpu_utilization")["items"][0]
        assert item["describedObject"] == {"kind": "Node", "name": "gpu-node-1", "apiVersion": "/v1"}
        assert 55 <= float(item["value"].rstrip("m")) / (1000 if item["value"].endswith("m") else 1) <= 65
        assert "authentication and authorization are OFF" in log_path.read_text()

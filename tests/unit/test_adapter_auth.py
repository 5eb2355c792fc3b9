"""Delegated auth over real TLS: trustme CAs for the front proxy and for users, and a fake Kubernetes API
answering TokenReview and SubjectAccessReview over HTTPS through the real ``kubernetes`` client."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp import web
from kubernetes import config as kube_config
from multidict import CIMultiDict, CIMultiDictProxy

from adapter.api.app import build_app
from adapter.auth.authenticator import (
    AuthenticationConfig,
    Authenticator,
    ConfigError,
    NotAuthenticatedError,
    config_from_configmap,
)
from adapter.auth.authorizer import Authorizer
from adapter.auth.identity import Attributes, UserInfo, request_attributes
from adapter.auth.kube import AccessReviewResult, KubernetesAuthApi, TokenReviewResult
from adapter.auth.setup import build_security
from adapter.config import AdapterConfig
from adapter.tls import CertificatePair, server_context
from kgm_common.addresses import ListenAddress
from tests.fakes import fake_kube_api
from tests.fakes.adapter_doubles import demo_cluster
from tests.fakes.fake_kube_api import FakeKubeApi, allow, write_kubeconfig
from tests.pki import Pki

POD_PATH = "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/*/gpu_utilization"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path)


@dataclass
class Cluster:
    """The adapter serving over TLS with delegated auth, and the fake Kubernetes API it asks."""

    kube: FakeKubeApi
    url: str
    pki: Pki

    async def get(
        self, path: str, *, cert: Path | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        context = ssl.create_default_context(cafile=str(self.pki.ca_file(self.pki.server_ca, "server-ca")))
        if cert is not None:
            context.load_cert_chain(str(cert))
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.url + path, ssl=context, headers=headers) as response,
        ):
            body = await response.read()
            if response.content_type == "application/json":
                return response.status, json.loads(body)
            return response.status, body.decode()


async def serve_tls(app: web.Application, context: ssl.SSLContext) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"https://127.0.0.1:{port}"


@pytest.fixture
async def kube(pki: Pki) -> AsyncIterator[tuple[FakeKubeApi, Path]]:
    api = FakeKubeApi(
        tokens={
            "alice-token": {
                "username": "alice",
                "uid": "u-1",
                "groups": ["devs"],
                "extra": {"scopes": ["a"]},
            },
            "bob-token": {"username": "bob", "groups": ["viewers"]},
        },
        rules=[
            allow("alice", resource="pods"),
            allow("proxied-user", resource="*"),
            allow("carol", resource="pods"),
        ],
    )
    runner, url = await fake_kube_api.start(api, pki.serving_context())
    kubeconfig = write_kubeconfig(pki.directory / "kubeconfig", url, pki.ca_file(pki.server_ca, "server-ca"))
    yield api, kubeconfig
    await runner.cleanup()


def adapter_config(pki: Pki, **overrides: Any) -> AdapterConfig:
    config = AdapterConfig(
        listen=ListenAddress("127.0.0.1", 0),
        requestheader_client_ca_file=pki.ca_file(pki.proxy_ca, "proxy-ca"),
        requestheader_allowed_names=("front-proxy-client",),
        client_ca_file=pki.client_ca_file(),
    )
    return replace(config, **overrides)


async def start_adapter(pki: Pki, kubeconfig: Path, config: AdapterConfig) -> tuple[web.AppRunner, str, Any]:
    api_client = kube_config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    security = await build_security(config, KubernetesAuthApi(api_client))
    backend, resolver = demo_cluster()
    app = build_app(backend, resolver, middlewares=security.middlewares)
    runner, url = await serve_tls(
        app, server_context(CertificatePair(*pki.serving_pair()), security.client_cas)
    )
    return runner, url, api_client


@pytest.fixture
async def cluster(pki: Pki, kube: tuple[FakeKubeApi, Path]) -> AsyncIterator[Cluster]:
    api, kubeconfig = kube
    runner, url, api_client = await start_adapter(pki, kubeconfig, adapter_config(pki))
    yield Cluster(api, url, pki)
    await runner.cleanup()
    api_client.close()


# Front proxy


async def test_front_proxy_certificate_and_headers_are_the_user(cluster: Cluster) -> None:
    proxy = cluster.pki.client_file(cluster.pki.proxy_ca, "front-proxy-client")
    headers = {
        "X-Remote-User": "proxied-user",
        "X-Remote-Group": "team-a",
        "X-Remote-Extra-Acme.com%2Fscope": "x",
    }
    status, document = await cluster.get(POD_PATH, cert=proxy, headers=headers)
    assert status == 200
    assert document["kind"] == "MetricValueList"
    [(_, review)] = [r for r in cluster.kube.requests if r[0] == "SubjectAccessReview"]
    assert review["spec"] == {
        "user": "proxied-user",
        "groups": ["team-a", "system:authenticated"],
        "extra": {"acme.com/scope": ["x"]},
        "resourceAttributes": {
            "namespace": "default",
            "verb": "get",
            "group": "custom.metrics.k8s.io",
            "version": "v1beta1",
            "resource": "pods",
            "subresource": "gpu_utilization",
            "name": "*",
        },
    }


async def test_remote_user_headers_without_a_proxy_certificate_are_ignored(cluster: Cluster) -> None:
    status, document = await cluster.get(POD_PATH, headers={"X-Remote-User": "proxied-user"})
    assert status == 401
    assert document["reason"] == "Unauthorized"
    assert cluster.kube.count("SubjectAccessReview") == 0


async def test_remote_user_headers_with_a_user_certificate_are_ignored(cluster: Cluster) -> None:
    user = cluster.pki.client_file(cluster.pki.client_ca, "mallory")
    status, document = await cluster.get(POD_PATH, cert=user, headers={"X-Remote-User": "proxied-user"})
    assert status == 403
    assert 'User "mallory" cannot get resource "pods/gpu_utilization"' in document["message"]


async def test_proxy_certificate_with_a_disallowed_name_is_rejected(cluster: Cluster) -> None:
    impostor = cluster.pki.client_file(cluster.pki.proxy_ca, "not-the-proxy")
    status, _ = await cluster.get(POD_PATH, cert=impostor, headers={"X-Remote-User": "proxied-user"})
    assert status == 401


async def test_certificate_from_an_unknown_ca_fails_the_handshake(cluster: Cluster) -> None:
    stranger = cluster.pki.client_file(trustme.CA(), "front-proxy-client")
    with pytest.raises(aiohttp.ClientError):
        await cluster.get(POD_PATH, cert=stranger, headers={"X-Remote-User": "proxied-user"})


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
async def test_old_tls_versions_are_refused(cluster: Cluster) -> None:
    context = ssl.create_default_context(cafile=str(cluster.pki.ca_file(cluster.pki.server_ca, "server-ca")))
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientError):
            await session.get(cluster.url + "/healthz", ssl=context)


# Client certificates and tokens


async def test_client_certificate_user_is_authorized_by_review(cluster: Cluster) -> None:
    carol = cluster.pki.client_file(cluster.pki.client_ca, "carol", "devs")
    status, _ = await cluster.get(POD_PATH, cert=carol)
    assert status == 200
    [(_, review)] = [r for r in cluster.kube.requests if r[0] == "SubjectAccessReview"]
    assert review["spec"]["user"] == "carol"
    assert review["spec"]["groups"] == ["devs", "system:authenticated"]


async def test_system_masters_skip_the_review(cluster: Cluster) -> None:
    admin = cluster.pki.client_file(cluster.pki.client_ca, "admin", "system:masters")
    status, _ = await cluster.get("/apis", cert=admin)
    assert status == 200
    assert cluster.kube.count("SubjectAccessReview") == 0


async def test_bearer_token_is_reviewed_once_then_cached(cluster: Cluster) -> None:
    for _ in range(3):
        status, document = await cluster.get(POD_PATH, headers={"Authorization": "Bearer alice-token"})
        assert status == 200, document
    assert cluster.kube.count("TokenReview") == 1
    assert cluster.kube.count("SubjectAccessReview") == 1
    [(_, review)] = [r for r in cluster.kube.requests if r[0] == "SubjectAccessReview"]
    assert review["spec"]["uid"] == "u-1"
    assert review["spec"]["extra"] == {"scopes": ["a"]}


async def test_unknown_token_is_401(cluster: Cluster) -> None:
    status, document = await cluster.get(POD_PATH, headers={"Authorization": "Bearer nope"})
    assert status == 401
    assert document == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


async def test_user_without_permission_is_403_and_the_denial_is_cached(cluster: Cluster) -> None:
    for _ in range(2):
        status, document = await cluster.get(POD_PATH, headers={"Authorization": "Bearer bob-token"})
        assert status == 403
    assert document["reason"] == "Forbidden"
    assert document["message"] == (
        'pods.custom.metrics.k8s.io "*" is forbidden: User "bob" cannot get resource "pods/gpu_utilization" '
        'in API group "custom.metrics.k8s.io" in the namespace "default"'
    )
    assert cluster.kube.count("SubjectAccessReview") == 1


async def test_discovery_is_a_non_resource_request(cluster: Cluster) -> None:
    status, document = await cluster.get(
        "/apis/custom.metrics.k8s.io/v1beta1", headers={"Authorization": "Bearer bob-token"}
    )
    assert status == 403
    assert (
        document["message"] == 'forbidden: User "bob" cannot get path "/apis/custom.metrics.k8s.io/v1beta1"'
    )
    [(_, review)] = [r for r in cluster.kube.requests if r[0] == "SubjectAccessReview"]
    assert review["spec"]["nonResourceAttributes"] == {
        "path": "/apis/custom.metrics.k8s.io/v1beta1",
        "verb": "get",
    }


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz"])
async def test_health_needs_no_credentials(cluster: Cluster, path: str) -> None:
    status, body = await cluster.get(path)
    assert (status, body) == (200, "ok")


# Configuration from the cluster's authentication ConfigMap


async def test_configmap_supplies_cas_and_header_names(pki: Pki, kube: tuple[FakeKubeApi, Path]) -> None:
    api, kubeconfig = kube
    api.configmap = {
        "client-ca-file": pki.client_ca.cert_pem.bytes().decode(),
        "requestheader-client-ca-file": pki.proxy_ca.cert_pem.bytes().decode(),
        "requestheader-allowed-names": '["aggregator"]',
        "requestheader-username-headers": '["X-Proxy-User"]',
        "requestheader-group-headers": '["X-Proxy-Group"]',
        "requestheader-extra-headers-prefix": '["X-Proxy-Extra-"]',
    }
    config = adapter_config(
        pki, requestheader_client_ca_file=None, client_ca_file=None, requestheader_allowed_names=()
    )
    runner, url, api_client = await start_adapter(pki, kubeconfig, config)
    try:
        cluster = Cluster(api, url, pki)
        proxy = pki.client_file(pki.proxy_ca, "aggregator")
        status, _ = await cluster.get(POD_PATH, cert=proxy, headers={"X-Proxy-User": "proxied-user"})
        assert status == 200
        status, _ = await cluster.get(POD_PATH, cert=proxy, headers={"X-Remote-User": "proxied-user"})
        assert status == 401
        assert api.count("ConfigMap") == 1
    finally:
        await runner.cleanup()
        api_client.close()


def test_configmap_with_bad_json_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="requestheader-allowed-names"):
        config_from_configmap(
            {
                "requestheader-client-ca-file": trustme.CA().cert_pem.bytes().decode(),
                "requestheader-allowed-names": "front-proxy-client",
            }
        )


async def test_no_authentication_source_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="nothing to authenticate requests with"):
        await build_security(AdapterConfig(listen=ListenAddress("127.0.0.1", 0)), None)


async def test_insecure_local_has_no_auth_and_says_so() -> None:
    security = await build_security(
        AdapterConfig(listen=ListenAddress("127.0.0.1", 0), insecure_local=True), None
    )
    assert security.middlewares == ()
    assert "authentication and authorization are OFF" in security.ready_notes[0]


# Caches expire; request attributes match kube-apiserver's RequestInfo


@dataclass
class CountingApi:
    clock: list[float]
    token_reviews: int = 0
    access_reviews: int = 0

    async def token_review(self, token: str) -> TokenReviewResult:
        self.token_reviews += 1
        return TokenReviewResult(True, UserInfo("dave"))

    async def subject_access_review(self, user: UserInfo, attributes: Attributes) -> AccessReviewResult:
        self.access_reviews += 1
        return AccessReviewResult(allowed=True)

    async def authentication_config(self) -> dict[str, str]:
        return {}


async def test_caches_expire_after_their_ttl() -> None:
    now = [100.0]
    api = CountingApi(now)
    authenticator = Authenticator(AuthenticationConfig(), api, token_ttl=10, clock=lambda: now[0])
    authorizer = Authorizer(api, allow_ttl=5, clock=lambda: now[0])
    headers = CIMultiDictProxy(CIMultiDict({"Authorization": "Bearer t"}))
    attributes = request_attributes("GET", POD_PATH)
    for step in (0, 4, 3, 4, 2):
        now[0] += step
        user = await authenticator.authenticate(None, headers)
        assert (await authorizer.authorize(user, attributes)).allowed
    # Reviews at t=100 (both), 107 (access), 111 (token), 113 (access).
    assert (api.token_reviews, api.access_reviews) == (2, 3)
    with pytest.raises(NotAuthenticatedError):
        await authenticator.authenticate(None, CIMultiDictProxy(CIMultiDict[str]()))


async def test_without_an_api_only_system_masters_are_allowed() -> None:
    authorizer = Authorizer(None)
    attributes = request_attributes("GET", POD_PATH)
    assert not (await authorizer.authorize(UserInfo("eve", groups=("devs",)), attributes)).allowed
    assert (await authorizer.authorize(UserInfo("root", groups=("system:masters",)), attributes)).allowed


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/apis", Attributes("get", "/apis")),
        ("GET", "/openapi/v2", Attributes("get", "/openapi/v2")),
        (
            "GET",
            "/apis/custom.metrics.k8s.io/v1beta1",
            Attributes("get", "/apis/custom.metrics.k8s.io/v1beta1"),
        ),
        (
            "GET",
            "/apis/custom.metrics.k8s.io/v1beta2/nodes/node-a/gpu_utilization",
            Attributes(
                "get", "", True, "", "custom.metrics.k8s.io", "v1beta2", "nodes", "gpu_utilization", "node-a"
            ),
        ),
        (
            "GET",
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ml/metrics/gpu_utilization",
            Attributes(
                "get", "", True, "ml", "custom.metrics.k8s.io", "v1beta1", "metrics", "", "gpu_utilization"
            ),
        ),
        (
            "POST",
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ml/pods",
            Attributes("create", "", True, "ml", "custom.metrics.k8s.io", "v1beta1", "pods"),
        ),
        (
            "GET",
            "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ml/pods",
            Attributes("list", "", True, "ml", "custom.metrics.k8s.io", "v1beta1", "pods"),
        ),
    ],
)
def test_request_attributes(method: str, path: str, expected: Attributes) -> None:
    assert request_attributes(method, path) == replace(expected, path=path)

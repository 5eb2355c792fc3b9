"""A fake Kubernetes API over real HTTPS: TokenReview, SubjectAccessReview and the authentication ConfigMap.

Answers in the JSON shapes of ``authentication.k8s.io/v1`` and ``authorization.k8s.io/v1``, so the real
``kubernetes`` client parses them; every request is recorded so tests can count calls (caching).
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

AccessRule = Callable[[dict[str, Any]], bool]

CONFIGMAP_PATH = "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"


def _review(kind: str, api_version: str, body: dict[str, Any], status: dict[str, Any]) -> web.Response:
    """A review created, as the API server answers one: the request's spec with its outcome."""
    return web.json_response(
        {
            "kind": kind,
            "apiVersion": api_version,
            "metadata": {"creationTimestamp": None},
            "spec": body["spec"],
            "status": status,
        },
        status=201,
    )


@dataclass
class FakeKubeApi:
    """Tokens to users, access rules over SubjectAccessReview specs, and the ConfigMap's data."""

    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    rules: list[AccessRule] = field(default_factory=list)
    configmap: dict[str, str] | None = None
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for recorded, _ in self.requests if recorded == kind)

    async def token_review(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(("TokenReview", body))
        user = self.tokens.get(body["spec"]["token"])
        status: dict[str, Any] = (
            {"authenticated": True, "user": user} if user else {"error": "token not found"}
        )
        if not user:
            status["authenticated"] = False
        return _review("TokenReview", "authentication.k8s.io/v1", body, status)

    async def access_review(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(("SubjectAccessReview", body))
        allowed = any(rule(body["spec"]) for rule in self.rules)
        status = {"allowed": True, "reason": "allowed by a test rule"} if allowed else {"allowed": False}
        return _review("SubjectAccessReview", "authorization.k8s.io/v1", body, status)

    async def read_configmap(self, request: web.Request) -> web.Response:
        self.requests.append(("ConfigMap", {}))
        if self.configmap is None:
            return web.json_response(
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "reason": "NotFound",
                    "code": 404,
                },
                status=404,
            )
        return web.json_response(
            {
                "kind": "ConfigMap",
                "apiVersion": "v1",
                "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system"},
                "data": self.configmap,
            }
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/apis/authentication.k8s.io/v1/tokenreviews", self.token_review)
        app.router.add_post("/apis/authorization.k8s.io/v1/subjectaccessreviews", self.access_review)
        app.router.add_get(CONFIGMAP_PATH, self.read_configmap)
        return app


def allow(user: str, *, verb: str = "get", resource: str = "", path: str = "") -> AccessRule:
    """A rule: ``user`` may ``verb`` a ``resource`` of custom.metrics.k8s.io, or the non-resource ``path``."""

    def rule(spec: dict[str, Any]) -> bool:
        if spec.get("user") != user:
            return False
        if "resourceAttributes" in spec:
            attributes = spec["resourceAttributes"]
            return (
                bool(resource)
                and attributes["group"] == "custom.metrics.k8s.io"
                and attributes["verb"] == verb
                and resource in ("*", attributes["resource"])
            )
        attributes = spec["nonResourceAttributes"]
        return bool(path) and attributes["verb"] == verb and attributes["path"] == path

    return rule


def write_kubeconfig(path: Path, server: str, ca_file: Path, *, bearer: str = "adapter") -> Path:
    """A kubeconfig for the adapter's own calls to ``server``."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
        "users": [{"name": "adapter", "user": {"token": bearer}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "adapter"}}],
        "current-context": "fake",
    }
    path.write_text(yaml.safe_dump(document))
    return path


async def start(api: FakeKubeApi, context: ssl.SSLContext) -> tuple[web.AppRunner, str]:
    """Serve ``api`` on a free loopback port in the running loop; returns the runner and the URL."""
    runner = web.AppRunner(api.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"https://127.0.0.1:{port}"


@contextmanager
def serve_in_thread(api: FakeKubeApi, context: ssl.SSLContext) -> Iterator[str]:
    """Serve ``api`` from a background thread (for tests that are not async); yields the URL."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-kube-api", daemon=True)
    thread.start()
    runner, url = asyncio.run_coroutine_threadsafe(start(api, context), loop).result(timeout=10)
    try:
        yield url
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()

"""A minimal Kubernetes API server over HTTP on loopback: pod, node and namespace list/watch, deployments.

Enough for the real ``kubernetes`` client and its ``Watch`` to run against: JSON lists with a
resourceVersion and ``continue`` tokens, chunked watch streams that end at ``timeoutSeconds``, and a
410 ERROR event for a watch from a compacted resourceVersion, as kube-apiserver sends it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import web

from tests.fakes.threaded_app import ThreadedApp
from tests.support import free_port

KINDS = {"pods": "Pod", "nodes": "Node", "namespaces": "Namespace"}


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "reason": reason,
        "message": message,
    }


class FakeApiServer(ThreadedApp):
    """Serves from its own thread; mutate it from the test with ``apply``, ``delete`` and ``expire``."""

    def __init__(self) -> None:
        super().__init__()
        self.port = free_port()
        self.version = 1000
        self.objects: dict[str, dict[tuple[str, str], dict[str, Any]]] = {kind: {} for kind in KINDS}
        self.events: dict[str, list[tuple[int, str, dict[str, Any]]]] = {kind: [] for kind in KINDS}
        self.compacted = dict.fromkeys(KINDS, 0)
        self.lists = dict.fromkeys(KINDS, 0)
        self.watches = dict.fromkeys(KINDS, 0)
        self.deployments: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def apply(
        self,
        kind: str,
        name: str,
        namespace: str = "",
        labels: dict[str, str] | None = None,
        owner_uid: str = "",
    ) -> None:
        with self._lock:
            self.version += 1
            meta: dict[str, Any] = {
                "name": name,
                "uid": f"uid-{namespace}-{name}",
                "resourceVersion": str(self.version),
                "labels": labels or {},
            }
            if namespace:
                meta["namespace"] = namespace
            if owner_uid:
                meta["ownerReferences"] = [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "ReplicaSet",
                        "name": "owner",
                        "uid": owner_uid,
                        "controller": True,
                    }
                ]
            obj = {"apiVersion": "v1", "kind": KINDS[kind], "metadata": meta}
            event = "MODIFIED" if (namespace, name) in self.objects[kind] else "ADDED"
            self.objects[kind][(namespace, name)] = obj
            self.events[kind].append((self.version, event, obj))

    def delete(self, kind: str, name: str, namespace: str = "") -> None:
        with self._lock:
            self.version += 1
            obj = self.objects[kind].pop((namespace, name))
            obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self.version)}}
            self.events[kind].append((self.version, "DELETED", obj))

    def expire(self, kind: str) -> None:
        """Compact history: a watch from any version seen so far gets a 410 ERROR event."""
        with self._lock:
            self.version += 1
            self.compacted[kind] = self.version

    async def _collection(self, request: web.Request) -> web.StreamResponse:
        kind = request.match_info["kind"]
        if request.query.get("watch") in ("true", "1"):
            return await self._watch(request, kind)
        with self._lock:
            self.lists[kind] += 1
            items = [obj for _, obj in sorted(self.objects[kind].items())]
            version = self.version
        start = int(request.query.get("continue") or 0)
        limit = int(request.query.get("limit") or len(items) or 1)
        token = str(start + limit) if start + limit < len(items) else None
        body = {
            "apiVersion": "v1",
            "kind": f"{KINDS[kind]}List",
            "metadata": {"resourceVersion": str(version), **({"continue": token} if token else {})},
            "items": items[start : start + limit],
        }
        return web.json_response(body)

    async def _watch(self, request: web.Request, kind: str) -> web.StreamResponse:
        version = int(request.query.get("resourceVersion") or 0)
        deadline = self._loop.time() + float(request.query.get("timeoutSeconds") or 5)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        with self._lock:
            self.watches[kind] += 1
        while self._loop.time() < deadline:
            with self._lock:
                if version < self.compacted[kind]:
                    gone = status(410, "Expired", f"too old resource version: {version}")
                    pending: list[dict[str, Any]] = [{"type": "ERROR", "object": gone}]
                else:
                    pending = [
                        {"type": event, "object": obj} for rv, event, obj in self.events[kind] if rv > version
                    ]
                    version = max([version, *(rv for rv, _, _ in self.events[kind])])
            for event in pending:
                await response.write(json.dumps(event).encode() + b"\n")
            if pending and pending[0]["type"] == "ERROR":
                break
            await asyncio.sleep(0.05)
        await response.write_eof()
        return response

    async def _deployment(self, request: web.Request) -> web.Response:
        key = (request.match_info["namespace"], request.match_info["name"])
        found = self.deployments.get(key)
        if found is None:
            return web.json_response(
                status(404, "NotFound", f'deployments.apps "{key[1]}" not found'), status=404
            )
        return web.json_response(found)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v1/{kind:pods|nodes|namespaces}", self._collection)
        app.router.add_get("/apis/apps/v1/namespaces/{namespace}/deployments/{name}", self._deployment)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

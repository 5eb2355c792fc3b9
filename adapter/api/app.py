"""The aiohttp application: discovery, OpenAPI, health and metric routes over one backend and resolver."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from adapter.api import discovery, external, openapi
from adapter.api.documents import metric_value_list
from adapter.api.limits import MAX_IN_FLIGHT, in_flight_limit
from adapter.api.metrics import MetricRequest, parse_path, parse_query_selector, read_metric
from adapter.api.resources import GROUP, VERSIONS
from adapter.api.status import JSON_TYPE, encode, json_response, not_found, status_errors
from adapter.backends.base import ExternalMetricsBackend, MetricsBackend
from adapter.objects.base import ObjectResolver
from adapter.selectors import EVERYTHING

BACKEND = web.AppKey("backend", MetricsBackend)
RESOLVER = web.AppKey("resolver", ObjectResolver)
READY_NOTES = web.AppKey("ready_notes", tuple[str, ...])
OPENAPI_V3 = web.AppKey("openapi_v3", dict[str, bytes])
EXTRA_GROUPS = web.AppKey("extra_groups", tuple[dict[str, Any], ...])


def _version(request: web.Request) -> str:
    version = request.match_info["version"]
    if version not in VERSIONS:
        raise not_found()
    return version


async def group_list(request: web.Request) -> web.Response:
    extra_groups: tuple[dict[str, Any], ...] = request.app[EXTRA_GROUPS]
    return json_response(discovery.api_group_list(extra_groups))


async def group(request: web.Request) -> web.Response:
    return json_response(discovery.api_group())


async def resource_list(request: web.Request) -> web.Response:
    return json_response(discovery.api_resource_list(_version(request), request.app[BACKEND].metrics()))


async def metric(request: web.Request) -> web.Response:
    version = _version(request)
    tail = request.match_info["tail"]
    if not tail:
        return await resource_list(request)
    kind, namespace, name, metric_name = parse_path(tail.split("/"))
    query = request.rel_url.query
    metric_request = MetricRequest(
        kind=kind,
        namespace=namespace,
        name=name,
        metric=metric_name,
        label_selector=parse_query_selector("labelSelector", query.get("labelSelector")) or EVERYTHING,
        metric_selector=parse_query_selector("metricLabelSelector", query.get("metricLabelSelector")),
    )
    values = await read_metric(metric_request, request.app[BACKEND], request.app[RESOLVER])
    body = metric_value_list(version, values, metric_request.metric_selector)
    return web.Response(body=body, content_type=JSON_TYPE)


async def openapi_v2(request: web.Request) -> web.Response:
    return json_response(openapi.swagger_v2())


async def openapi_v3_root(request: web.Request) -> web.Response:
    hashes = {version: openapi.document_hash(body) for version, body in request.app[OPENAPI_V3].items()}
    return json_response(openapi.openapi_v3_root(hashes))


async def openapi_v3_group_version(request: web.Request) -> web.Response:
    body = request.app[OPENAPI_V3].get(request.match_info["version"])
    if body is None:
        raise not_found()
    digest = openapi.document_hash(body)
    headers = {"ETag": f'"{digest}"'}
    if request.rel_url.query.get("hash") == digest:
        headers["Cache-Control"] = "public, immutable"
    return web.Response(body=body, content_type=JSON_TYPE, headers=headers)


async def alive(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def ready(request: web.Request) -> web.Response:
    waiting = [
        name
        for name, component in (("backend", request.app[BACKEND]), ("resolver", request.app[RESOLVER]))
        if not component.ready
    ]
    notes = "".join(f"{note}\n" for note in request.app[READY_NOTES])
    if waiting:
        return web.Response(status=503, text=notes + "".join(f"[-]{name} not ready\n" for name in waiting))
    return web.Response(text=notes + "ok")


async def _start(app: web.Application) -> None:
    await app[BACKEND].start()
    await app[RESOLVER].start()


async def _close(app: web.Application) -> None:
    await app[RESOLVER].close()
    await app[BACKEND].close()


def build_app(
    backend: MetricsBackend,
    resolver: ObjectResolver,
    *,
    middlewares: Sequence[Middleware] = (),
    ready_notes: Sequence[str] = (),
    max_in_flight: int = MAX_IN_FLIGHT,
) -> web.Application:
    """The adapter's application; ``middlewares`` (authentication) run inside the Status error mapping
    and the in-flight limit."""
    app = web.Application(middlewares=[status_errors, in_flight_limit(max_in_flight), *middlewares])
    app[BACKEND] = backend
    app[RESOLVER] = resolver
    app[READY_NOTES] = tuple(ready_notes)
    app[OPENAPI_V3] = {version: encode(openapi.openapi_v3_group_version(version)) for version in VERSIONS}
    app[EXTRA_GROUPS] = ()
    if isinstance(backend, ExternalMetricsBackend):
        external.register(app, backend)
        app[EXTRA_GROUPS] = (external.group_list_entry(),)
    app.on_startup.append(_start)
    app.on_cleanup.append(_close)
    base = f"/apis/{GROUP}"
    app.router.add_get("/apis", group_list)
    app.router.add_get(base, group)
    app.router.add_get(f"{base}/", group)
    app.router.add_get(f"{base}/{{version}}", resource_list)
    app.router.add_get(f"{base}/{{version}}/{{tail:.*}}", metric)
    app.router.add_get("/openapi/v2", openapi_v2)
    app.router.add_get("/openapi/v3", openapi_v3_root)
    app.router.add_get(f"/openapi/v3/apis/{GROUP}/{{version}}", openapi_v3_group_version)
    app.router.add_get("/healthz", alive)
    app.router.add_get("/livez", alive)
    app.router.add_get("/readyz", ready)
    return app

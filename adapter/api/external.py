"""``external.metrics.k8s.io/v1beta1``: discovery and reads of external metrics from a backend that has them.

Paths as k8s.io/metrics defines them: ``/apis/external.metrics.k8s.io/v1beta1`` lists the metrics
(each ``namespaced``, kind ``ExternalMetricValueList``) and
``/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}?labelSelector=...`` reads one.
The documents follow ``pkg/apis/external_metrics/v1beta1/types.go``; errors are the same Status
answers as the custom metrics API's. ``register`` adds the routes to the adapter's application, so
they sit behind the same authentication middlewares.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from adapter.api.documents import rfc3339
from adapter.api.metrics import parse_query_selector
from adapter.api.status import json_response, not_found, unavailable
from adapter.backends.base import BackendUnavailable, ExternalMetricsBackend, ExternalSample, UnknownMetric
from adapter.quantity import format_quantity

GROUP = "external.metrics.k8s.io"
VERSION = "v1beta1"
EXTERNAL_BACKEND = web.AppKey("external_backend", ExternalMetricsBackend)


def _group_version() -> dict[str, str]:
    return {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}


def group_list_entry() -> dict[str, Any]:
    """This group's entry in ``/apis`` (``APIGroupList.groups``)."""
    return {"name": GROUP, "versions": [_group_version()], "preferredVersion": _group_version()}


def api_group() -> dict[str, Any]:
    """The ``APIGroup`` document."""
    return {"kind": "APIGroup", "apiVersion": "v1", **group_list_entry()}


def api_resource_list(metrics: Sequence[str]) -> dict[str, Any]:
    """``APIResourceList``: one namespaced resource per external metric."""
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{GROUP}/{VERSION}",
        "resources": [
            {
                "name": name,
                "singularName": "",
                "namespaced": True,
                "kind": "ExternalMetricValueList",
                "verbs": ["get"],
            }
            for name in sorted(metrics)
        ],
    }


def external_metric_value_list(metric: str, samples: Sequence[ExternalSample]) -> dict[str, Any]:
    """``ExternalMetricValueList``; ``window`` is left out when the value is not computed over one."""
    items = []
    for sample in sorted(samples, key=lambda s: sorted(s.labels.items())):
        item: dict[str, Any] = {
            "metricName": metric,
            "metricLabels": dict(sorted(sample.labels.items())),
            "timestamp": rfc3339(sample.timestamp),
        }
        if sample.window_seconds is not None:
            item["window"] = sample.window_seconds
        item["value"] = format_quantity(sample.value)
        items.append(item)
    return {
        "kind": "ExternalMetricValueList",
        "apiVersion": f"{GROUP}/{VERSION}",
        "metadata": {},
        "items": items,
    }


async def group(request: web.Request) -> web.Response:
    return json_response(api_group())


async def resources(request: web.Request) -> web.Response:
    return json_response(api_resource_list(request.app[EXTERNAL_BACKEND].external_metrics()))


async def read(request: web.Request) -> web.Response:
    namespace, metric = request.match_info["namespace"], request.match_info["metric"]
    selector = parse_query_selector("labelSelector", request.rel_url.query.get("labelSelector"))
    backend = request.app[EXTERNAL_BACKEND]
    if metric not in backend.external_metrics():
        raise not_found(f"the server could not find the external metric {metric}")
    try:
        samples = await backend.external_values(metric, namespace, selector)
    except UnknownMetric:
        raise not_found(f"the server could not find the external metric {metric}") from None
    except BackendUnavailable as exc:
        raise unavailable(
            f"unable to fetch external metric {metric} in namespace {namespace}: {exc}"
        ) from None
    return json_response(external_metric_value_list(metric, samples))


def register(app: web.Application, backend: ExternalMetricsBackend) -> None:
    """Serve the external metrics API of ``backend`` from ``app`` (before ``app`` starts)."""
    app[EXTERNAL_BACKEND] = backend
    base = f"/apis/{GROUP}"
    app.router.add_get(base, group)
    app.router.add_get(f"{base}/", group)
    app.router.add_get(f"{base}/{VERSION}", resources)
    app.router.add_get(f"{base}/{VERSION}/namespaces/{{namespace}}/{{metric}}", read)

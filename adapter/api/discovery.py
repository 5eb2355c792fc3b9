"""Discovery documents: the group list, the group, and each version's resource list."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adapter.api.resources import ALL_KINDS, GROUP, PREFERRED_VERSION, VERSIONS, serves
from adapter.backends.base import MetricDescriptor


def _group_version(version: str) -> dict[str, str]:
    return {"groupVersion": f"{GROUP}/{version}", "version": version}


def api_group() -> dict[str, Any]:
    """The ``APIGroup`` for custom.metrics.k8s.io with both versions, v1beta1 preferred as upstream."""
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": GROUP,
        "versions": [_group_version(v) for v in VERSIONS],
        "preferredVersion": _group_version(PREFERRED_VERSION),
    }


def api_group_list(extra_groups: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """``/apis``: custom.metrics.k8s.io, then any other group served beside it (external metrics)."""
    group = api_group()
    del group["kind"], group["apiVersion"]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group, *extra_groups]}


def api_resource_list(version: str, metrics: Sequence[MetricDescriptor]) -> dict[str, Any]:
    """``APIResourceList`` with one ``<resource>/<metric>`` entry per metric and resource it is served for."""
    resources = [
        {
            "name": f"{kind.qualified}/{metric.name}",
            "singularName": "",
            "namespaced": kind.namespaced,
            "kind": "MetricValueList",
            "verbs": ["get"],
        }
        for metric in sorted(metrics, key=lambda m: m.name)
        for kind in ALL_KINDS
        if serves(kind, metric.resources)
    ]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{GROUP}/{version}",
        "resources": resources,
    }

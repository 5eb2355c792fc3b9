"""OpenAPI v2 and v3 documents describing the metric paths, enough for kube-apiserver to merge them.

Referenced shared types (ObjectReference, LabelSelector, Quantity, Time) are inlined rather than
referenced by name, so the aggregator's merge never meets two different definitions of one name.
"""

from __future__ import annotations

import hashlib
from typing import Any

from adapter import __version__
from adapter.api.resources import GROUP, VERSIONS

_DEFINITION_PREFIX = "io.k8s.metrics.pkg.apis.custom_metrics"

_STRING = {"type": "string"}
_OBJECT_REFERENCE = {
    "description": "ObjectReference names the object a metric describes.",
    "type": "object",
    "properties": {
        name: {"type": "string"}
        for name in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
    },
}
_LABEL_SELECTOR = {
    "description": "A label selector is a label query over a set of resources.",
    "type": "object",
    "properties": {
        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "operator"],
                "properties": {
                    "key": _STRING,
                    "operator": _STRING,
                    "values": {"type": "array", "items": _STRING},
                },
            },
        },
    },
}
_QUANTITY = {"description": "A resource.Quantity in canonical form, e.g. 1500m.", "type": "string"}
_TIME = {"description": "RFC 3339 time in UTC.", "type": "string", "format": "date-time"}
_LIST_META = {"type": "object", "properties": {"selfLink": _STRING, "resourceVersion": _STRING}}


def _name(version: str, kind: str) -> str:
    return f"{_DEFINITION_PREFIX}.{version}.{kind}"


def _schemas(version: str, ref: str) -> dict[str, Any]:
    """Definitions of ``version``'s types; ``ref`` is the prefix of a reference (v2 and v3 differ)."""
    value_properties: dict[str, Any] = {
        "kind": _STRING,
        "apiVersion": _STRING,
        "describedObject": _OBJECT_REFERENCE,
    }
    required = ["describedObject", "timestamp", "value"]
    schemas: dict[str, Any] = {}
    if version == "v1beta1":
        value_properties |= {
            "metricName": _STRING,
            "timestamp": _TIME,
            "window": {"type": "integer", "format": "int64"},
            "value": _QUANTITY,
            "selector": _LABEL_SELECTOR,
        }
        required.insert(1, "metricName")
    else:
        schemas[_name(version, "MetricIdentifier")] = {
            "description": "MetricIdentifier identifies a metric by name and, optionally, selector",
            "type": "object",
            "required": ["name"],
            "properties": {"name": _STRING, "selector": _LABEL_SELECTOR},
        }
        value_properties |= {
            "metric": {"$ref": f"{ref}{_name(version, 'MetricIdentifier')}"},
            "timestamp": _TIME,
            "windowSeconds": {"type": "integer", "format": "int64"},
            "value": _QUANTITY,
        }
        required.insert(1, "metric")
    schemas[_name(version, "MetricValue")] = {
        "description": "MetricValue is the metric value for some object",
        "type": "object",
        "required": required,
        "properties": value_properties,
        "x-kubernetes-group-version-kind": [{"group": GROUP, "kind": "MetricValue", "version": version}],
    }
    schemas[_name(version, "MetricValueList")] = {
        "description": "MetricValueList is a list of values for a given metric for some set of objects",
        "type": "object",
        "required": ["items"],
        "properties": {
            "kind": _STRING,
            "apiVersion": _STRING,
            "metadata": _LIST_META,
            "items": {"type": "array", "items": {"$ref": f"{ref}{_name(version, 'MetricValue')}"}},
        },
        "x-kubernetes-group-version-kind": [{"group": GROUP, "kind": "MetricValueList", "version": version}],
    }
    return schemas


def _path_parameter(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "type": "string"}


def _query_parameter(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "type": "string", "uniqueItems": True}


_PARAMETERS = {
    "namespace": _path_parameter("namespace", "object name and auth scope, such as for teams and projects"),
    "resource": _path_parameter("resource", "the name of the resource"),
    "name": _path_parameter("name", "name of the described resource, or * for all matching labelSelector"),
    "metric": _path_parameter("metric", "the name of the metric"),
    "labelSelector": _query_parameter(
        "labelSelector", "A selector to restrict the list of described objects."
    ),
    "metricLabelSelector": _query_parameter(
        "metricLabelSelector", "A selector to restrict the series the metric is computed from."
    ),
}


def _routes(version: str) -> dict[str, tuple[str, list[str]]]:
    """Each path with its operation prefix and the names of its parameters in ``_PARAMETERS``."""
    base = f"/apis/{GROUP}/{version}"
    selectors = ["labelSelector", "metricLabelSelector"]
    return {
        f"{base}/{{resource}}/{{name}}/{{metric}}": ("list", ["resource", "name", "metric", *selectors]),
        f"{base}/namespaces/{{namespace}}/{{resource}}/{{name}}/{{metric}}": (
            "listNamespaced",
            ["namespace", "resource", "name", "metric", *selectors],
        ),
        f"{base}/namespaces/{{name}}/metrics/{{metric}}": ("readNamespace", ["name", "metric", *selectors]),
    }


def _list_extensions(version: str) -> dict[str, Any]:
    return {
        "x-kubernetes-action": "list",
        "x-kubernetes-group-version-kind": {"group": GROUP, "kind": "MetricValueList", "version": version},
    }


def _operation_id(prefix: str, version: str) -> str:
    return f"{prefix}CustomMetrics{version.capitalize()}MetricValueList"


def swagger_v2() -> dict[str, Any]:
    """``/openapi/v2``: Swagger 2.0 for both versions."""
    paths: dict[str, Any] = {}
    definitions: dict[str, Any] = {}
    for version in VERSIONS:
        ref = "#/definitions/"
        definitions |= _schemas(version, ref)
        for path, (prefix, names) in _routes(version).items():
            paths[path] = {
                "get": {
                    "description": "list custom metrics describing an object or objects",
                    "consumes": ["*/*"],
                    "produces": ["application/json"],
                    "schemes": ["https"],
                    "tags": [f"customMetrics_{version}"],
                    "operationId": _operation_id(prefix, version),
                    "responses": {
                        "200": {
                            "description": "OK",
                            "schema": {"$ref": f"{ref}{_name(version, 'MetricValueList')}"},
                        },
                        "401": {"description": "Unauthorized"},
                    },
                    **_list_extensions(version),
                },
                "parameters": [_PARAMETERS[n] for n in names],
            }
    return {
        "swagger": "2.0",
        "info": {"title": "kube-gpu-metrics adapter", "version": f"v{__version__}"},
        "paths": paths,
        "definitions": definitions,
    }


def _v3_parameter(parameter: dict[str, Any]) -> dict[str, Any]:
    converted = {k: v for k, v in parameter.items() if k not in ("type", "uniqueItems")}
    converted["schema"] = {"type": "string", **({"uniqueItems": True} if "uniqueItems" in parameter else {})}
    return converted


def openapi_v3_group_version(version: str) -> dict[str, Any]:
    """``/openapi/v3/apis/custom.metrics.k8s.io/<version>``: OpenAPI 3.0 for one version."""
    ref = "#/components/schemas/"
    paths: dict[str, Any] = {}
    for path, (prefix, names) in _routes(version).items():
        list_ref = {"$ref": f"{ref}{_name(version, 'MetricValueList')}"}
        paths[path] = {
            "get": {
                "tags": [f"customMetrics_{version}"],
                "description": "list custom metrics describing an object or objects",
                "operationId": _operation_id(prefix, version),
                "responses": {
                    "200": {"description": "OK", "content": {"application/json": {"schema": list_ref}}},
                    "401": {"description": "Unauthorized"},
                },
                **_list_extensions(version),
            },
            "parameters": [_v3_parameter(_PARAMETERS[n]) for n in names],
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "kube-gpu-metrics adapter", "version": f"v{__version__}"},
        "paths": paths,
        "components": {"schemas": _schemas(version, ref)},
    }


def document_hash(document: bytes) -> str:
    """The content hash kube-apiserver puts in ``serverRelativeURL`` and the ETag."""
    return hashlib.sha512(document).hexdigest().upper()


def openapi_v3_root(hashes: dict[str, str]) -> dict[str, Any]:
    """``/openapi/v3``: where each group-version document lives, with its hash for caching."""
    return {
        "paths": {
            f"apis/{GROUP}/{version}": {
                "serverRelativeURL": f"/openapi/v3/apis/{GROUP}/{version}?hash={digest}"
            }
            for version, digest in hashes.items()
        }
    }

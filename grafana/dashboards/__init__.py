"""The dashboards, by the file name their JSON is committed under."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from grafana.dashboards import cluster, hpa, node, workload

DASHBOARDS: dict[str, Callable[[], dict[str, Any]]] = {
    "cluster-overview": cluster.build,
    "node-detail": node.build,
    "workloads": workload.build,
    "hpa-experiment": hpa.build,
}

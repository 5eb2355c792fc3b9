"""Objects for local use without a cluster: whatever pods, nodes and namespaces the backend has seen.

Labels of such objects are unknown, so a selector matches only if it matches an empty label set: the
empty selector, and selectors made only of ``!=``, ``notin`` and ``!key``. Workloads need the
Kubernetes API: a named one is never found and ``*`` selects none.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import NoReturn, Protocol

from adapter.backends.base import ObjectKey
from adapter.objects.base import WORKLOAD_RESOURCES, ObjectNotFound
from adapter.selectors import Selector

RESOURCES = frozenset({"pods", "nodes", "namespaces"})


class SeenObjects(Protocol):
    """A source of object names, such as ``DirectBackend.seen_objects``."""

    def seen_objects(self, resource: str) -> Collection[ObjectKey]:
        """Objects of ``resource`` with data now; nodes and namespaces have an empty namespace."""
        ...


class StaticResolver:
    """Resolves names against what ``source`` has seen; no labels, no workloads."""

    def __init__(self, source: SeenObjects) -> None:
        self._source = source

    @property
    def ready(self) -> bool:
        return True

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def _seen(self, resource: str) -> Collection[ObjectKey]:
        if resource not in RESOURCES:
            raise ObjectNotFound(f"resource {resource!r} is not known without a Kubernetes API")
        return self._source.seen_objects(resource)

    async def select(self, resource: str, namespace: str, selector: Selector) -> Sequence[ObjectKey]:
        if resource in WORKLOAD_RESOURCES:
            return []
        if not selector.matches({}):
            return []
        seen = self._seen(resource)
        if resource == "pods" and namespace:
            return sorted(key for key in seen if key.namespace == namespace)
        return sorted(seen)

    async def get(self, resource: str, namespace: str, name: str) -> ObjectKey:
        if resource in WORKLOAD_RESOURCES:
            return await self._no_workloads(resource, namespace, name)
        key = ObjectKey(namespace if resource == "pods" else "", name)
        if key not in self._seen(resource):
            where = f" in namespace {namespace!r}" if resource == "pods" else ""
            raise ObjectNotFound(f"{resource} {name!r}{where} has no GPU data in any scraped exporter")
        return key

    async def workload_pods(self, resource: str, namespace: str, name: str) -> Sequence[ObjectKey]:
        return await self._no_workloads(resource, namespace, name)

    @staticmethod
    async def _no_workloads(resource: str, namespace: str, name: str) -> NoReturn:
        raise ObjectNotFound(
            f"{resource} {namespace}/{name}: workloads need the Kubernetes API; "
            "this adapter runs without one (static objects, local mode)"
        )

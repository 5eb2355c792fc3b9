"""Objects for local use without a cluster: whatever pods, nodes and namespaces the backend has seen.

Labels of such objects are unknown, so a selector matches only if it matches an empty label set: the
empty selector, and selectors made only of ``!=``, ``notin`` and ``!key``. Workloads need the
Kubernetes API: a named one is never found and ``*`` selects none.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from operator import attrgetter
from typing import NoReturn, Protocol

from adapter.backends.base import ObjectKey
from adapter.objects.base import WORKLOAD_RESOURCES, ObjectNotFound
from adapter.selectors import Selector

RESOURCES = frozenset({"pods", "nodes", "namespaces"})
# ObjectKey's own order, without its generated comparison methods: thousands of pods sort several
# times faster by attribute.
BY_NAME = attrgetter("namespace", "name")


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

    def _objects(self, resource: str, namespace: str) -> list[ObjectKey]:
        if resource not in RESOURCES:
            raise ObjectNotFound(f"resource {resource!r} is not known without a Kubernetes API")
        seen = self._source.seen_objects(resource)
        if resource == "pods" and namespace:
            seen = [key for key in seen if key.namespace == namespace]
        return sorted(seen, key=BY_NAME)

    async def select(self, resource: str, namespace: str, selector: Selector) -> Sequence[ObjectKey]:
        if resource in WORKLOAD_RESOURCES:
            return []
        objects = self._objects(resource, namespace)
        return objects if selector.matches({}) else []

    async def get(self, resource: str, namespace: str, name: str) -> ObjectKey:
        if resource in WORKLOAD_RESOURCES:
            return await self._no_workloads(resource, namespace, name)
        key = ObjectKey(namespace if resource == "pods" else "", name)
        if key not in self._objects(resource, namespace):
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

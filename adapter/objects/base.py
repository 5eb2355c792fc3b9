"""The object seam: which pods, nodes, namespaces and workload pods exist and match a selector."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from adapter.backends.base import ObjectKey
from adapter.selectors import Selector

# Resources whose pods ``ObjectResolver.workload_pods`` resolves.
WORKLOAD_RESOURCES = frozenset({"deployments", "statefulsets", "replicasets", "daemonsets", "jobs"})


class ObjectNotFound(LookupError):
    """The named object does not exist; the API answers 404."""


class ObjectResolver(Protocol):
    """Resolves names and selectors to objects; blocking Kubernetes calls stay off the event loop."""

    @property
    def ready(self) -> bool:
        """Whether the first list has completed."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def select(self, resource: str, namespace: str, selector: Selector) -> Sequence[ObjectKey]:
        """Objects of ``resource`` (pods, nodes, namespaces, workloads) in ``namespace`` that match."""
        ...

    async def get(self, resource: str, namespace: str, name: str) -> ObjectKey:
        """The named object; raises ``ObjectNotFound``."""
        ...

    async def workload_pods(self, resource: str, namespace: str, name: str) -> Sequence[ObjectKey]:
        """The pods of a workload (``deployments``, ``statefulsets``, ``replicasets``, ``jobs``, ...).

        Raises ``ObjectNotFound`` when the workload does not exist.
        """
        ...

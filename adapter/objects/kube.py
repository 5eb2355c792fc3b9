"""Objects from the Kubernetes API: cached list/watch of pods, nodes and namespaces; workloads on demand.

A workload's pods are found through ownerReferences, as its controller finds them: pods whose
controlling owner is the workload (statefulsets, replicasets, daemonsets, jobs), or is one of the
ReplicaSets the Deployment controls. The workload's ``spec.selector`` alone would also pick up pods of
another workload with overlapping labels and orphaned pods the controller no longer counts; the
selector is used only to narrow the ReplicaSet list before the owner check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from adapter.backends.base import BackendUnavailable, ObjectKey
from adapter.objects.base import WORKLOAD_RESOURCES, ObjectNotFound
from adapter.objects.listwatch import CachedObject, ListWatchCache, Watch
from adapter.selectors import Selector

NOT_FOUND = 404
# resource -> (API group, client method suffix): read_namespaced_<suffix>, list_namespaced_<suffix>.
_WORKLOADS = {
    "deployments": ("apps", "deployment"),
    "statefulsets": ("apps", "stateful_set"),
    "replicasets": ("apps", "replica_set"),
    "daemonsets": ("apps", "daemon_set"),
    "jobs": ("batch", "job"),
}


def label_selector_text(selector: Any) -> str:
    """A ``V1LabelSelector`` in the query-string syntax; the empty string selects everything."""
    parts = [f"{key}={value}" for key, value in sorted((selector.match_labels or {}).items())]
    for expression in selector.match_expressions or []:
        values = ",".join(expression.values or [])
        operator = expression.operator
        if operator == "In":
            parts.append(f"{expression.key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{expression.key} notin ({values})")
        elif operator == "Exists":
            parts.append(expression.key)
        elif operator == "DoesNotExist":
            parts.append(f"!{expression.key}")
        else:
            raise ValueError(f"unknown label selector operator {operator!r}")
    return ",".join(parts)


def _default_watch() -> Watch:
    result: Watch = watch.Watch()  # type: ignore[no-untyped-call]
    return result


class KubeResolver:
    """``ObjectResolver`` over the official ``kubernetes`` client; blocking calls run in threads."""

    def __init__(
        self,
        core_api: Any,
        apps_api: Any,
        batch_api: Any,
        *,
        watch_factory: Callable[[], Watch] = _default_watch,
        watch_timeout: int = 300,
        request_timeout: float = 10.0,
        list_timeout: float = 60.0,
        page_size: int = 500,
        sync_timeout: float = 5.0,
        retry_seconds: float = 1.0,
    ) -> None:
        self._apis = {"apps": apps_api, "batch": batch_api}
        self._timeout = request_timeout
        self._sync_timeout = sync_timeout
        self._caches = {
            resource: ListWatchCache(
                resource,
                func,
                watch_factory,
                watch_timeout=watch_timeout,
                request_timeout=list_timeout,
                retry_seconds=retry_seconds,
                page_size=page_size,
            )
            for resource, func in (
                ("pods", core_api.list_pod_for_all_namespaces),
                ("nodes", core_api.list_node),
                ("namespaces", core_api.list_namespace),
            )
        }

    @property
    def ready(self) -> bool:
        return all(cache.synced for cache in self._caches.values())

    async def start(self) -> None:
        for cache in self._caches.values():
            cache.start()

    async def close(self) -> None:
        await asyncio.gather(*(asyncio.to_thread(cache.stop) for cache in self._caches.values()))

    async def _cache(self, resource: str) -> ListWatchCache:
        cache = self._caches.get(resource)
        if cache is None:
            raise ObjectNotFound(f"resource {resource!r} is not served (pods, nodes, namespaces)")
        if not cache.synced and not await asyncio.to_thread(cache.wait_synced, self._sync_timeout):
            detail = f": {cache.last_error}" if cache.last_error else ""
            raise BackendUnavailable(
                f"the {resource} cache has not synced with the Kubernetes API yet{detail}"
            )
        return cache

    @staticmethod
    def _key(obj: CachedObject) -> ObjectKey:
        return ObjectKey(obj.namespace, obj.name)

    async def select(self, resource: str, namespace: str, selector: Selector) -> Sequence[ObjectKey]:
        if resource in WORKLOAD_RESOURCES:
            return await self._select_workloads(resource, namespace, selector)
        cache = await self._cache(resource)
        return sorted(
            self._key(obj)
            for obj in cache.items()
            if (resource != "pods" or not namespace or obj.namespace == namespace)
            and selector.matches(obj.labels)
        )

    async def get(self, resource: str, namespace: str, name: str) -> ObjectKey:
        if resource in WORKLOAD_RESOURCES:
            workload = await self._read_workload(resource, namespace, name)
            return ObjectKey(workload.metadata.namespace or namespace, workload.metadata.name)
        cache = await self._cache(resource)
        obj = cache.get(namespace if resource == "pods" else "", name)
        if obj is None:
            where = f" in namespace {namespace!r}" if resource == "pods" else ""
            raise ObjectNotFound(f"{resource} {name!r} not found{where}")
        return self._key(obj)

    async def workload_pods(self, resource: str, namespace: str, name: str) -> Sequence[ObjectKey]:
        workload = await self._read_workload(resource, namespace, name)
        owners = {workload.metadata.uid}
        if resource == "deployments":
            owners = await self._replica_sets_of(workload, namespace)
        pods = await self._cache("pods")
        return sorted(
            self._key(pod)
            for pod in pods.items()
            if pod.namespace == namespace and pod.controller_uid in owners
        )

    def _workload_method(self, resource: str, verb: str) -> Callable[..., Any]:
        if resource not in _WORKLOADS:
            raise ObjectNotFound(
                f"resource {resource!r} is not a supported workload ({', '.join(sorted(_WORKLOADS))})"
            )
        group, suffix = _WORKLOADS[resource]
        method: Callable[..., Any] = getattr(self._apis[group], f"{verb}_namespaced_{suffix}")
        return method

    async def _read_workload(self, resource: str, namespace: str, name: str) -> Any:
        read = self._workload_method(resource, "read")
        return await self._call(read, name, namespace, what=f"{resource} {namespace}/{name}")

    async def _select_workloads(self, resource: str, namespace: str, selector: Selector) -> list[ObjectKey]:
        # Matched here with the matcher cached objects use, so every kind of object selects alike.
        listing = await self._call(
            self._workload_method(resource, "list"), namespace, what=f"{resource} in namespace {namespace}"
        )
        return sorted(
            ObjectKey(item.metadata.namespace or namespace, item.metadata.name)
            for item in listing.items or []
            if selector.matches(item.metadata.labels or {})
        )

    async def _replica_sets_of(self, deployment: Any, namespace: str) -> set[str]:
        listing = await self._call(
            self._apis["apps"].list_namespaced_replica_set,
            namespace,
            label_selector=label_selector_text(deployment.spec.selector),
            what=f"replicasets of deployments {namespace}/{deployment.metadata.name}",
        )
        uid = deployment.metadata.uid
        return {
            rs.metadata.uid
            for rs in listing.items or []
            if any(ref.controller and ref.uid == uid for ref in rs.metadata.owner_references or [])
        }

    async def _call(self, func: Callable[..., Any], *args: Any, what: str, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(func, *args, _request_timeout=self._timeout, **kwargs)
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                raise ObjectNotFound(f"{what} not found") from exc
            raise BackendUnavailable(
                f"reading {what} from the Kubernetes API: {exc.status} {exc.reason}"
            ) from exc
        except Exception as exc:  # connection failures of any kind mean "cannot answer now"
            raise BackendUnavailable(f"reading {what} from the Kubernetes API: {exc}") from exc

"""An in-memory stand-in for the parts of the ``kubernetes`` client the object resolver calls.

Objects are the client's own models (``V1Pod``, ``V1Deployment``, ...). Lists carry a resourceVersion;
watches replay events after the version asked for and raise ``ApiException(410)`` (or send an ERROR
event, as older API servers and clients do) when that version has been compacted away.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from kubernetes.client import (
    V1Container,
    V1DaemonSet,
    V1DaemonSetList,
    V1DaemonSetSpec,
    V1Deployment,
    V1DeploymentList,
    V1DeploymentSpec,
    V1Job,
    V1JobList,
    V1JobSpec,
    V1LabelSelector,
    V1LabelSelectorRequirement,
    V1ListMeta,
    V1Namespace,
    V1NamespaceList,
    V1Node,
    V1NodeList,
    V1ObjectMeta,
    V1OwnerReference,
    V1Pod,
    V1PodList,
    V1PodSpec,
    V1PodTemplateSpec,
    V1ReplicaSet,
    V1ReplicaSetList,
    V1ReplicaSetSpec,
    V1StatefulSet,
    V1StatefulSetList,
    V1StatefulSetSpec,
)
from kubernetes.client.exceptions import ApiException

KINDS = {"list_pod_for_all_namespaces": "pods", "list_node": "nodes", "list_namespace": "namespaces"}
LISTS = {"pods": V1PodList, "nodes": V1NodeList, "namespaces": V1NamespaceList}


def meta(
    name: str, namespace: str | None = None, labels: dict[str, str] | None = None, owner: Any = None
) -> V1ObjectMeta:
    refs = None
    if owner is not None:
        refs = [
            V1OwnerReference(
                api_version="apps/v1",
                kind=owner.kind or "ReplicaSet",
                name=owner.metadata.name,
                uid=owner.metadata.uid,
                controller=True,
                block_owner_deletion=True,
            )
        ]
    return V1ObjectMeta(
        name=name, namespace=namespace, labels=labels, uid=f"uid-{namespace}-{name}", owner_references=refs
    )


def pod(namespace: str, name: str, labels: dict[str, str] | None = None, owner: Any = None) -> V1Pod:
    return V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=meta(name, namespace, labels, owner),
        spec=V1PodSpec(containers=[V1Container(name="main", image="busybox")], node_name="node-a"),
    )


def node(name: str, labels: dict[str, str] | None = None) -> V1Node:
    return V1Node(api_version="v1", kind="Node", metadata=meta(name, None, labels))


def namespace(name: str, labels: dict[str, str] | None = None) -> V1Namespace:
    return V1Namespace(api_version="v1", kind="Namespace", metadata=meta(name, None, labels))


def selector(
    match_labels: dict[str, str], *expressions: tuple[str, str, list[str] | None]
) -> V1LabelSelector:
    return V1LabelSelector(
        match_labels=match_labels,
        match_expressions=[
            V1LabelSelectorRequirement(key=k, operator=op, values=v) for k, op, v in expressions
        ]
        or None,
    )


def template(labels: dict[str, str]) -> V1PodTemplateSpec:
    return V1PodTemplateSpec(
        metadata=V1ObjectMeta(labels=labels), spec=V1PodSpec(containers=[V1Container(name="main")])
    )


def deployment(ns: str, name: str, match: V1LabelSelector) -> V1Deployment:
    return V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=meta(name, ns),
        spec=V1DeploymentSpec(selector=match, template=template(match.match_labels or {})),
    )


def replica_set(ns: str, name: str, labels: dict[str, str], owner: Any = None) -> V1ReplicaSet:
    return V1ReplicaSet(
        api_version="apps/v1",
        kind="ReplicaSet",
        metadata=meta(name, ns, labels, owner),
        spec=V1ReplicaSetSpec(selector=selector(labels), template=template(labels)),
    )


def stateful_set(ns: str, name: str) -> V1StatefulSet:
    return V1StatefulSet(
        api_version="apps/v1",
        kind="StatefulSet",
        metadata=meta(name, ns),
        spec=V1StatefulSetSpec(selector=selector({"app": name}), template=template({"app": name})),
    )


def daemon_set(ns: str, name: str) -> V1DaemonSet:
    return V1DaemonSet(
        api_version="apps/v1",
        kind="DaemonSet",
        metadata=meta(name, ns),
        spec=V1DaemonSetSpec(selector=selector({"app": name}), template=template({"app": name})),
    )


def job(ns: str, name: str) -> V1Job:
    return V1Job(
        api_version="batch/v1", kind="Job", metadata=meta(name, ns), spec=V1JobSpec(template=template({}))
    )


class FakeCluster:
    """Objects, a resourceVersion counter and an event log per watched kind."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._version = 100
        self.objects: dict[str, dict[tuple[str, str], Any]] = {kind: {} for kind in LISTS}
        self.events: dict[str, list[tuple[int, str, Any]]] = {kind: [] for kind in LISTS}
        self.compacted: dict[str, int] = dict.fromkeys(LISTS, 0)
        self.expire_as_event: dict[str, bool] = dict.fromkeys(LISTS, False)
        self.list_calls: dict[str, list[dict[str, Any]]] = {kind: [] for kind in LISTS}
        self.list_failure: Exception | None = None
        self.workloads: dict[tuple[str, str, str], Any] = {}
        self.replica_sets: list[V1ReplicaSet] = []
        self.replica_set_selectors: list[str] = []
        self.watch_calls: list[tuple[str, dict[str, Any]]] = []

    def _key(self, obj: Any) -> tuple[str, str]:
        return (obj.metadata.namespace or "", obj.metadata.name)

    def apply(self, kind: str, obj: Any, event: str | None = None) -> None:
        with self._cond:
            self._version += 1
            obj.metadata.resource_version = str(self._version)
            key = self._key(obj)
            if event is None:
                event = "MODIFIED" if key in self.objects[kind] else "ADDED"
            if event == "DELETED":
                self.objects[kind].pop(key, None)
            else:
                self.objects[kind][key] = obj
            self.events[kind].append((self._version, event, obj))
            self._cond.notify_all()

    def expire(self, kind: str, as_event: bool = False) -> None:
        """Compact history: watches from any version seen so far get 410 Gone."""
        with self._cond:
            self._version += 1
            self.compacted[kind] = self._version
            self.expire_as_event[kind] = as_event
            self._cond.notify_all()

    def listing(self, kind: str, kwargs: dict[str, Any]) -> Any:
        """One page of a list from ``_continue`` (here a plain offset; opaque on a real server)."""
        with self._cond:
            self.list_calls[kind].append(kwargs)
            if self.list_failure is not None:
                raise self.list_failure
            items = [obj for _, obj in sorted(self.objects[kind].items())]
            start = int(kwargs.get("_continue") or 0)
            limit = kwargs.get("limit") or len(items)
            token = str(start + limit) if start + limit < len(items) else None
            return LISTS[kind](
                api_version="v1",
                metadata=V1ListMeta(resource_version=str(self._version), _continue=token),
                items=items[start : start + limit],
            )

    def stream(
        self, kind: str, version: int, timeout: float, stopped: Callable[[], bool]
    ) -> Iterator[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not stopped() and time.monotonic() < deadline:
            with self._cond:
                if version < self.compacted[kind]:
                    if self.expire_as_event[kind]:
                        status = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
                        pending: list[dict[str, Any]] = [
                            {"type": "ERROR", "object": status, "raw_object": status}
                        ]
                    else:
                        raise ApiException(status=410, reason="Gone")
                else:
                    pending = [
                        {
                            "type": event,
                            "object": obj,
                            "raw_object": {"metadata": {"name": obj.metadata.name}},
                        }
                        for rv, event, obj in self.events[kind]
                        if rv > version
                    ]
                    if pending:
                        version = max(rv for rv, _, _ in self.events[kind])
                    else:
                        self._cond.wait(0.05)
            yield from pending
            if pending and pending[0]["type"] == "ERROR":
                return


class FakeCoreV1Api:
    def __init__(self, cluster: FakeCluster) -> None:
        self._cluster = cluster

    def list_pod_for_all_namespaces(self, **kwargs: Any) -> Any:
        return self._cluster.listing("pods", kwargs)

    def list_node(self, **kwargs: Any) -> Any:
        return self._cluster.listing("nodes", kwargs)

    def list_namespace(self, **kwargs: Any) -> Any:
        return self._cluster.listing("namespaces", kwargs)


class _Workloads:
    def __init__(self, cluster: FakeCluster) -> None:
        self._cluster = cluster

    def _read(self, kind: str, name: str, namespace: str) -> Any:
        found = self._cluster.workloads.get((kind, namespace, name))
        if found is None:
            raise ApiException(status=404, reason="Not Found")
        return found

    def _list(self, kind: str, namespace: str) -> list[Any]:
        return [
            obj
            for (k, ns, _), obj in sorted(self._cluster.workloads.items())
            if k == kind and ns == namespace
        ]


class FakeAppsV1Api(_Workloads):
    def read_namespaced_deployment(self, name: str, namespace: str, **_: Any) -> Any:
        return self._read("deployments", name, namespace)

    def read_namespaced_stateful_set(self, name: str, namespace: str, **_: Any) -> Any:
        return self._read("statefulsets", name, namespace)

    def read_namespaced_replica_set(self, name: str, namespace: str, **_: Any) -> Any:
        return self._read("replicasets", name, namespace)

    def read_namespaced_daemon_set(self, name: str, namespace: str, **_: Any) -> Any:
        return self._read("daemonsets", name, namespace)

    def list_namespaced_deployment(self, namespace: str, **_: Any) -> V1DeploymentList:
        return V1DeploymentList(items=self._list("deployments", namespace))

    def list_namespaced_stateful_set(self, namespace: str, **_: Any) -> V1StatefulSetList:
        return V1StatefulSetList(items=self._list("statefulsets", namespace))

    def list_namespaced_daemon_set(self, namespace: str, **_: Any) -> V1DaemonSetList:
        return V1DaemonSetList(items=self._list("daemonsets", namespace))

    def list_namespaced_replica_set(
        self, namespace: str, label_selector: str | None = None, **_: Any
    ) -> V1ReplicaSetList:
        if label_selector is not None:
            self._cluster.replica_set_selectors.append(label_selector)
        owned = [
            rs for rs in self._cluster.replica_sets if rs.metadata and rs.metadata.namespace == namespace
        ]
        return V1ReplicaSetList(items=owned + self._list("replicasets", namespace))


class FakeBatchV1Api(_Workloads):
    def read_namespaced_job(self, name: str, namespace: str, **_: Any) -> Any:
        return self._read("jobs", name, namespace)

    def list_namespaced_job(self, namespace: str, **_: Any) -> V1JobList:
        return V1JobList(items=self._list("jobs", namespace))


class FakeWatch:
    """``kubernetes.watch.Watch`` over a ``FakeCluster``."""

    def __init__(self, cluster: FakeCluster) -> None:
        self._cluster = cluster
        self._stopped = False

    def stream(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        kind = KINDS[func.__name__]
        self._cluster.watch_calls.append((kind, kwargs))
        return self._cluster.stream(
            kind, int(kwargs["resource_version"]), float(kwargs["timeout_seconds"]), lambda: self._stopped
        )

    def stop(self) -> None:
        self._stopped = True

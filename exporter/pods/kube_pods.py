"""Optional pod metadata from the Kubernetes API: a node-scoped pod watch in a background thread.

The watch lists pods with ``spec.nodeName=<node>``, then watches from the list's resourceVersion,
resuming from the last version seen whenever a watch ends (server timeout, dropped connection) and
listing again when the API server answers 410 Gone (the version fell out of its window). The
scrape path only reads the resulting maps; it never calls the API.

Owners are resolved one step up where the immediate owner is an implementation detail:
ReplicaSet -> Deployment and Job -> CronJob, by reading the owner object (cached). Without read
access to those the immediate owner is reported.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes import client, config, watch

from exporter.collectors.errors import ErrorCounts
from exporter.pods.model import PodMeta

log = logging.getLogger(__name__)

MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
GONE = 410
# Owners whose own controller is what users name their workload by.
_PARENT_KINDS = {"ReplicaSet": "Deployment", "Job": "CronJob"}
_OWNER_CACHE_LIMIT = 4096


class WatchLike(Protocol):
    """The part of ``kubernetes.watch.Watch`` the loop uses."""

    resource_version: str | None

    def stream(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class KubeApis:
    """The official client's ``CoreV1Api``, ``AppsV1Api`` and ``BatchV1Api``, and a watch factory."""

    core: Any
    apps: Any
    batch: Any
    new_watch: Callable[[], WatchLike]


def connect(kubeconfig: str = "") -> KubeApis:
    """API objects from a kubeconfig file, or from the pod's service account when ``kubeconfig`` is empty."""
    if kubeconfig:
        api_client = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    else:
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        api_client = client.ApiClient(configuration)
    return KubeApis(
        core=client.CoreV1Api(api_client),
        apps=client.AppsV1Api(api_client),
        batch=client.BatchV1Api(api_client),
        new_watch=watch.Watch,
    )


def _status_of(error: BaseException) -> int | None:
    status = getattr(error, "status", None)
    return status if isinstance(status, int) else None


def _controller(references: Sequence[Any] | None) -> Any | None:
    references = list(references or ())
    return next((r for r in references if r.controller), references[0] if references else None)


def container_ids(pod: Any) -> dict[str, str]:
    """Runtime container ID (scheme stripped) -> container name, from every kind of container status."""
    status = pod.status
    found: dict[str, str] = {}
    if status is None:
        return found
    for statuses in (
        status.container_statuses,
        status.init_container_statuses,
        status.ephemeral_container_statuses,
    ):
        for container in statuses or ():
            if container.container_id:
                found[str(container.container_id).partition("://")[2] or str(container.container_id)] = str(
                    container.name
                )
    return found


def pod_meta(pod: Any, owner: tuple[str, str], label_keys: Iterable[str]) -> PodMeta:
    """A ``V1Pod`` as the exporter needs it; ``owner`` is the resolved (kind, name)."""
    metadata = pod.metadata
    annotations = metadata.annotations or {}
    labels = metadata.labels or {}
    uid = str(metadata.uid)
    return PodMeta(
        uid=uid,
        namespace=str(metadata.namespace),
        name=str(metadata.name),
        cgroup_uid=str(annotations.get(MIRROR_ANNOTATION) or uid),
        containers=container_ids(pod),
        owner_kind=owner[0],
        owner_name=owner[1],
        labels={key: str(labels[key]) for key in label_keys if key in labels},
    )


class OwnerResolver:
    """(namespace, kind, name) of a pod's owner -> the workload's (kind, name), cached."""

    def __init__(self, apis: KubeApis, *, request_timeout: float, errors: ErrorCounts | None = None) -> None:
        self._apis = apis
        self._timeout = request_timeout
        self._errors = errors
        self._cache: dict[tuple[str, str, str], tuple[str, str]] = {}
        self._warned = False

    def resolve(self, namespace: str, pod: Any) -> tuple[str, str]:
        reference = _controller(pod.metadata.owner_references)
        if reference is None:
            return "", ""
        kind, name = str(reference.kind), str(reference.name)
        if kind not in _PARENT_KINDS:
            return kind, name
        key = (namespace, kind, name)
        if key not in self._cache:
            if len(self._cache) >= _OWNER_CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = self._read_parent(namespace, kind, name)
        return self._cache[key]

    def _read_parent(self, namespace: str, kind: str, name: str) -> tuple[str, str]:
        read = (
            self._apis.apps.read_namespaced_replica_set
            if kind == "ReplicaSet"
            else self._apis.batch.read_namespaced_job
        )
        try:
            owner_object = read(name, namespace, _request_timeout=self._timeout)
        except Exception as error:  # noqa: BLE001 - any failure leaves the immediate owner, which is still true
            if self._errors is not None:
                self._errors.add("pods")
            if not self._warned:
                log.warning(
                    "cannot read pod owners; reporting the immediate owner",
                    extra={
                        "owner_kind": kind,
                        "namespace": namespace,
                        "owner": name,
                        "status": _status_of(error),
                        "error": str(error).splitlines()[0] if str(error) else type(error).__name__,
                    },
                )
                self._warned = True
            return kind, name
        parent = _controller(owner_object.metadata.owner_references)
        if parent is not None and parent.kind == _PARENT_KINDS[kind]:
            return str(parent.kind), str(parent.name)
        return kind, name


class KubePodDirectory:
    """A ``PodDirectory`` kept current by a pod watch; empty until the first list has answered."""

    def __init__(
        self,
        apis: KubeApis,
        node_name: str,
        *,
        label_keys: Sequence[str] = (),
        errors: ErrorCounts | None = None,
        request_timeout: float = 10.0,
        watch_timeout: int = 300,
        retry_initial: float = 1.0,
        retry_max: float = 60.0,
    ) -> None:
        if not node_name:
            raise ValueError("the Kubernetes API enrichment needs the node name (--node-name or NODE_NAME)")
        self._apis = apis
        self._selector = f"spec.nodeName={node_name}"
        self._label_keys = tuple(label_keys)
        self._errors = errors
        self._request_timeout = request_timeout
        self._watch_timeout = watch_timeout
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._owners = OwnerResolver(apis, request_timeout=request_timeout, errors=errors)
        self._lock = threading.Lock()
        self._pods: dict[str, PodMeta] = {}
        self._stop = threading.Event()
        self._watch: WatchLike | None = None
        self._thread: threading.Thread | None = None
        self._healthy: bool | None = None
        self.synced = threading.Event()

    def by_cgroup_uid(self, uid: str) -> PodMeta | None:
        with self._lock:
            pods = list(self._pods.values())
        return next((p for p in pods if uid in (p.cgroup_uid, p.uid)), None)

    def by_name(self, namespace: str, name: str) -> PodMeta | None:
        with self._lock:
            pods = list(self._pods.values())
        return next((p for p in pods if (p.namespace, p.name) == (namespace, name)), None)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="kube-pod-watch", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        watch = self._watch
        if watch is not None:
            watch.stop()
        if self._thread is not None:
            self._thread.join(timeout=1.0)

    def run(self) -> None:
        """List, then watch and resume, until closed; list again on 410 Gone, back off on other errors."""
        delay = self._retry_initial
        resource_version: str | None = None
        while not self._stop.is_set():
            try:
                if resource_version is None:
                    resource_version = self._list()
                started = time.monotonic()
                resource_version = self._watch_from(resource_version)
                delay = self._retry_initial
                if time.monotonic() - started < 1.0:
                    # A watch that ends at once (a proxy cutting streams) must not turn into a busy loop.
                    self._stop.wait(self._retry_initial)
            except Exception as error:  # noqa: BLE001 - the watch must outlive any API failure
                if _status_of(error) == GONE:
                    log.info("pod watch expired; listing again", extra={"resource_version": resource_version})
                    resource_version = None
                    continue
                self._unhealthy(error, delay)
                resource_version = None
                self._stop.wait(delay)
                delay = min(self._retry_max, delay * 2)

    def _list(self) -> str:
        listed = self._apis.core.list_pod_for_all_namespaces(
            field_selector=self._selector, _request_timeout=self._request_timeout
        )
        pods = {str(pod.metadata.uid): self._meta(pod) for pod in listed.items or ()}
        with self._lock:
            self._pods = pods
        self.synced.set()
        if self._healthy is not True:
            log.info("pod metadata from the Kubernetes API available", extra={"pods": len(pods)})
        self._healthy = True
        return str(listed.metadata.resource_version)

    def _watch_from(self, resource_version: str) -> str:
        """Apply events until the watch ends; the version to resume from."""
        watch = self._apis.new_watch()
        self._watch = watch
        events = watch.stream(
            self._apis.core.list_pod_for_all_namespaces,
            field_selector=self._selector,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout,
            _request_timeout=self._watch_timeout + 30,
        )
        for event in events:
            if self._stop.is_set():
                watch.stop()
                break
            kind, pod = event["type"], event["object"]
            if kind in ("ADDED", "MODIFIED"):
                meta = self._meta(pod)
                with self._lock:
                    self._pods[meta.uid] = meta
            elif kind == "DELETED":
                with self._lock:
                    self._pods.pop(str(pod.metadata.uid), None)
        return watch.resource_version or resource_version

    def _meta(self, pod: Any) -> PodMeta:
        owner = self._owners.resolve(str(pod.metadata.namespace), pod)
        return pod_meta(pod, owner, self._label_keys)

    def _unhealthy(self, error: BaseException, delay: float) -> None:
        if self._errors is not None:
            self._errors.add("pods")
        if self._healthy is not False:
            log.warning(
                "pod watch failed; pod metadata may be stale until it recovers",
                extra={
                    "status": _status_of(error),
                    "error": str(error).splitlines()[0] if str(error) else type(error).__name__,
                    "retry_in_seconds": delay,
                },
            )
        self._healthy = False

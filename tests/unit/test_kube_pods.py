"""The pod watch loop (list, watch, resume, relist on 410) and owner resolution, over stubbed API calls.

The stubs answer with the official client's own model objects (``V1Pod``, ``V1PodList``,
``V1ReplicaSet``, ``V1Job``) and raise its ``ApiException``, so the code sees what it sees in a cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from exporter.collectors.errors import ErrorCounts
from exporter.pods.kube_pods import KubeApis, KubePodDirectory, OwnerResolver, container_ids, pod_meta

NODE = "gpu-node-1"


def owner(kind: str, name: str, controller: bool = True) -> k8s.V1OwnerReference:
    api_version = {
        "ReplicaSet": "apps/v1",
        "Deployment": "apps/v1",
        "Job": "batch/v1",
        "CronJob": "batch/v1",
    }.get(kind, "v1")
    return k8s.V1OwnerReference(
        api_version=api_version, kind=kind, name=name, uid=f"uid-{name}", controller=controller
    )


def pod(
    name: str,
    uid: str,
    *,
    namespace: str = "team-a",
    owners: list[k8s.V1OwnerReference] | None = None,
    containers: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    resource_version: str = "1",
) -> k8s.V1Pod:
    statuses = [
        k8s.V1ContainerStatus(
            name=cname, container_id=cid, image="img", image_id="", ready=True, restart_count=0
        )
        for cname, cid in (containers or {}).items()
    ]
    return k8s.V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=k8s.V1ObjectMeta(
            name=name,
            namespace=namespace,
            uid=uid,
            labels=labels,
            annotations=annotations,
            owner_references=owners,
            resource_version=resource_version,
        ),
        spec=k8s.V1PodSpec(
            node_name=NODE, containers=[k8s.V1Container(name=c) for c in (containers or {"c": ""})]
        ),
        status=k8s.V1PodStatus(phase="Running", container_statuses=statuses or None),
    )


def pod_list(resource_version: str, *pods: k8s.V1Pod) -> k8s.V1PodList:
    return k8s.V1PodList(
        api_version="v1",
        kind="PodList",
        items=list(pods),
        metadata=k8s.V1ListMeta(resource_version=resource_version),
    )


class StubCore:
    """``CoreV1Api.list_pod_for_all_namespaces``: a scripted answer per list call."""

    def __init__(self, *answers: k8s.V1PodList | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def list_pod_for_all_namespaces(self, **kwargs: Any) -> k8s.V1PodList:
        self.calls.append(kwargs)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class StubReads:
    """``AppsV1Api.read_namespaced_replica_set`` and ``BatchV1Api.read_namespaced_job`` from a table."""

    def __init__(self, objects: dict[tuple[str, str], Any]) -> None:
        self.objects = objects
        self.calls: list[tuple[str, str]] = []

    def _read(self, name: str, namespace: str, **_: Any) -> Any:
        self.calls.append((namespace, name))
        found = self.objects.get((namespace, name))
        if isinstance(found, Exception):
            raise found
        if found is None:
            raise ApiException(status=404, reason="Not Found")
        return found

    def read_namespaced_replica_set(self, name: str, namespace: str, **kwargs: Any) -> Any:
        return self._read(name, namespace, **kwargs)

    def read_namespaced_job(self, name: str, namespace: str, **kwargs: Any) -> Any:
        return self._read(name, namespace, **kwargs)


Session = list[tuple[str, Any]] | Exception


class StubWatch:
    """``kubernetes.watch.Watch``: each ``stream`` plays the next session, tracking versions as it does."""

    def __init__(self, sessions: list[Session]) -> None:
        self.sessions = sessions
        self.on_exhausted: Callable[[], None] = lambda: None
        self.resource_version: str | None = None
        self.streams: list[dict[str, Any]] = []

    def __call__(self) -> StubWatch:
        return self

    def stream(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        assert func.__name__ == "list_pod_for_all_namespaces"
        self.streams.append(kwargs)
        self.resource_version = kwargs.get("resource_version")
        if not self.sessions:
            self.on_exhausted()
            return
        session = self.sessions.pop(0)
        if isinstance(session, Exception):
            raise session
        for kind, obj in session:
            if kind == "BOOKMARK":
                self.resource_version = obj["metadata"]["resourceVersion"]
            else:
                self.resource_version = obj.metadata.resource_version
            yield {"type": kind, "object": obj, "raw_object": {}}

    def stop(self) -> None:
        """The directory calls this on close."""


def directory(
    core: StubCore, sessions: list[Session], reads: StubReads | None = None, errors: ErrorCounts | None = None
) -> tuple[KubePodDirectory, StubWatch]:
    reads = reads or StubReads({})
    watch = StubWatch(sessions)
    made = KubePodDirectory(
        KubeApis(core=core, apps=reads, batch=reads, new_watch=watch),
        NODE,
        label_keys=["app"],
        errors=errors,
        retry_initial=0.01,
        retry_max=0.02,
    )
    watch.on_exhausted = made.close
    return made, watch


def test_lists_then_watches_resumes_and_relists_on_gone() -> None:
    a = pod("a", "uid-a", resource_version="100")
    b = pod("b", "uid-b", resource_version="101", labels={"app": "web", "secret": "x"})
    c = pod("c", "uid-c", resource_version="300")
    core = StubCore(pod_list("100", a), pod_list("300", c))
    sessions: list[Session] = [
        [("ADDED", b), ("BOOKMARK", {"metadata": {"resourceVersion": "150"}})],  # ends: server timeout
        [("DELETED", pod("a", "uid-a", resource_version="160"))],
        ApiException(status=410, reason="Gone: too old resource version: 160 (250)"),
    ]
    made, watch = directory(core, sessions)
    made.run()
    assert [s["resource_version"] for s in watch.streams] == ["100", "150", "160", "300"]
    assert all(s["field_selector"] == f"spec.nodeName={NODE}" for s in watch.streams)
    assert all(s["allow_watch_bookmarks"] for s in watch.streams)
    assert [call["field_selector"] for call in core.calls] == [f"spec.nodeName={NODE}"] * 2
    # the relist replaced what the watch had built
    assert [made.by_cgroup_uid(uid) is not None for uid in ("uid-a", "uid-b", "uid-c")] == [
        False,
        False,
        True,
    ]


def test_events_update_the_directory() -> None:
    b = pod(
        "b",
        "uid-b",
        resource_version="101",
        labels={"app": "web", "secret": "x"},
        containers={"main": "containerd://" + "ab" * 32},
    )
    seen: dict[str, Any] = {}
    core = StubCore(pod_list("100"))
    made, watch = directory(core, [[("ADDED", b)]])

    def capture_then_close() -> None:
        seen["b"] = made.by_name("team-a", "b")
        seen["by_uid"] = made.by_cgroup_uid("uid-b")
        made.close()

    watch.on_exhausted = capture_then_close
    made.run()
    meta = seen["b"]
    assert meta is not None
    assert seen["by_uid"] == meta
    assert dict(meta.labels) == {"app": "web"}  # only allowlisted labels are kept
    assert dict(meta.containers) == {"ab" * 32: "main"}


def test_other_errors_back_off_and_list_again() -> None:
    errors = ErrorCounts()
    core = StubCore(ApiException(status=500, reason="etcd timeout"), pod_list("5", pod("a", "uid-a")))
    made, watch = directory(core, [], errors=errors)
    made.run()
    assert len(core.calls) == 2
    assert made.synced.is_set()
    assert errors.snapshot() == {("pods",): 1}
    assert watch.streams[0]["resource_version"] == "5"


def test_node_name_is_required() -> None:
    with pytest.raises(ValueError, match="node name"):
        KubePodDirectory(KubeApis(core=None, apps=None, batch=None, new_watch=lambda: StubWatch([])), "")


TEMPLATE = k8s.V1PodTemplateSpec(
    metadata=k8s.V1ObjectMeta(labels={"app": "x"}), spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="c")])
)


def replica_set(name: str, deployment: str | None) -> k8s.V1ReplicaSet:
    return k8s.V1ReplicaSet(
        api_version="apps/v1",
        kind="ReplicaSet",
        metadata=k8s.V1ObjectMeta(
            name=name,
            namespace="team-a",
            owner_references=[owner("Deployment", deployment)] if deployment else None,
        ),
        spec=k8s.V1ReplicaSetSpec(selector=k8s.V1LabelSelector(match_labels={"app": "x"}), template=TEMPLATE),
    )


def job(name: str, cronjob: str | None) -> k8s.V1Job:
    return k8s.V1Job(
        api_version="batch/v1",
        kind="Job",
        metadata=k8s.V1ObjectMeta(
            name=name, namespace="team-a", owner_references=[owner("CronJob", cronjob)] if cronjob else None
        ),
        spec=k8s.V1JobSpec(template=TEMPLATE),
    )


def resolver(
    objects: dict[tuple[str, str], Any], errors: ErrorCounts | None = None
) -> tuple[OwnerResolver, StubReads]:
    reads = StubReads(objects)
    return OwnerResolver(
        KubeApis(core=None, apps=reads, batch=reads, new_watch=lambda: StubWatch([])),
        request_timeout=5,
        errors=errors,
    ), reads


def test_owner_resolution_walks_one_step_up_and_caches() -> None:
    owners, reads = resolver(
        {
            ("team-a", "web-7d9f8"): replica_set("web-7d9f8", "web"),
            ("team-a", "bare-rs"): replica_set("bare-rs", None),
            ("team-a", "nightly-28391"): job("nightly-28391", "nightly"),
            ("team-a", "once"): job("once", None),
        }
    )
    cases = {
        "web-7d9f8-abcde": ([owner("ReplicaSet", "web-7d9f8")], ("Deployment", "web")),
        "web-7d9f8-fghij": ([owner("ReplicaSet", "web-7d9f8")], ("Deployment", "web")),
        "bare-rs-x": ([owner("ReplicaSet", "bare-rs")], ("ReplicaSet", "bare-rs")),
        "nightly-28391-q": ([owner("Job", "nightly-28391")], ("CronJob", "nightly")),
        "once-q": ([owner("Job", "once")], ("Job", "once")),
        "db-0": ([owner("StatefulSet", "db")], ("StatefulSet", "db")),
        "static": ([owner("Node", NODE)], ("Node", NODE)),
        "mixed": (
            [owner("Foo", "not-controller", controller=False), owner("DaemonSet", "ds")],
            ("DaemonSet", "ds"),
        ),
        "bare": (None, ("", "")),
    }
    for name, (references, expected) in cases.items():
        assert owners.resolve("team-a", pod(name, f"uid-{name}", owners=references)) == expected, name
    assert reads.calls.count(("team-a", "web-7d9f8")) == 1


def test_owner_resolution_without_read_access_reports_the_immediate_owner(
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors = ErrorCounts()
    forbidden = ApiException(status=403, reason="Forbidden")
    owners, _ = resolver({("team-a", "web-1"): forbidden, ("team-a", "web-2"): forbidden}, errors)
    assert owners.resolve("team-a", pod("p1", "u1", owners=[owner("ReplicaSet", "web-1")])) == (
        "ReplicaSet",
        "web-1",
    )
    assert owners.resolve("team-a", pod("p2", "u2", owners=[owner("ReplicaSet", "web-2")])) == (
        "ReplicaSet",
        "web-2",
    )
    assert errors.snapshot() == {("pods",): 2}
    assert len([r for r in caplog.records if "cannot read pod owners" in r.getMessage()]) == 1


def test_static_pods_are_found_by_their_manifest_hash() -> None:
    config_hash = "8e1f7c2b4a9d4e3f8b6c5d4e3f2a1b0c"
    mirror = pod(
        "etcd-gpu-node-1",
        "5f0c-mirror-uid",
        namespace="kube-system",
        owners=[owner("Node", NODE)],
        annotations={"kubernetes.io/config.mirror": config_hash, "kubernetes.io/config.source": "file"},
    )
    meta = pod_meta(mirror, ("Node", NODE), [])
    assert meta.cgroup_uid == config_hash
    assert meta.uid == "5f0c-mirror-uid"


def test_container_ids_cover_every_status_kind_and_runtime_scheme() -> None:
    made = pod("p", "u", containers={"main": "containerd://" + "a" * 64, "side": "cri-o://" + "b" * 64})
    assert made.status is not None
    made.status.init_container_statuses = [
        k8s.V1ContainerStatus(
            name="init",
            container_id="docker://" + "c" * 64,
            image="i",
            image_id="",
            ready=False,
            restart_count=0,
        ),
        k8s.V1ContainerStatus(
            name="waiting", container_id=None, image="i", image_id="", ready=False, restart_count=0
        ),
    ]
    assert container_ids(made) == {"a" * 64: "main", "b" * 64: "side", "c" * 64: "init"}
    assert container_ids(k8s.V1Pod(metadata=k8s.V1ObjectMeta(name="p"))) == {}

"""Object resolvers: the static one for local use, and the Kubernetes one over a faithful client stub."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator

import pytest
from kubernetes import client

from adapter.backends.base import BackendUnavailable, ObjectKey
from adapter.objects.base import ObjectNotFound, ObjectResolver
from adapter.objects.kube import KubeResolver, label_selector_text
from adapter.objects.static import StaticResolver
from adapter.selectors import EVERYTHING, parse_selector
from tests.fakes.fake_apiserver import FakeApiServer
from tests.fakes.kube_objects_api import (
    FakeAppsV1Api,
    FakeBatchV1Api,
    FakeCluster,
    FakeCoreV1Api,
    FakeWatch,
    daemon_set,
    deployment,
    job,
    namespace,
    node,
    pod,
    replica_set,
    selector,
    stateful_set,
)

# Static resolver.


class Seen:
    def __init__(self) -> None:
        self.objects = {
            "pods": {ObjectKey("ml", "train-0"), ObjectKey("web", "infer-0")},
            "nodes": {ObjectKey("", "node-a")},
            "namespaces": {ObjectKey("", "ml"), ObjectKey("", "web")},
        }

    def seen_objects(self, resource: str) -> Collection[ObjectKey]:
        return self.objects.get(resource, set())


async def test_static_resolver_serves_what_the_backend_has_seen() -> None:
    resolver: ObjectResolver = StaticResolver(Seen())
    await resolver.start()
    assert resolver.ready
    assert await resolver.select("pods", "ml", EVERYTHING) == [ObjectKey("ml", "train-0")]
    assert await resolver.select("pods", "", EVERYTHING) == [
        ObjectKey("ml", "train-0"),
        ObjectKey("web", "infer-0"),
    ]
    assert await resolver.select("nodes", "", EVERYTHING) == [ObjectKey("", "node-a")]
    assert await resolver.get("namespaces", "", "web") == ObjectKey("", "web")
    assert await resolver.get("pods", "ml", "train-0") == ObjectKey("ml", "train-0")
    with pytest.raises(ObjectNotFound, match="no GPU data"):
        await resolver.get("pods", "web", "train-0")
    with pytest.raises(ObjectNotFound):
        await resolver.select("services", "ml", EVERYTHING)
    await resolver.close()


@pytest.mark.parametrize(
    ("text", "matches"),
    [("", True), ("app!=x", True), ("app notin (a)", True), ("!app", True), ("app=x", False), ("app", False)],
)
async def test_static_resolver_objects_have_no_labels(text: str, matches: bool) -> None:
    found = await StaticResolver(Seen()).select("pods", "ml", parse_selector(text))
    assert bool(found) is matches


async def test_static_resolver_has_no_workloads() -> None:
    resolver = StaticResolver(Seen())
    assert await resolver.select("deployments", "ml", EVERYTHING) == []
    with pytest.raises(ObjectNotFound, match="workloads need the Kubernetes API"):
        await resolver.workload_pods("deployments", "ml", "train")
    with pytest.raises(ObjectNotFound, match="workloads need the Kubernetes API"):
        await resolver.get("jobs", "ml", "train")


# Kubernetes resolver.


def test_label_selector_text_covers_every_operator() -> None:
    text = label_selector_text(
        selector(
            {"app": "train", "tier": "gpu"},
            ("track", "In", ["a", "b"]),
            ("zone", "NotIn", ["z"]),
            ("gpu", "Exists", None),
            ("legacy", "DoesNotExist", None),
        )
    )
    assert text == "app=train,tier=gpu,track in (a,b),zone notin (z),gpu,!legacy"
    assert parse_selector(text).matches({"app": "train", "tier": "gpu", "track": "a", "gpu": ""})
    assert label_selector_text(selector({})) == ""


@pytest.fixture
def cluster() -> FakeCluster:
    c = FakeCluster()
    for name, labels in [("ml", {"team": "ml"}), ("web", {"team": "web"}), ("default", None)]:
        c.apply("namespaces", namespace(name, labels))
    c.apply("nodes", node("node-a", {"nvidia.com/gpu.present": "true"}))
    c.apply("nodes", node("node-b"))
    c.apply("pods", pod("ml", "train-0", {"app": "train"}))
    c.apply("pods", pod("ml", "notebook", {"app": "notebook"}))
    c.apply("pods", pod("web", "infer-0", {"app": "infer"}))
    return c


@pytest.fixture
async def resolver(cluster: FakeCluster) -> AsyncIterator[KubeResolver]:
    r = KubeResolver(
        FakeCoreV1Api(cluster),
        FakeAppsV1Api(cluster),
        FakeBatchV1Api(cluster),
        watch_factory=lambda: FakeWatch(cluster),
        watch_timeout=1,
        retry_seconds=0.05,
        sync_timeout=2,
    )
    await r.start()
    yield r
    await r.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("condition not met in time")
        await asyncio.sleep(0.02)


async def test_kube_resolver_selects_from_the_cached_lists(resolver: KubeResolver) -> None:
    assert await resolver.select("pods", "ml", parse_selector("app in (train,notebook)")) == [
        ObjectKey("ml", "notebook"),
        ObjectKey("ml", "train-0"),
    ]
    assert await resolver.select("pods", "ml", parse_selector("app=infer")) == []
    assert await resolver.select("pods", "", parse_selector("app=infer")) == [ObjectKey("web", "infer-0")]
    assert await resolver.select("nodes", "", parse_selector("nvidia.com/gpu.present=true")) == [
        ObjectKey("", "node-a")
    ]
    assert await resolver.select("namespaces", "", parse_selector("!team")) == [ObjectKey("", "default")]
    assert resolver.ready
    assert await resolver.get("pods", "web", "infer-0") == ObjectKey("web", "infer-0")
    assert await resolver.get("nodes", "", "node-b") == ObjectKey("", "node-b")
    with pytest.raises(ObjectNotFound, match="not found in namespace 'ml'"):
        await resolver.get("pods", "ml", "infer-0")
    with pytest.raises(ObjectNotFound):
        await resolver.select("services", "ml", EVERYTHING)


async def test_kube_resolver_follows_watch_events(cluster: FakeCluster, resolver: KubeResolver) -> None:
    await resolver.select("pods", "", EVERYTHING)
    cluster.apply("pods", pod("ml", "train-1", {"app": "train"}))
    cluster.apply("pods", pod("ml", "notebook", {"app": "train"}))
    cluster.apply("pods", pod("web", "infer-0"), event="DELETED")

    async def updated() -> bool:
        found = await resolver.select("pods", "", parse_selector("app=train"))
        everything = await resolver.select("pods", "", EVERYTHING)
        return len(found) == 3 and ObjectKey("web", "infer-0") not in everything

    await eventually(updated)
    _kind, kwargs = next(call for call in cluster.watch_calls if call[0] == "pods")
    assert kwargs["allow_watch_bookmarks"] is True
    assert kwargs["timeout_seconds"] == 1
    assert int(kwargs["resource_version"]) >= 100


@pytest.mark.parametrize("as_event", [False, True])
async def test_kube_resolver_relists_on_410_gone(
    cluster: FakeCluster, resolver: KubeResolver, as_event: bool
) -> None:
    await resolver.select("pods", "", EVERYTHING)
    lists_before = len(cluster.list_calls["pods"])
    # A change the watch never delivers (history compacted) must show up through the relist.
    cluster.objects["pods"].pop(("ml", "notebook"))
    cluster.expire("pods", as_event=as_event)

    async def relisted() -> bool:
        names = {key.name for key in await resolver.select("pods", "", EVERYTHING)}
        return len(cluster.list_calls["pods"]) > lists_before and "notebook" not in names

    await eventually(relisted)
    cluster.apply("pods", pod("ml", "after-relist"))

    async def watching_again() -> bool:
        return ObjectKey("ml", "after-relist") in await resolver.select("pods", "ml", EVERYTHING)

    await eventually(watching_again)


async def test_kube_resolver_lists_in_pages(cluster: FakeCluster) -> None:
    for i in range(7):
        cluster.apply("pods", pod("batch", f"p-{i}"))
    resolver = KubeResolver(
        FakeCoreV1Api(cluster),
        FakeAppsV1Api(cluster),
        FakeBatchV1Api(cluster),
        watch_factory=lambda: FakeWatch(cluster),
        page_size=3,
    )
    await resolver.start()
    try:
        assert len(await resolver.select("pods", "batch", EVERYTHING)) == 7
        pages = cluster.list_calls["pods"]
        assert [call.get("_continue") for call in pages] == [None, "3", "6", "9"][: len(pages)]
        assert len(pages) == 4
        assert {call["limit"] for call in pages} == {3}
    finally:
        await resolver.close()


async def test_kube_resolver_unsynced_is_unavailable_with_the_error(cluster: FakeCluster) -> None:
    cluster.list_failure = ConnectionError("connection refused")
    resolver = KubeResolver(
        FakeCoreV1Api(cluster),
        FakeAppsV1Api(cluster),
        FakeBatchV1Api(cluster),
        watch_factory=lambda: FakeWatch(cluster),
        retry_seconds=0.05,
        sync_timeout=0.3,
    )
    await resolver.start()
    try:
        assert not resolver.ready
        with pytest.raises(BackendUnavailable, match="connection refused"):
            await resolver.select("pods", "ml", EVERYTHING)
        cluster.list_failure = None

        async def synced() -> bool:
            return resolver.ready

        await eventually(synced)
        assert len(await resolver.select("pods", "ml", EVERYTHING)) == 2
    finally:
        await resolver.close()


async def test_deployment_pods_go_through_owned_replica_sets(
    cluster: FakeCluster, resolver: KubeResolver
) -> None:
    match = selector({"app": "train"})
    dep = deployment("ml", "train", match)
    cluster.workloads[("deployments", "ml", "train")] = dep
    current = replica_set("ml", "train-5d8f", {"app": "train"}, owner=dep)
    old = replica_set("ml", "train-77aa", {"app": "train"}, owner=dep)
    foreign = replica_set("ml", "other-1", {"app": "train"})
    cluster.replica_sets = [current, old, foreign]
    cluster.apply("pods", pod("ml", "train-5d8f-x", {"app": "train"}, owner=current))
    cluster.apply("pods", pod("ml", "train-77aa-y", {"app": "train"}, owner=old))
    cluster.apply("pods", pod("ml", "other-1-z", {"app": "train"}, owner=foreign))

    async def all_pods_seen() -> bool:
        return len(await resolver.select("pods", "ml", parse_selector("app=train"))) == 4

    await eventually(all_pods_seen)
    # train-0 matches the selector but no ReplicaSet of the Deployment owns it.
    assert await resolver.workload_pods("deployments", "ml", "train") == [
        ObjectKey("ml", "train-5d8f-x"),
        ObjectKey("ml", "train-77aa-y"),
    ]
    assert cluster.replica_set_selectors == ["app=train"]
    assert await resolver.get("deployments", "ml", "train") == ObjectKey("ml", "train")


@pytest.mark.parametrize(
    ("resource", "make"),
    [("statefulsets", stateful_set), ("replicasets", replica_set), ("daemonsets", daemon_set), ("jobs", job)],
)
async def test_other_workloads_own_their_pods_directly(
    cluster: FakeCluster, resolver: KubeResolver, resource: str, make: Callable[..., object]
) -> None:
    workload = make("ml", "w", {}) if resource == "replicasets" else make("ml", "w")
    cluster.workloads[(resource, "ml", "w")] = workload
    cluster.apply("pods", pod("ml", "w-0", owner=workload))
    cluster.apply("pods", pod("web", "w-0", owner=workload))

    async def seen() -> bool:
        return ObjectKey("ml", "w-0") in await resolver.select("pods", "ml", EVERYTHING)

    await eventually(seen)
    assert await resolver.workload_pods(resource, "ml", "w") == [ObjectKey("ml", "w-0")]


async def test_workloads_are_selected_by_their_labels(cluster: FakeCluster, resolver: KubeResolver) -> None:
    for name, labels in [("a", {"tier": "gpu"}), ("b", {"tier": "cpu"}), ("c", None)]:
        dep = deployment("ml", name, selector({"app": name}))
        assert dep.metadata is not None
        dep.metadata.labels = labels
        cluster.workloads[("deployments", "ml", name)] = dep
    cluster.workloads[("deployments", "web", "d")] = deployment("web", "d", selector({"app": "d"}))
    assert await resolver.select("deployments", "ml", parse_selector("tier")) == [
        ObjectKey("ml", "a"),
        ObjectKey("ml", "b"),
    ]
    assert await resolver.select("deployments", "ml", parse_selector("tier!=gpu")) == [
        ObjectKey("ml", "b"),
        ObjectKey("ml", "c"),
    ]
    assert await resolver.select("jobs", "ml", EVERYTHING) == []


async def test_missing_and_unsupported_workloads_are_not_found(resolver: KubeResolver) -> None:
    with pytest.raises(ObjectNotFound, match="deployments ml/absent not found"):
        await resolver.workload_pods("deployments", "ml", "absent")
    with pytest.raises(ObjectNotFound, match="jobs ml/absent not found"):
        await resolver.get("jobs", "ml", "absent")
    with pytest.raises(ObjectNotFound, match="not a supported workload"):
        await resolver.workload_pods("cronjobs", "ml", "nightly")


# The real client over HTTP.


@pytest.fixture
def apiserver() -> Iterator[FakeApiServer]:
    server = FakeApiServer().start()
    yield server
    server.stop()


async def test_kube_resolver_with_the_real_client_over_http(apiserver: FakeApiServer) -> None:
    for name in ("ml", "web"):
        apiserver.apply("namespaces", name)
    apiserver.apply("nodes", "node-a", labels={"gpu": "true"})
    for i in range(5):
        apiserver.apply("pods", f"train-{i}", "ml", {"app": "train"})
    configuration = client.Configuration()
    configuration.host = apiserver.url
    api_client = client.ApiClient(configuration)
    resolver = KubeResolver(
        client.CoreV1Api(api_client),
        client.AppsV1Api(api_client),
        client.BatchV1Api(api_client),
        watch_timeout=1,
        page_size=2,
        retry_seconds=0.05,
    )
    await resolver.start()
    try:
        assert len(await resolver.select("pods", "ml", parse_selector("app=train"))) == 5
        assert apiserver.lists["pods"] == 3  # pages of two
        assert await resolver.select("nodes", "", parse_selector("gpu")) == [ObjectKey("", "node-a")]

        apiserver.apply("pods", "infer-0", "web", {"app": "infer"})
        apiserver.delete("pods", "train-0", "ml")

        async def watched() -> bool:
            pods = await resolver.select("pods", "", EVERYTHING)
            return ObjectKey("web", "infer-0") in pods and ObjectKey("ml", "train-0") not in pods

        await eventually(watched)

        # A change lost with compacted history reaches the cache through the relist after 410.
        lists = apiserver.lists["pods"]
        apiserver.objects["pods"].pop(("ml", "train-1"))
        apiserver.expire("pods")

        async def relisted() -> bool:
            pods = await resolver.select("pods", "ml", EVERYTHING)
            return apiserver.lists["pods"] > lists and ObjectKey("ml", "train-1") not in pods

        await eventually(relisted)
        watches = apiserver.watches["pods"]

        async def resumed() -> bool:
            return apiserver.watches["pods"] > watches + 1

        await eventually(resumed)  # watch timeouts end streams; the cache resumes them

        with pytest.raises(ObjectNotFound, match="deployments ml/train not found"):
            await resolver.workload_pods("deployments", "ml", "train")
    finally:
        await resolver.close()
        api_client.close()  # type: ignore[no-untyped-call]

"""The direct backend: exposition parsing, the sample window, attribution rules, scraping over HTTP."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Collection, Iterator
from typing import Any

import pytest
from kubernetes.client import (
    DiscoveryV1EndpointPort,
    V1Endpoint,
    V1EndpointConditions,
    V1EndpointSlice,
    V1EndpointSliceList,
    V1ObjectMeta,
)

from adapter.backends import direct
from adapter.backends.attribution import (
    DeviceUse,
    Value,
    device_metric,
    group_metric,
    node_device_use,
    pod_device_use,
)
from adapter.backends.base import BackendUnavailable, ObjectKey, UnknownMetric
from adapter.backends.direct import INLINE_PARSE_LIMIT, DirectBackend
from adapter.backends.discovery import (
    DiscoveryError,
    EndpointSliceDiscovery,
    StaticTargets,
    Target,
    static_target,
)
from adapter.backends.exposition import ExpositionError, Sample, parse_exposition
from adapter.backends.window import SeriesWindow, WindowedSeries
from adapter.selectors import parse_selector
from tests.fakes.gpu_exposition import ExpositionServer, FakeGpu, exposition

GIB = 2**30
P1, P2, P3 = ("ml", "train-0", "main"), ("ml", "train-1", "main"), ("web", "infer-0", "server")


def series(name: str, value: float, ts: float = 100.0, **labels: str) -> WindowedSeries:
    return WindowedSeries(name, tuple(sorted(labels.items())), value, ts)


def device(name: str, value: float, gpu: str, holder: tuple[str, str, str] = ("", "", "")) -> WindowedSeries:
    ns, pod, container = holder
    return series(name, value, gpu=gpu, uuid=f"GPU-{gpu}", namespace=ns, pod=pod, container=container)


def per_container(name: str, value: float, gpu: str, holder: tuple[str, str, str]) -> WindowedSeries:
    ns, pod, container = holder
    return series(name, value, gpu=gpu, uuid=f"GPU-{gpu}", namespace=ns, pod=pod, container=container)


# Exposition.


def test_parse_exposition_keeps_only_wanted_families_and_unescapes_labels() -> None:
    text = exposition([FakeGpu("0", "GPU-0", 0.25, 1 * GIB, holders=[P1])], node="node-a")
    text += 'gpu_utilization_ratio{gpu="1",uuid="GPU-1",pod="a\\"b\\\\c\\nd"} 0.5\n'
    samples = parse_exposition(text, {"gpu_utilization_ratio", "kgm_build_info"})
    names = {s.name for s in samples}
    assert names == {"gpu_utilization_ratio", "kgm_build_info"}
    utilization = [s for s in samples if s.name == "gpu_utilization_ratio"]
    assert utilization[0].value == 0.25
    assert utilization[0].label("pod") == "train-0"
    assert utilization[1].label("pod") == 'a"b\\c\nd'
    assert next(s for s in samples if s.name == "kgm_build_info").label("node") == "node-a"


def test_parse_exposition_ignores_label_values_that_look_like_samples() -> None:
    # The fake exporter's node_load1 carries a label value spelling a wanted sample.
    samples = parse_exposition(exposition([]), {"gpu_utilization_ratio"})
    assert samples == []


def test_parse_exposition_drops_nan_and_reads_timestamps() -> None:
    text = 'gpu_memory_used_bytes{gpu="0"} NaN\ngpu_memory_total_bytes{gpu="0"} 8e+10 1700000000000\n'
    samples = parse_exposition(text, {"gpu_memory_used_bytes", "gpu_memory_total_bytes"})
    assert samples == [Sample("gpu_memory_total_bytes", (("gpu", "0"),), 8e10)]


def test_parse_exposition_rejects_malformed_wanted_lines() -> None:
    with pytest.raises(ExpositionError):
        parse_exposition('gpu_utilization_ratio{gpu="0" 0.5\n', {"gpu_utilization_ratio"})


# Window.


def test_window_means_recent_samples_and_forgets_old_ones() -> None:
    window = SeriesWindow(10)
    key = (("gpu", "0"),)
    for ts, value in [(0, 1.0), (5, 2.0), (10, 3.0), (15, 4.0)]:
        window.record(ts, [Sample("m", key, value)])
    [fresh] = window.fresh(15)
    assert fresh.mean == pytest.approx(3.0)
    assert fresh.last_timestamp == 15
    assert window.fresh(25.5) == []


def test_window_drops_series_missing_from_a_successful_scrape() -> None:
    window = SeriesWindow(60)
    window.record(0, [Sample("m", (("pod", "a"),), 1.0), Sample("m", (("pod", "b"),), 1.0)])
    window.record(5, [Sample("m", (("pod", "a"),), 3.0)])
    assert [(s.labels, s.mean) for s in window.fresh(5)] == [((("pod", "a"),), 2.0)]


# Attribution.


def test_exclusive_gpu_takes_the_device_series() -> None:
    uses = pod_device_use(
        [
            device("gpu_utilization_ratio", 0.6, "0", P1),
            device("gpu_memory_used_bytes", 4 * GIB, "0", P1),
            device("gpu_memory_total_bytes", 16 * GIB, "0", P1),
        ],
        "node-a",
    )
    [use] = uses[ObjectKey("ml", "train-0")]
    assert (use.utilization, use.memory_used, use.memory_total, use.node) == (
        0.6,
        4 * GIB,
        16 * GIB,
        "node-a",
    )
    assert device_metric("gpu_utilization", [use]) == Value(60.0, 100.0)
    assert device_metric("gpu_memory_utilization", [use]) == Value(25.0, 100.0)


def test_shared_gpu_uses_observed_container_series_when_present() -> None:
    uses = pod_device_use(
        [
            device("gpu_utilization_ratio", 0.9, "0"),
            device("gpu_memory_used_bytes", 10 * GIB, "0"),
            device("gpu_memory_total_bytes", 40 * GIB, "0"),
            series(
                "gpu_allocation_info",
                1,
                gpu="0",
                uuid="GPU-0",
                namespace="ml",
                pod="train-0",
                container="main",
            ),
            series(
                "gpu_allocation_info",
                1,
                gpu="0",
                uuid="GPU-0",
                namespace="ml",
                pod="train-1",
                container="main",
            ),
            per_container("gpu_container_utilization_ratio", 0.7, "0", P1),
            per_container("gpu_container_memory_used_bytes", 6 * GIB, "0", P1),
            per_container("gpu_container_memory_used_bytes", 3 * GIB, "0", P2),
        ],
        "node-a",
    )
    [first] = uses[ObjectKey("ml", "train-0")]
    [second] = uses[ObjectKey("ml", "train-1")]
    assert (first.utilization, first.memory_used) == (0.7, 6 * GIB)
    # Observed on the device and not seen for this pod: a real zero, not a guess.
    assert (second.utilization, second.memory_used) == (0.0, 3 * GIB)


def test_shared_gpu_without_observation_is_split_between_allocated_containers() -> None:
    uses = pod_device_use(
        [
            device("gpu_utilization_ratio", 0.9, "0"),
            device("gpu_memory_used_bytes", 9 * GIB, "0"),
            device("gpu_memory_total_bytes", 40 * GIB, "0"),
            series(
                "gpu_allocation_info", 1, gpu="0", uuid="GPU-0", namespace="ml", pod="train-0", container="a"
            ),
            series(
                "gpu_allocation_info", 1, gpu="0", uuid="GPU-0", namespace="ml", pod="train-0", container="b"
            ),
            series(
                "gpu_allocation_info", 1, gpu="0", uuid="GPU-0", namespace="web", pod="infer-0", container="s"
            ),
        ],
        "node-a",
    )
    [mine] = uses[ObjectKey("ml", "train-0")]
    [theirs] = uses[ObjectKey("web", "infer-0")]
    assert mine.utilization == pytest.approx(0.6)
    assert mine.memory_used == pytest.approx(6 * GIB)
    assert theirs.utilization == pytest.approx(0.3)
    assert theirs.memory_used == pytest.approx(3 * GIB)


def test_idle_gpus_and_unheld_devices_belong_to_no_pod_but_to_the_node() -> None:
    data = [device("gpu_utilization_ratio", 0.5, "0"), device("gpu_utilization_ratio", 0.1, "1", P3)]
    assert list(pod_device_use(data, "n")) == [ObjectKey("web", "infer-0")]
    assert device_metric("gpu_utilization", node_device_use(data, "n")) == Value(30.0, 100.0)


def test_node_counts_a_mig_gpu_as_its_instances() -> None:
    data = [
        series("gpu_info", 1, gpu="0", uuid="GPU-0", parent_uuid=""),
        series("gpu_memory_used_bytes", 30.0, gpu="0", uuid="GPU-0"),
        series("gpu_memory_total_bytes", 80.0, gpu="0", uuid="GPU-0"),
        series("gpu_info", 1, gpu="0/1/0", uuid="MIG-a", parent_uuid="GPU-0"),
        series(
            "gpu_memory_used_bytes", 10.0, gpu="0/1/0", uuid="MIG-a", namespace="ml", pod="p", container="c"
        ),
        series(
            "gpu_memory_total_bytes", 40.0, gpu="0/1/0", uuid="MIG-a", namespace="ml", pod="p", container="c"
        ),
        series("gpu_info", 1, gpu="0/2/0", uuid="MIG-b", parent_uuid="GPU-0"),
        series("gpu_memory_used_bytes", 20.0, gpu="0/2/0", uuid="MIG-b"),
        series("gpu_memory_total_bytes", 40.0, gpu="0/2/0", uuid="MIG-b"),
        series("kgm_build_info", 1, version="0.1.0"),
    ]
    node_uses = node_device_use(data, "n")
    assert sorted(use.uuid for use in node_uses) == ["MIG-a", "MIG-b"]
    assert device_metric("gpu_memory_used_bytes", node_uses) == Value(30.0, 100.0)
    assert device_metric("gpu_utilization", node_uses) is None
    [pod_use] = pod_device_use(data, "n")[ObjectKey("ml", "p")]
    assert (pod_use.uuid, pod_use.memory_used, pod_use.memory_total) == ("MIG-a", 10.0, 40.0)


def test_metric_selector_filters_devices() -> None:
    uses = [
        DeviceUse("n", "0", "GPU-0", 0.2, 1.0, 10.0, 1.0),
        DeviceUse("n", "1", "GPU-1", 0.8, 3.0, 10.0, 2.0),
    ]
    assert device_metric("gpu_utilization", uses) == Value(50.0, 2.0)
    assert device_metric("gpu_utilization", uses, parse_selector("gpu in (0)")) == Value(20.0, 1.0)
    assert device_metric("gpu_memory_used_bytes", uses, parse_selector("uuid!=GPU-0")) == Value(3.0, 2.0)
    assert device_metric("gpu_utilization", uses, parse_selector("node=other")) is None


def test_missing_fields_are_absent_not_zero() -> None:
    use = DeviceUse("n", "0", "GPU-0", None, None, None, 1.0)
    assert device_metric("gpu_utilization", [use]) is None
    assert device_metric("gpu_memory_used_bytes", [use]) is None
    assert device_metric("gpu_memory_utilization", [use]) is None
    assert device_metric("gpu_memory_used_bytes", []) is None


def test_groups_mean_percents_and_sum_bytes() -> None:
    values = [Value(10.0, 1.0), Value(30.0, 5.0)]
    assert group_metric("gpu_utilization", values) == Value(20.0, 5.0)
    assert group_metric("gpu_memory_utilization", values) == Value(20.0, 5.0)
    assert group_metric("gpu_memory_used_bytes", values) == Value(40.0, 5.0)
    assert group_metric("gpu_utilization", []) is None


# Discovery.


def test_static_targets_normalise_urls() -> None:
    assert static_target("127.0.0.1:9402") == Target("http://127.0.0.1:9402/metrics")
    assert static_target("https://h:1/") == Target("https://h:1/metrics")
    assert static_target("http://h:1/custom") == Target("http://h:1/custom")
    with pytest.raises(ValueError, match="bad exporter URL"):
        static_target("ftp://h")
    with pytest.raises(ValueError, match="at least one"):
        StaticTargets([])


class FakeDiscoveryApi:
    def __init__(self, slices: list[V1EndpointSlice]) -> None:
        self.slices = slices
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail = False

    def list_namespaced_endpoint_slice(self, namespace: str, **kwargs: Any) -> V1EndpointSliceList:
        self.calls.append((namespace, kwargs))
        if self.fail:
            raise ConnectionError("connection refused")
        return V1EndpointSliceList(items=self.slices)


def endpoint(address: str, node: str, ready: bool | None = True) -> V1Endpoint:
    return V1Endpoint(addresses=[address], node_name=node, conditions=V1EndpointConditions(ready=ready))


async def test_endpoint_slice_discovery_lists_ready_endpoints_with_nodes() -> None:
    slices = [
        V1EndpointSlice(
            address_type="IPv4",
            metadata=V1ObjectMeta(name="exporter-abc"),
            ports=[DiscoveryV1EndpointPort(name="metrics", port=9402)],
            endpoints=[endpoint("10.0.0.1", "gpu-1"), endpoint("10.0.0.2", "gpu-2", ready=False)],
        ),
        V1EndpointSlice(
            address_type="IPv6",
            metadata=V1ObjectMeta(name="exporter-def"),
            ports=[DiscoveryV1EndpointPort(name="metrics", port=9402)],
            endpoints=[endpoint("fd00::3", "gpu-3", ready=None)],
        ),
    ]
    api = FakeDiscoveryApi(slices)
    now = [0.0]
    discovery = EndpointSliceDiscovery(
        api, namespace="kgm", service="kube-gpu-exporter", refresh_seconds=30, clock=lambda: now[0]
    )
    targets = await discovery.targets()
    assert list(targets) == [
        Target("http://10.0.0.1:9402/metrics", "gpu-1"),
        Target("http://[fd00::3]:9402/metrics", "gpu-3"),
    ]
    assert api.calls[0][0] == "kgm"
    assert api.calls[0][1]["label_selector"] == "kubernetes.io/service-name=kube-gpu-exporter"
    await discovery.targets()
    assert len(api.calls) == 1
    now[0] = 31
    api.fail = True
    with pytest.raises(DiscoveryError, match="kgm/kube-gpu-exporter"):
        await discovery.targets()


# The backend over HTTP.


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def start(backend: DirectBackend) -> None:
    """Start the backend and wait for the background loop's first round (at the clock's start time)."""
    await backend.start()
    for _ in range(500):
        if backend.stats().rounds:
            return
        await asyncio.sleep(0.01)
    pytest.fail("no scrape round finished")


@pytest.fixture
def servers() -> Iterator[list[ExpositionServer]]:
    started = [ExpositionServer().start() for _ in range(2)]
    yield started
    for server in started:
        server.stop()


def node_a() -> list[FakeGpu]:
    return [
        FakeGpu("0", "GPU-a0", 0.5, 20 * GIB, 80 * GIB, holders=[P1]),
        FakeGpu("1", "GPU-a1", 0.9, 40 * GIB, 80 * GIB, holders=[P2, P3]),
    ]


def node_b() -> list[FakeGpu]:
    return [FakeGpu("0", "GPU-b0", 0.2, 8 * GIB, 80 * GIB, holders=[P3])]


async def test_backend_computes_pod_node_namespace_and_workload_values(
    servers: list[ExpositionServer],
) -> None:
    servers[0].text = exposition(node_a(), node="node-a")
    servers[1].text = exposition(node_b())
    clock = Clock()
    backend = DirectBackend(StaticTargets([s.url for s in servers]), window_seconds=30, clock=clock)
    assert not backend.ready
    with pytest.raises(BackendUnavailable, match="no scrape"):
        await backend.values("gpu_utilization", "pods", [ObjectKey("ml", "train-0")])
    await start(backend)
    try:
        assert backend.stats().up == 2
        pods = [
            ObjectKey("ml", "train-0"),
            ObjectKey("ml", "train-1"),
            ObjectKey("web", "infer-0"),
            ObjectKey("x", "y"),
        ]
        util = await backend.values("gpu_utilization", "pods", pods)
        assert {k: v.value for k, v in util.items()} == {
            pods[0]: pytest.approx(50.0),
            pods[1]: pytest.approx(45.0),
            pods[2]: pytest.approx((45.0 + 20.0) / 2),
        }
        assert {v.window_seconds for v in util.values()} == {30}
        assert {v.timestamp for v in util.values()} == {1000.0}
        used = await backend.values("gpu_memory_used_bytes", "pods", pods)
        assert used[pods[2]].value == 20 * GIB + 8 * GIB
        memory = await backend.values("gpu_memory_utilization", "pods", pods[:1])
        assert memory[pods[0]].value == pytest.approx(25.0)

        node_b_name = servers[1].url.split("/")[2]
        nodes = await backend.values(
            "gpu_utilization", "nodes", [ObjectKey("", "node-a"), ObjectKey("", node_b_name)]
        )
        assert nodes[ObjectKey("", "node-a")].value == pytest.approx(70.0)
        assert nodes[ObjectKey("", node_b_name)].value == pytest.approx(20.0)

        namespaces = await backend.values("gpu_memory_used_bytes", "namespaces", [ObjectKey("", "ml")])
        assert namespaces[ObjectKey("", "ml")].value == 20 * GIB + 20 * GIB

        workload = await backend.aggregate("gpu_utilization", pods[:2])
        assert workload is not None
        assert workload.value == pytest.approx(47.5)
        assert await backend.aggregate("gpu_utilization", [ObjectKey("x", "y")]) is None
        selected = await backend.aggregate("gpu_utilization", pods[:2], parse_selector("uuid=GPU-a0"))
        assert selected is not None
        assert selected.value == pytest.approx(50.0)

        assert backend.seen_objects("pods") == set(pods[:3])
        assert backend.seen_objects("namespaces") == {ObjectKey("", "ml"), ObjectKey("", "web")}
        assert ObjectKey("", "node-a") in backend.seen_objects("nodes")

        with pytest.raises(UnknownMetric):
            await backend.values("gpu_temperature", "pods", pods)
        with pytest.raises(UnknownMetric):
            await backend.values("gpu_utilization", "deployments", pods)
        assert {d.name for d in backend.metrics()} == {
            "gpu_utilization",
            "gpu_memory_used_bytes",
            "gpu_memory_utilization",
        }
    finally:
        await backend.close()


async def test_values_are_means_over_the_window(servers: list[ExpositionServer]) -> None:
    clock = Clock()
    backend = DirectBackend(
        StaticTargets([servers[0].url]), scrape_interval=5, window_seconds=10, clock=clock
    )
    servers[0].text = exposition([FakeGpu("0", "GPU-0", 0.1, holders=[P1])])
    await start(backend)
    try:
        for utilization in (0.2, 0.6):
            clock.now += 5
            servers[0].text = exposition([FakeGpu("0", "GPU-0", utilization, holders=[P1])])
            await backend.scrape_round()
        result = await backend.values("gpu_utilization", "pods", [ObjectKey("ml", "train-0")])
        assert result[ObjectKey("ml", "train-0")].value == pytest.approx(30.0)
    finally:
        await backend.close()


async def test_dead_target_goes_stale_then_absent_and_all_down_is_unavailable(
    servers: list[ExpositionServer],
) -> None:
    servers[0].text = exposition(node_a(), node="node-a")
    servers[1].text = exposition(node_b(), node="node-b")
    clock = Clock()
    backend = DirectBackend(
        StaticTargets([s.url for s in servers]), scrape_interval=5, window_seconds=10, clock=clock
    )
    await start(backend)
    try:
        servers[1].status = 500
        clock.now += 5
        await backend.scrape_round()
        stats = backend.stats()
        assert (stats.up, stats.down, stats.rounds) == (1, 1, 2)
        down = next(t for t in stats.targets if not t.up)
        assert down.url == servers[1].url
        assert down.error == "HTTP 500"
        assert down.last_success == 1000.0
        nodes = [ObjectKey("", "node-a"), ObjectKey("", "node-b")]
        result = await backend.values("gpu_utilization", "nodes", nodes)
        # Still within the window: served, with the old timestamp telling its age.
        assert result[nodes[1]].timestamp == 1000.0
        assert result[nodes[0]].timestamp == 1005.0

        clock.now += 6
        await backend.scrape_round()
        result = await backend.values("gpu_utilization", "nodes", nodes)
        assert set(result) == {nodes[0]}

        servers[0].status = 503
        clock.now += 5
        await backend.scrape_round()
        assert not backend.ready
        with pytest.raises(BackendUnavailable) as info:
            await backend.values("gpu_utilization", "nodes", nodes)
        assert servers[0].url in str(info.value)
        assert "HTTP 503" in str(info.value)
        assert servers[1].url in str(info.value)
        assert "HTTP 500" in str(info.value)
    finally:
        await backend.close()


class FlakyDiscovery:
    def __init__(self, targets: list[Target]) -> None:
        self.result: list[Target] | None = targets

    async def targets(self) -> list[Target]:
        if self.result is None:
            raise DiscoveryError("apiserver unreachable")
        return self.result


async def test_discovery_failure_keeps_previous_targets_and_node_from_discovery(
    servers: list[ExpositionServer],
) -> None:
    servers[0].text = exposition(node_b(), node="ignored")
    discovery = FlakyDiscovery([Target(servers[0].url, "gpu-node-7")])
    backend = DirectBackend(discovery, clock=Clock())
    await start(backend)
    try:
        discovery.result = None
        await backend.scrape_round()
        assert backend.stats().discovery_error == "apiserver unreachable"
        result = await backend.values("gpu_memory_used_bytes", "nodes", [ObjectKey("", "gpu-node-7")])
        assert result[ObjectKey("", "gpu-node-7")].value == 8 * GIB
        discovery.result = []
        await backend.scrape_round()
        with pytest.raises(BackendUnavailable, match="no GPU exporter targets"):
            await backend.values("gpu_utilization", "nodes", [])
    finally:
        await backend.close()


async def test_unreachable_and_garbage_targets_are_down_with_reasons(servers: list[ExpositionServer]) -> None:
    servers[0].text = 'gpu_utilization_ratio{gpu="0" 1\n'
    backend = DirectBackend(
        StaticTargets([servers[0].url, "http://127.0.0.1:9/metrics"]), scrape_timeout=2, clock=Clock()
    )
    await start(backend)
    try:
        errors = {t.url: t.error for t in backend.stats().targets}
        assert "malformed exposition" in errors[servers[0].url]
        assert errors["http://127.0.0.1:9/metrics"]
        assert not backend.ready
    finally:
        await backend.close()


async def test_slow_target_times_out(servers: list[ExpositionServer]) -> None:
    servers[0].text = exposition(node_b())
    servers[0].delay = 2.0
    backend = DirectBackend(StaticTargets([servers[0].url]), scrape_timeout=0.2, clock=Clock())
    await start(backend)
    try:
        [status] = backend.stats().targets
        assert status.error == "no answer within 0.2s"
        assert status.duration_seconds < 1.5
    finally:
        await backend.close()


async def test_background_loop_scrapes_until_closed(servers: list[ExpositionServer]) -> None:
    servers[0].text = exposition(node_b())
    backend = DirectBackend(StaticTargets([servers[0].url]), scrape_interval=0.05, window_seconds=1)
    await backend.start()
    try:
        for _ in range(200):
            if backend.stats().rounds >= 3:
                break
            await asyncio.sleep(0.02)
        assert backend.stats().rounds >= 3
        assert backend.ready
    finally:
        await backend.close()
    rounds = backend.stats().rounds
    await asyncio.sleep(0.15)
    assert backend.stats().rounds == rounds


async def test_large_bodies_are_parsed_in_a_thread_small_ones_on_the_loop(
    servers: list[ExpositionServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    servers[0].text = exposition(node_a(), node="node-a")
    servers[1].text = exposition(node_b(), node="node-b") + "host_metric 1\n" * (INLINE_PARSE_LIMIT // 10)
    # Whether the body was large, and the thread that parsed it.
    parsed_on: dict[bool, int] = {}

    def parse(text: str, names: Collection[str]) -> list[Sample]:
        parsed_on[len(text) > INLINE_PARSE_LIMIT] = threading.get_ident()
        return parse_exposition(text, names)

    monkeypatch.setattr(direct, "parse_exposition", parse)
    backend = DirectBackend(StaticTargets([s.url for s in servers]), clock=Clock())
    await start(backend)
    try:
        nodes = [ObjectKey("", "node-a"), ObjectKey("", "node-b")]
        assert set(await backend.values("gpu_utilization", "nodes", nodes)) == set(nodes)
    finally:
        await backend.close()
    assert parsed_on[False] == threading.get_ident()
    assert parsed_on[True] != threading.get_ident()


def test_window_must_hold_an_interval() -> None:
    with pytest.raises(ValueError, match="window"):
        DirectBackend(StaticTargets(["h:1"]), scrape_interval=10, window_seconds=5)

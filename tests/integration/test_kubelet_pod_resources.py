"""The pod-resources client against a fake kubelet on a real unix socket, and attribution over HTTP."""

from __future__ import annotations

import itertools
import logging
import threading
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.collectors.errors import ErrorCounts
from exporter.collectors.pods import PodsCollector
from exporter.gpu.model import GpuDevice, GpuReading, ProcessUsage
from exporter.gpu.profiles import Constant
from exporter.gpu.simulated import SimulatedGpuSource, SimulatedGpuSpec
from exporter.pods.allocations import PodResourcesHolders
from exporter.pods.kubelet_client import ClientOptions, PodResourcesClient
from exporter.pods.model import AllocatableDevices, ContainerRef, DeviceAllocation
from exporter.pods.procfs import ProcCgroups
from exporter.registry import Telemetry, build_registry
from exporter.server import Readiness, build_app, serve
from kgm_common.addresses import ListenAddress
from tests.fakes.fake_kubelet import Allocation, FakeKubelet, KubeletState
from tests.support import free_port

PROC = str(Path(__file__).resolve().parents[1] / "data" / "proc")
UUID_0 = "GPU-5a3c7a2e-7a0f-1b4d-9b8e-0c1d2e3f4a5b"
UUID_1 = "GPU-6b4d8b3f-8b1a-2c5e-8c9f-1d2e3f4a5b6c"


class ManualClock:
    """Time the test advances, for the client's TTL and backoff."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def state() -> KubeletState:
    return KubeletState(
        allocations=[
            Allocation("team-a", "train-0", "trainer", "nvidia.com/gpu", [UUID_0]),
            Allocation(
                "team-b", "infer-1", "server", "nvidia.com/gpu.shared", [f"{UUID_1}::{n}" for n in range(4)]
            ),
            Allocation("team-b", "infer-2", "server", "nvidia.com/gpu.shared", [f"{UUID_1}::4"]),
            Allocation("kube-system", "dns", "coredns", "example.com/fpga", ["fpga0"]),
        ],
        allocatable={
            "nvidia.com/gpu": [UUID_0],
            "nvidia.com/gpu.shared": [f"{UUID_1}::{n}" for n in range(8)],
        },
    )


@pytest.fixture
def socket_path(socket_dir: Path) -> str:
    return str(socket_dir / "kubelet.sock")


@pytest.fixture
def kubelet(socket_path: str) -> Iterator[FakeKubelet]:
    fake = FakeKubelet(socket_path, state())
    fake.start()
    yield fake
    fake.stop()
    Path(socket_path).parent.rmdir()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def client(socket_path: str, clock: ManualClock) -> Iterator[PodResourcesClient]:
    options = ClientOptions(
        timeout_seconds=2.0, list_ttl_seconds=1.0, backoff_initial_seconds=0.5, backoff_max_seconds=4.0
    )
    made = PodResourcesClient(socket_path, options, errors=ErrorCounts(), clock=clock)
    yield made
    made.close()


def is_up(client: PodResourcesClient) -> bool:
    """Read ``up`` afresh (a plain attribute read would be narrowed by an earlier assert)."""
    return client.up


def test_list_allocatable_and_method_paths(kubelet: FakeKubelet, client: PodResourcesClient) -> None:
    allocations = client.list_allocations()
    assert allocations is not None
    assert (
        DeviceAllocation(ContainerRef("team-a", "train-0", "trainer"), "nvidia.com/gpu", (UUID_0,))
        in allocations
    )
    assert len(allocations) == 4
    assert client.allocatable() == (
        AllocatableDevices("nvidia.com/gpu", (UUID_0,)),
        AllocatableDevices("nvidia.com/gpu.shared", tuple(f"{UUID_1}::{n}" for n in range(8))),
    )
    assert client.up


def test_list_is_cached_for_its_ttl(
    kubelet: FakeKubelet, client: PodResourcesClient, clock: ManualClock
) -> None:
    first = client.list_allocations()
    assert client.list_allocations() is first
    assert kubelet.calls["List"] == 1
    clock.now += 1.5
    client.list_allocations()
    assert kubelet.calls["List"] == 2


def test_concurrent_scrapes_share_one_call(kubelet: FakeKubelet, client: PodResourcesClient) -> None:
    kubelet.state.delay_seconds = 0.2
    threads = [threading.Thread(target=client.list_allocations) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert kubelet.calls["List"] == 1


def test_unimplemented_get_is_remembered(kubelet: FakeKubelet, client: PodResourcesClient) -> None:
    assert client.get("team-a", "train-0") is None
    assert client.get("team-a", "train-0") is None
    assert kubelet.calls["Get"] == 1
    assert not client.offers("Get")
    assert client.up  # the kubelet answered; it just lacks the method


def test_get_where_the_kubelet_serves_it(kubelet: FakeKubelet, client: PodResourcesClient) -> None:
    kubelet.state.get_mode = "serve"
    assert client.get("team-b", "infer-1") == (
        DeviceAllocation(
            ContainerRef("team-b", "infer-1", "server"),
            "nvidia.com/gpu.shared",
            tuple(f"{UUID_1}::{n}" for n in range(4)),
        ),
    )
    assert client.get("team-b", "gone") is None
    assert client.offers("Get")
    assert client.up  # "not found" is an answer, not an outage
    assert client.get("team-a", "train-0") is not None  # and no backoff followed it


def test_disabled_get_allocatable_is_remembered(kubelet: FakeKubelet, client: PodResourcesClient) -> None:
    kubelet.state.allocatable_mode = "disabled"
    assert client.allocatable() is None
    assert client.allocatable() is None
    assert kubelet.calls["GetAllocatableResources"] == 1
    assert client.list_allocations() is not None


def test_a_hung_kubelet_costs_one_deadline(
    kubelet: FakeKubelet, socket_path: str, clock: ManualClock
) -> None:
    kubelet.state.delay_seconds = 1.0
    client = PodResourcesClient(socket_path, ClientOptions(timeout_seconds=0.2), clock=clock)
    try:
        assert client.list_allocations() is None
        assert not is_up(client)
        assert client.list_allocations() is None  # backing off: not asked again yet
        assert kubelet.calls["List"] == 1
    finally:
        client.close()


def test_missing_socket_is_not_hammered(
    socket_path: str, client: PodResourcesClient, clock: ManualClock
) -> None:
    assert client.list_allocations() is None
    assert not client.up
    fake = FakeKubelet(socket_path, state())
    fake.start()
    try:
        assert client.list_allocations() is None  # still backing off: the kubelet is not asked
        assert fake.calls["List"] == 0
        clock.now += 0.6
        assert client.list_allocations() is not None
        assert is_up(client)
    finally:
        fake.stop()


def test_kubelet_restart_is_survived(
    kubelet: FakeKubelet, client: PodResourcesClient, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="exporter.pods.kubelet_client")
    assert client.list_allocations() is not None
    kubelet.stop()
    clock.now += 2
    for _ in range(5):  # repeated scrapes while down: one failure, then skipped calls
        assert client.list_allocations() is None
    assert not client.up
    kubelet.state.allocations = kubelet.state.allocations[:1]
    kubelet.start()
    calls_before = kubelet.calls["List"]
    assert client.list_allocations() is None  # backoff not over yet
    assert kubelet.calls["List"] == calls_before
    clock.now += 0.6
    allocations = client.list_allocations()
    assert allocations is not None
    assert len(allocations) == 1
    assert is_up(client)
    down = [r for r in caplog.records if r.levelno == logging.WARNING]
    up = [r for r in caplog.records if "answering" in r.getMessage() and r.levelno == logging.INFO]
    assert len(down) == 1
    assert len(up) == 2  # first contact, and the return
    assert down[0].socket == kubelet.socket_path  # type: ignore[attr-defined]


def test_backoff_doubles_up_to_its_ceiling(socket_path: str, clock: ManualClock) -> None:
    errors = ErrorCounts()
    options = ClientOptions(backoff_initial_seconds=0.5, backoff_max_seconds=4.0)
    client = PodResourcesClient(socket_path, options, errors=errors, clock=clock)
    started, attempts = clock.now, []
    while clock.now - started < 16:
        before = errors.snapshot().get(("pods",), 0)
        client.list_allocations()
        if errors.snapshot().get(("pods",), 0) > before:
            attempts.append(clock.now - started)
        clock.now += 0.25
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert gaps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


class SourceWithProcesses:
    """The simulated GPU source with processes taken from the fake /proc tree."""

    name = "simulated"
    up = True

    def __init__(self, processes: dict[str, list[ProcessUsage]]) -> None:
        self._inner = SimulatedGpuSource([SimulatedGpuSpec(Constant(0.5)), SimulatedGpuSpec(Constant(0.25))])
        self._devices = [
            GpuDevice(d.index, uuid, d.model, d.pci_bus_id, d.driver_version)
            for d, uuid in zip(self._inner.devices(), (UUID_0, UUID_1), strict=True)
        ]
        self._processes = processes

    def devices(self) -> Sequence[GpuDevice]:
        return self._devices

    def read(self, device: GpuDevice) -> GpuReading:
        reading = self._inner.read(self._inner.devices()[int(device.index)])
        return GpuReading(device, reading.values, reading.labelled, reading.errors)

    def processes(self, device: GpuDevice) -> Sequence[ProcessUsage]:
        return self._processes.get(device.uuid, [])

    def close(self) -> None:
        self._inner.close()


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def test_labels_end_to_end_over_http(kubelet: FakeKubelet, socket_path: str) -> None:
    telemetry = Telemetry()
    errors = telemetry.collector_errors
    options = ClientOptions(list_ttl_seconds=0.0, backoff_initial_seconds=0.05, backoff_max_seconds=0.05)
    client = PodResourcesClient(socket_path, options, errors=errors)
    holders = PodResourcesHolders(client, errors=errors)
    source = SourceWithProcesses(
        {
            UUID_0: [ProcessUsage(1001, 3 << 30, 0.5)],
            UUID_1: [ProcessUsage(1002, 1 << 30, 0.1), ProcessUsage(2001, 1 << 20, None)],
        }
    )
    pods = PodsCollector(source, holders, ProcCgroups(PROC, errors=errors), errors=errors)
    registry = build_registry(source=source, holders=holders, extra=[("pods", pods)], telemetry=telemetry)
    port = free_port()
    server = serve(ListenAddress("127.0.0.1", port), build_app(registry, Readiness()))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        samples = scrape(url)
        util = {labels["gpu"]: labels for labels, _ in samples["gpu_utilization_ratio"]}
        assert (util["0"]["namespace"], util["0"]["pod"], util["0"]["container"]) == (
            "team-a",
            "train-0",
            "trainer",
        )
        assert (util["1"]["namespace"], util["1"]["pod"], util["1"]["container"]) == ("", "", "")
        allocation = sorted(
            (lab["gpu"], lab["pod"], lab["resource"]) for lab, _ in samples["gpu_allocation_info"]
        )
        assert allocation == [
            ("0", "train-0", "nvidia.com/gpu"),
            ("1", "infer-1", "nvidia.com/gpu.shared"),
            ("1", "infer-2", "nvidia.com/gpu.shared"),
        ]
        assert {lab["resource"]: v for lab, v in samples["gpu_allocated"]} == {
            "nvidia.com/gpu": 1,
            "nvidia.com/gpu.shared": 5,
        }
        assert {lab["resource"]: v for lab, v in samples["gpu_allocatable"]} == {
            "nvidia.com/gpu": 1,
            "nvidia.com/gpu.shared": 8,
        }
        memory = {(lab["gpu"], lab["pod"]): v for lab, v in samples["gpu_container_memory_used_bytes"]}
        assert memory == {("0", "train-0"): 3 << 30}
        assert {lab["gpu"]: v for lab, v in samples["gpu_unattributed_memory_used_bytes"]} == {
            "0": 0,
            "1": (1 << 30) + (1 << 20),
        }
        assert samples["kgm_pod_resources_up"][0][1] == 1.0

        kubelet.stop()
        samples = scrape(url)
        assert samples["kgm_pod_resources_up"][0][1] == 0.0
        assert "gpu_allocation_info" not in samples
        assert all(labels["pod"] == "" for labels, _ in samples["gpu_utilization_ratio"])
        assert {lab["collector"]: v for lab, v in samples["kgm_exporter_collector_errors_total"]}["pods"] >= 1
        assert {lab["collector"]: v for lab, v in samples["kgm_exporter_scrape_collector_success"]}[
            "pods"
        ] == 1

        kubelet.start()
        threading.Event().wait(0.1)
        samples = scrape(url)
        assert samples["kgm_pod_resources_up"][0][1] == 1.0
        assert len(samples["gpu_allocation_info"]) == 3
    finally:
        server.shutdown()
        server.server_close()
        client.close()

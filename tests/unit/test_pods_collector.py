"""The attribution collector over a fake /proc tree: allocated view, observed view, pod metadata."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client.core import Metric

from exporter.collectors.errors import ErrorCounts
from exporter.collectors.gpu import GpuCollector
from exporter.collectors.pods import PodsCollector, label_name
from exporter.gpu.model import Field, GpuDevice, GpuReading, ProcessUsage
from exporter.pods.allocations import PodResourcesHolders, build_snapshot
from exporter.pods.model import AllocatableDevices, ContainerRef, DeviceAllocation, PodMeta
from exporter.pods.procfs import ProcCgroups

PROC = str(Path(__file__).resolve().parents[1] / "data" / "proc")
TAIL = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852"


def gpu(index: str, uuid: str, parent: str = "") -> GpuDevice:
    return GpuDevice(
        index,
        uuid,
        "NVIDIA H100 80GB HBM3",
        "0000:1b:00.0",
        "550.54",
        parent_uuid=parent,
        mig_mode="enabled" if parent else "disabled",
    )


GPU0 = gpu("0", "GPU-00000000-0000-4000-8000-000000000000")
GPU1 = gpu("1", "GPU-11111111-1111-4111-8111-111111111111")
GPU2 = gpu("2", "GPU-22222222-2222-4222-8222-222222222222")
MIG21 = gpu("2/1", "MIG-21212121-2121-4121-8121-212121212121", parent=GPU2.uuid)
MIG22 = gpu("2/2", "MIG-22222222-2222-4222-8222-222222222222", parent=GPU2.uuid)
GPU3 = gpu("3", "GPU-33333333-3333-4333-8333-333333333333")
GPU4 = gpu("4", "GPU-44444444-4444-4444-8444-444444444444")

TRAINER = ContainerRef("team-a", "train-0", "trainer")
INFER_1 = ContainerRef("team-b", "infer-1", "server")
INFER_2 = ContainerRef("team-b", "infer-2", "server")
MIG_USER = ContainerRef("team-c", "notebook", "jupyter")

ALLOCATIONS = (
    DeviceAllocation(TRAINER, "nvidia.com/gpu", (GPU0.uuid, GPU4.uuid)),  # one container, two GPUs
    # time-slicing: infer-1 holds four replica slots of GPU1, infer-2 one
    DeviceAllocation(INFER_1, "nvidia.com/gpu.shared", tuple(f"{GPU1.uuid}::{n}" for n in range(4))),
    DeviceAllocation(INFER_2, "nvidia.com/gpu.shared", (f"{GPU1.uuid}::4",)),
    DeviceAllocation(MIG_USER, "nvidia.com/mig-1g.10gb", (MIG21.uuid,)),
    DeviceAllocation(ContainerRef("kube-system", "dns", "coredns"), "example.com/fpga", ("0",)),
)
ALLOCATABLE = (
    AllocatableDevices("nvidia.com/gpu", (GPU0.uuid, GPU3.uuid, GPU4.uuid)),
    AllocatableDevices("nvidia.com/gpu.shared", tuple(f"{GPU1.uuid}::{n}" for n in range(8))),
    AllocatableDevices("nvidia.com/mig-1g.10gb", (MIG21.uuid, MIG22.uuid)),
    AllocatableDevices("example.com/fpga", ("0",)),
)

# PIDs name files in tests/data/proc: 1001 containerd/systemd v2, 1002 CRI-O/systemd v2, 1005 Docker v1,
# 1009 a static pod, 2001 a host service; 4242 has exited.
PROCESSES: dict[str, list[ProcessUsage]] = {
    GPU0.uuid: [ProcessUsage(1001, 30 << 30, 0.7), ProcessUsage(4242, 1 << 30, None)],
    GPU1.uuid: [ProcessUsage(1002, 5 << 30, 0.2), ProcessUsage(1005, 7 << 30, 0.3)],
    MIG21.uuid: [ProcessUsage(1009, 2 << 30, None)],
    GPU3.uuid: [ProcessUsage(2001, 512 << 20, 0.0)],
    GPU4.uuid: [ProcessUsage(1001, 10 << 30, 0.6), ProcessUsage(1001, 1 << 30, 0.6)],
}


class FakeSource:
    """A GPU source with fixed devices and processes; ``failing`` devices raise on ``processes``."""

    name = "simulated"
    up = True

    def __init__(self) -> None:
        self.failing: set[str] = set()

    def devices(self) -> Sequence[GpuDevice]:
        return (GPU0, GPU1, GPU2, MIG21, MIG22, GPU3, GPU4)

    def read(self, device: GpuDevice) -> GpuReading:
        return GpuReading(device, {Field.UTILIZATION: 0.5})

    def processes(self, device: GpuDevice) -> Sequence[ProcessUsage]:
        if device.uuid in self.failing:
            raise RuntimeError("NVML_ERROR_GPU_IS_LOST")
        return PROCESSES.get(device.uuid, [])

    def close(self) -> None:
        """Nothing to release."""


@dataclass
class FakeReader:
    """The kubelet calls, answered from fixed data; ``up`` False answers nothing."""

    allocations: tuple[DeviceAllocation, ...] = ALLOCATIONS
    allocatable_devices: tuple[AllocatableDevices, ...] | None = ALLOCATABLE
    up: bool = True
    list_calls: int = 0

    def list_allocations(self) -> tuple[DeviceAllocation, ...] | None:
        self.list_calls += 1
        return self.allocations if self.up else None

    def allocatable(self) -> tuple[AllocatableDevices, ...] | None:
        return self.allocatable_devices if self.up else None


@dataclass
class FakeDirectory:
    """Pod metadata keyed as the Kubernetes API enrichment keys it."""

    pods: list[PodMeta] = field(default_factory=list)

    def by_cgroup_uid(self, uid: str) -> PodMeta | None:
        return next((p for p in self.pods if (p.cgroup_uid or p.uid) == uid), None)

    def by_name(self, namespace: str, name: str) -> PodMeta | None:
        return next((p for p in self.pods if (p.namespace, p.name) == (namespace, name)), None)


Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(collector: PodsCollector | GpuCollector) -> Samples:
    found: Samples = {}
    families: list[Metric] = list(collector.collect())
    for family in families:
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def labelled(samples: Samples, name: str, *keys: str) -> dict[tuple[str, ...], float]:
    return {tuple(labels[k] for k in keys): value for labels, value in samples.get(name, [])}


def make(
    reader: FakeReader | None = None, directory: FakeDirectory | None = None, pod_labels: Sequence[str] = ()
) -> tuple[PodsCollector, PodResourcesHolders, FakeSource, ErrorCounts]:
    errors = ErrorCounts()
    holders = PodResourcesHolders(reader or FakeReader(), errors=errors)
    source = FakeSource()
    collector = PodsCollector(
        source,
        holders,
        ProcCgroups(PROC, errors=errors),
        errors=errors,
        directory=directory,
        pod_labels=pod_labels,
    )
    return collector, holders, source, errors


KEYS = ("gpu", "namespace", "pod", "container")


def test_allocation_info_is_one_series_per_device_and_container() -> None:
    collector, _, _, _ = make()
    info = labelled(scrape(collector), "gpu_allocation_info", *KEYS, "resource", "uuid")
    assert sorted(info) == [
        ("0", "team-a", "train-0", "trainer", "nvidia.com/gpu", GPU0.uuid),
        ("1", "team-b", "infer-1", "server", "nvidia.com/gpu.shared", GPU1.uuid),  # four slots, one series
        ("1", "team-b", "infer-2", "server", "nvidia.com/gpu.shared", GPU1.uuid),
        ("2/1", "team-c", "notebook", "jupyter", "nvidia.com/mig-1g.10gb", MIG21.uuid),
        ("4", "team-a", "train-0", "trainer", "nvidia.com/gpu", GPU4.uuid),
    ]
    assert set(info.values()) == {1.0}


def test_allocatable_and_allocated_count_replica_slots_as_the_kubelet_does() -> None:
    samples = scrape(make()[0])
    assert labelled(samples, "gpu_allocatable", "resource") == {
        ("nvidia.com/gpu",): 3,
        ("nvidia.com/gpu.shared",): 8,
        ("nvidia.com/mig-1g.10gb",): 2,
    }
    assert labelled(samples, "gpu_allocated", "resource") == {
        ("nvidia.com/gpu",): 2,
        ("nvidia.com/gpu.shared",): 5,
        ("nvidia.com/mig-1g.10gb",): 1,
    }


def test_device_series_carry_the_sole_holder_only() -> None:
    _, holders, source, _ = make()
    gpu_collector = GpuCollector(
        source, collector_errors=ErrorCounts(), field_errors=ErrorCounts(), holders=holders
    )
    snapshot = holders.snapshot()
    assert tuple(snapshot.holders(GPU0)) == (TRAINER,)
    assert tuple(snapshot.holders(GPU1)) == (INFER_1, INFER_2)
    assert tuple(snapshot.holders(GPU2)) == ()  # the MIG parent is not held, its instance is
    assert tuple(snapshot.holders(MIG21)) == (MIG_USER,)
    series = labelled(scrape(gpu_collector), "gpu_utilization_ratio", *KEYS)
    assert sorted(series) == [
        ("0", "team-a", "train-0", "trainer"),
        ("1", "", "", ""),  # two holders: the join goes through gpu_allocation_info
        ("2", "", "", ""),
        ("2/1", "team-c", "notebook", "jupyter"),
        ("2/2", "", "", ""),
        ("3", "", "", ""),
        ("4", "team-a", "train-0", "trainer"),
    ]


def test_observed_usage_without_the_kubernetes_api() -> None:
    samples = scrape(make()[0])
    memory = labelled(samples, "gpu_container_memory_used_bytes", *KEYS)
    # GPU0 and GPU4 have one holder, so their pod processes are that holder's; GPU1 is shared by two
    # containers the pod-resources API cannot tell apart by UID, so its memory stays unattributed.
    assert memory == {
        ("0", "team-a", "train-0", "trainer"): 30 << 30,
        ("4", "team-a", "train-0", "trainer"): 11 << 30,
        ("2/1", "team-c", "notebook", "jupyter"): 2 << 30,
    }
    utilization = labelled(samples, "gpu_container_utilization_ratio", *KEYS)
    assert utilization == {
        ("0", "team-a", "train-0", "trainer"): 0.7,
        ("4", "team-a", "train-0", "trainer"): 1.0,
    }
    unattributed = labelled(samples, "gpu_unattributed_memory_used_bytes", "gpu")
    assert unattributed == {
        ("0",): 1 << 30,  # pid 4242 exited before its cgroup was read
        ("1",): 12 << 30,
        ("2",): 0,
        ("2/1",): 0,
        ("2/2",): 0,
        ("3",): 512 << 20,  # a host service, in no pod
        ("4",): 0,
    }
    assert "gpu_pod_info" not in samples


def directory() -> FakeDirectory:
    return FakeDirectory(
        [
            PodMeta(
                "1c7dce1d-6d9b-4e2f-8b62-4a1a7d1f8b22",
                "team-b",
                "infer-1",
                containers={"a3ea" + TAIL: "server"},
                owner_kind="Deployment",
                owner_name="infer",
                labels={"app.kubernetes.io/name": "infer", "team": "b"},
            ),
            # infer-2's status does not list the container yet: its only holder of GPU1 is taken
            PodMeta(
                "4fa0f140-90ce-4152-9e95-7d4da04cbe55",
                "team-b",
                "infer-2",
                owner_kind="Deployment",
                owner_name="infer",
                labels={"app.kubernetes.io/name": "infer"},
            ),
            # a static pod: the cgroup carries the manifest hash, the API object another UID
            PodMeta(
                "d6a1c7e2-0000-4000-8000-00000000000a",
                "team-c",
                "notebook",
                cgroup_uid="8e1f7c2b4a9d4e3f8b6c5d4e3f2a1b0c",
                containers={"a3f1" + TAIL: "jupyter"},
                owner_kind="Node",
                owner_name="gpu-node-1",
            ),
            PodMeta(
                "0b6cbd0c-5c8a-4d1e-9a51-3f0f6c0e7a11",
                "team-a",
                "train-0",
                containers={"a3e9" + TAIL: "trainer"},
                owner_kind="Job",
                owner_name="train",
            ),
        ]
    )


def test_observed_usage_with_the_kubernetes_api_splits_shared_gpus() -> None:
    samples = scrape(make(directory=directory(), pod_labels=["app.kubernetes.io/name", "team"])[0])
    memory = labelled(samples, "gpu_container_memory_used_bytes", *KEYS)
    assert memory[("1", "team-b", "infer-1", "server")] == 5 << 30
    assert memory[("1", "team-b", "infer-2", "server")] == 7 << 30
    assert memory[("2/1", "team-c", "notebook", "jupyter")] == 2 << 30
    assert labelled(samples, "gpu_unattributed_memory_used_bytes", "gpu")[("1",)] == 0
    info = labelled(
        samples,
        "gpu_pod_info",
        "namespace",
        "pod",
        "uid",
        "owner_kind",
        "owner_name",
        "label_app_kubernetes_io_name",
        "label_team",
    )
    assert sorted(info) == [
        ("team-a", "train-0", "0b6cbd0c-5c8a-4d1e-9a51-3f0f6c0e7a11", "Job", "train", "", ""),
        ("team-b", "infer-1", "1c7dce1d-6d9b-4e2f-8b62-4a1a7d1f8b22", "Deployment", "infer", "infer", "b"),
        ("team-b", "infer-2", "4fa0f140-90ce-4152-9e95-7d4da04cbe55", "Deployment", "infer", "infer", ""),
        ("team-c", "notebook", "d6a1c7e2-0000-4000-8000-00000000000a", "Node", "gpu-node-1", "", ""),
    ]


def test_kubelet_down_means_no_allocations_and_no_counts() -> None:
    reader = FakeReader(up=False)
    collector, holders, _, _ = make(reader)
    samples = scrape(collector)
    assert not holders.up
    assert "gpu_allocation_info" not in samples
    assert "gpu_allocated" not in samples
    assert "gpu_allocatable" not in samples
    assert labelled(samples, "gpu_unattributed_memory_used_bytes", "gpu")[("0",)] == 31 << 30


def test_kubelet_without_get_allocatable_still_counts_allocated() -> None:
    samples = scrape(make(FakeReader(allocatable_devices=None))[0])
    assert "gpu_allocatable" not in samples
    assert labelled(samples, "gpu_allocated", "resource")[("nvidia.com/gpu",)] == 2


def test_one_device_failing_its_process_list_costs_only_its_usage() -> None:
    collector, _, source, errors = make()
    source.failing.add(GPU0.uuid)
    samples = scrape(collector)
    assert ("0",) not in labelled(samples, "gpu_unattributed_memory_used_bytes", "gpu")
    assert ("4", "team-a", "train-0", "trainer") in labelled(
        samples, "gpu_container_memory_used_bytes", *KEYS
    )
    assert errors.snapshot() == {("pods",): 1}


def test_snapshot_is_built_once_per_list_answer() -> None:
    reader = FakeReader()
    _, holders, _, _ = make(reader)
    assert holders.snapshot() is holders.snapshot()
    reader.allocations = ALLOCATIONS[:1]
    assert tuple(holders.snapshot().holders(GPU1)) == ()


def test_unrecognised_ids_and_other_resources_are_ignored() -> None:
    snapshot = build_snapshot(
        [
            DeviceAllocation(TRAINER, "nvidia.com/gpu", ("weird-id", GPU0.uuid)),
            DeviceAllocation(INFER_1, "amd.com/gpu", (GPU1.uuid,)),
        ],
        ["nvidia.com/gpu"],
    )
    assert tuple(snapshot.holders(GPU0)) == (TRAINER,)
    assert tuple(snapshot.holders(GPU1)) == ()
    assert dict(snapshot.allocated) == {"nvidia.com/gpu": 2}


@pytest.mark.parametrize(
    ("pod_label", "series_label"),
    [("app", "label_app"), ("app.kubernetes.io/name", "label_app_kubernetes_io_name"), ("a-b", "label_a_b")],
)
def test_label_names_are_sanitised(pod_label: str, series_label: str) -> None:
    assert label_name(pod_label) == series_label


def test_colliding_label_names_keep_the_first() -> None:
    collector = make(directory=directory(), pod_labels=["app.kubernetes.io/name", "app_kubernetes_io/name"])[
        0
    ]
    samples: Mapping[str, list[tuple[dict[str, str], float]]] = scrape(collector)
    values = {labels["label_app_kubernetes_io_name"] for labels, _ in samples["gpu_pod_info"]}
    assert values == {"", "infer"}

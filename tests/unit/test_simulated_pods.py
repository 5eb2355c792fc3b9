"""Simulated pod allocations: the demo's stand-in for the kubelet."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.gpu.profiles import Constant
from exporter.gpu.simulated import SimulatedGpuSource, SimulatedGpuSpec
from exporter.pods.allocations import PodResourcesHolders
from exporter.pods.model import ContainerRef
from exporter.pods.simulated import SimulatedAllocations, parse_pod_spec

dns_label = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)


def gpus(count: int) -> SimulatedGpuSource:
    return SimulatedGpuSource([SimulatedGpuSpec(Constant(0.5)) for _ in range(count)])


def test_pod_specs() -> None:
    assert parse_pod_spec("ml/trainer-0") == ContainerRef("ml", "trainer-0", "main")
    assert parse_pod_spec("ml/infer.v2-a/server") == ContainerRef("ml", "infer.v2-a", "server")


@pytest.mark.parametrize("text", ["trainer", "ml/", "/pod", "ML/pod", "ml/pod/", "ml/pod/c/extra", "ml/-pod"])
def test_bad_pod_specs(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="NAMESPACE/POD"):
        parse_pod_spec(text)


@given(dns_label, dns_label, st.none() | dns_label)
def test_pod_specs_round_trip(namespace: str, pod: str, container: str | None) -> None:
    text = f"{namespace}/{pod}" + (f"/{container}" if container else "")
    assert parse_pod_spec(text) == ContainerRef(namespace, pod, container or "main")


@given(st.text())
def test_arbitrary_pod_specs_parse_or_raise_usage_errors(text: str) -> None:
    try:
        ref = parse_pod_spec(text)
    except argparse.ArgumentTypeError:
        return
    assert all((ref.namespace, ref.pod, ref.container))


def test_one_pod_per_gpu_labels_the_devices() -> None:
    source = gpus(2)
    pods = (ContainerRef("ml", "a", "main"), ContainerRef("ml", "b", "main"))
    snapshot = PodResourcesHolders(SimulatedAllocations(source, pods)).snapshot()
    first, second = source.devices()
    assert list(snapshot.holders(first)) == [pods[0]]
    assert list(snapshot.holders(second)) == [pods[1]]


def test_more_pods_than_gpus_share_as_replicas() -> None:
    source = gpus(2)
    pods = tuple(ContainerRef("ml", f"p{i}", "main") for i in range(5))
    reader = SimulatedAllocations(source, pods)
    first = source.devices()[0]
    assert sorted(PodResourcesHolders(reader).snapshot().holders(first)) == [pods[0], pods[2], pods[4]]
    ids = reader.allocatable()[0].device_ids
    assert len(ids) == 6
    assert f"{first.uuid}::2" in ids

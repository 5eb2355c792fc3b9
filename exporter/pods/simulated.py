"""Simulated kubelet allocations for the demo and the HPA lab: pods holding the simulated GPUs."""

from __future__ import annotations

import argparse
import re

from exporter.gpu.scenario import ScenarioGpuSource
from exporter.gpu.source import GpuSource
from exporter.pods.device_ids import DEFAULT_RESOURCE_PATTERNS
from exporter.pods.model import AllocatableDevices, ContainerRef, DeviceAllocation

# DNS-1123 labels (namespaces) and subdomains (pod names), and container names, as the API validates them.
_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_SUBDOMAIN = rf"{_LABEL}(\.{_LABEL})*"
_POD_SPEC = re.compile(rf"(?P<namespace>{_LABEL})/(?P<pod>{_SUBDOMAIN})(/(?P<container>{_LABEL}))?")

SIMULATED_RESOURCE = DEFAULT_RESOURCE_PATTERNS[0]


def parse_pod_spec(text: str) -> ContainerRef:
    """Parse ``NAMESPACE/POD[/CONTAINER]`` (container defaults to ``main``)."""
    match = _POD_SPEC.fullmatch(text.strip())
    if match is None or len(match["pod"]) > 253:
        raise argparse.ArgumentTypeError(
            f"bad pod {text!r}: expected NAMESPACE/POD[/CONTAINER] in lower-case DNS names"
        )
    return ContainerRef(match["namespace"], match["pod"], match["container"] or "main")


class SimulatedAllocations:
    """Pod ``i`` holds GPU ``i mod n``; pods beyond the GPU count share GPUs as time-slicing replicas.

    Answers what the kubelet's pod-resources ``List`` would, so everything downstream (device
    labels, ``gpu_allocation_info``, the adapter) runs as on a real node.
    """

    up = True

    def __init__(self, source: GpuSource, pods: tuple[ContainerRef, ...]) -> None:
        uuids = [d.uuid for d in source.devices() if not d.is_mig_instance]
        slots: dict[str, int] = {}
        allocations = []
        for i, pod in enumerate(pods if uuids else ()):
            uuid = uuids[i % len(uuids)]
            slot = slots.get(uuid, 0)
            slots[uuid] = slot + 1
            allocations.append(DeviceAllocation(pod, SIMULATED_RESOURCE, (f"{uuid}::{slot}",)))
        self._allocations = tuple(allocations)
        replicas = max(1, -(-len(pods) // max(len(uuids), 1)))
        self._allocatable = (
            AllocatableDevices(
                SIMULATED_RESOURCE, tuple(f"{u}::{k}" for u in uuids for k in range(replicas))
            ),
        )

    def list_allocations(self) -> tuple[DeviceAllocation, ...]:
        return self._allocations

    def allocatable(self) -> tuple[AllocatableDevices, ...]:
        return self._allocatable


class ScenarioAllocations:
    """The scenario's pods as the kubelet's pod-resources ``List`` would report them, one GPU each or
    ``gpusPerPod``; the answer is the same object while the pods and their GPUs stay the same."""

    up = True

    def __init__(self, source: ScenarioGpuSource, namespace: str) -> None:
        self._source = source
        self._namespace = namespace
        self._uuids = [device.uuid for device in source.devices()]
        self._generation = -1
        self._allocations: tuple[DeviceAllocation, ...] = ()
        self._allocatable = (AllocatableDevices(SIMULATED_RESOURCE, tuple(self._uuids)),)

    def list_allocations(self) -> tuple[DeviceAllocation, ...]:
        node = self._source.node
        _, pods = node.refresh()
        if node.generation != self._generation:
            self._generation = node.generation
            self._allocations = tuple(
                DeviceAllocation(
                    ContainerRef(self._namespace, state.pod.name, "main"),
                    SIMULATED_RESOURCE,
                    tuple(self._uuids[gpu] for gpu in state.gpus),
                )
                for state in pods
                if state.gpus
            )
        return self._allocations

    def allocatable(self) -> tuple[AllocatableDevices, ...]:
        return self._allocatable

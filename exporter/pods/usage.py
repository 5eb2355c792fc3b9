"""The observed view: GPU memory and SM time per container, from the processes NVML sees on a device.

Each process is placed by its cgroup (pod UID + container ID) and named by this rule:

1. With the Kubernetes API enrichment and a pod it knows (by UID, or for a static pod by the
   mirror pod's ``kubernetes.io/config.mirror`` hash): that pod's namespace and name, and the
   container whose ID matches in ``status.containerStatuses``. If the status does not list the ID
   yet (a container that just started), the container is the pod's only holder of the device if it
   has exactly one, else it is left empty.
2. Otherwise, if exactly one container holds the device in the kubelet's pod-resources answer:
   that container. The pod-resources API has neither pod UIDs nor container IDs, so a process on a
   device held by one container is taken to be that container's.
3. Otherwise (a process outside any pod, one that exited before its cgroup was read, or a pod that
   cannot be named because several containers share the device and the API is unavailable): its
   memory counts as unattributed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from exporter.gpu.model import GpuDevice, ProcessUsage
from exporter.pods.cgroups import ContainerCgroup
from exporter.pods.model import ContainerRef, PodDirectory


@dataclass(frozen=True)
class ContainerUsage:
    """What one container's processes use of one device; None where NVML gave no figure."""

    container: ContainerRef
    memory_bytes: int | None
    sm_utilization_ratio: float | None


@dataclass(frozen=True)
class DeviceUsage:
    """Per-container usage of one device, and the memory no container could be found for."""

    device: GpuDevice
    containers: tuple[ContainerUsage, ...]
    unattributed_memory_bytes: int


def name_container(
    cgroup: ContainerCgroup | None, holders: Sequence[ContainerRef], directory: PodDirectory
) -> ContainerRef | None:
    """The container a process belongs to, by the rule in this module's docstring; None if unknown."""
    if cgroup is None:
        return None
    meta = directory.by_cgroup_uid(cgroup.pod_uid)
    if meta is not None:
        name = meta.containers.get(cgroup.container_id)
        if name is None:
            in_pod = [h for h in holders if (h.namespace, h.pod) == (meta.namespace, meta.name)]
            name = in_pod[0].container if len(in_pod) == 1 else ""
        return ContainerRef(meta.namespace, meta.name, name)
    return holders[0] if len(holders) == 1 else None


def _sum(values: Iterable[float | int | None]) -> float | None:
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def device_usage(
    device: GpuDevice,
    processes: Iterable[ProcessUsage],
    cgroup_of: Callable[[int], ContainerCgroup | None],
    holders: Sequence[ContainerRef],
    directory: PodDirectory,
) -> DeviceUsage:
    """Group ``processes`` of ``device`` by container; SM shares of one container add up, capped at 1."""
    by_container: dict[ContainerRef, list[ProcessUsage]] = {}
    unattributed = 0
    for process in processes:
        container = name_container(cgroup_of(process.pid), holders, directory)
        if container is None:
            unattributed += process.used_memory_bytes or 0
        else:
            by_container.setdefault(container, []).append(process)
    usages = []
    for container, owned in sorted(by_container.items()):
        memory = _sum(p.used_memory_bytes for p in owned)
        utilization = _sum(p.sm_utilization_ratio for p in owned)
        usages.append(
            ContainerUsage(
                container,
                None if memory is None else int(memory),
                None if utilization is None else min(1.0, utilization),
            )
        )
    return DeviceUsage(device, tuple(usages), unattributed)

"""Turning the exporters' GPU series into per-pod and per-node GPU use, and those into metric values.

Rules (the exporter's series are described in design.md section 3):

- A pod's GPUs are the devices whose series carry its ``namespace``/``pod`` labels (an exclusive GPU),
  the devices ``gpu_allocation_info`` allocates to one of its containers, and the devices on which
  ``gpu_container_*`` series observe one of its containers.
- Exclusive GPU: the pod's use is the device's ``gpu_utilization_ratio`` and ``gpu_memory_used_bytes``.
- Shared GPU: when the exporter observes per-container use on the device (any ``gpu_container_*``
  series for it), the pod's use is the sum over its containers' series (zero when others are observed
  and it is not). Otherwise the device's value is split equally between the containers that
  ``gpu_allocation_info`` lists, and the pod gets its containers' part: an estimate that never counts
  a device twice.
- ``gpu_utilization`` is the mean of the pod's per-device utilization, in percent; ``gpu_memory_used_bytes``
  the sum over its devices; ``gpu_memory_utilization`` its used memory over the total framebuffer of
  its devices, in percent. A node's values take every device of the node whole.
- Groups of pods (namespaces, workloads): the mean of the pods' percents and the sum of their bytes.
- A metric selector (v1beta2 ``metricLabelSelector``) keeps the devices whose ``node``, ``gpu`` and
  ``uuid`` labels it matches.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from adapter.backends.base import ObjectKey
from adapter.backends.window import WindowedSeries
from adapter.selectors import Selector

UTILIZATION = "gpu_utilization_ratio"
MEMORY_USED = "gpu_memory_used_bytes"
MEMORY_TOTAL = "gpu_memory_total_bytes"
ALLOCATION = "gpu_allocation_info"
CONTAINER_UTILIZATION = "gpu_container_utilization_ratio"
CONTAINER_MEMORY_USED = "gpu_container_memory_used_bytes"
INFO = "gpu_info"
DEVICE_SERIES = frozenset({UTILIZATION, MEMORY_USED, MEMORY_TOTAL})
CONTAINER_SERIES = frozenset({ALLOCATION, CONTAINER_UTILIZATION, CONTAINER_MEMORY_USED})
SERIES_NAMES = frozenset({*DEVICE_SERIES, *CONTAINER_SERIES, INFO})

METRIC_UTILIZATION = "gpu_utilization"
METRIC_MEMORY_USED = "gpu_memory_used_bytes"
METRIC_MEMORY_UTILIZATION = "gpu_memory_utilization"
METRICS = (METRIC_UTILIZATION, METRIC_MEMORY_USED, METRIC_MEMORY_UTILIZATION)

Container = tuple[str, str, str]


# A named tuple: the direct backend builds one per pod and device at every scrape and keeps thousands;
# smaller than a frozen dataclass and several times faster to build.
class DeviceUse(NamedTuple):
    """What one object (pod or node) uses of one device; ``None`` where the series are missing."""

    node: str
    gpu: str
    uuid: str
    utilization: float | None
    memory_used: float | None
    memory_total: float | None
    timestamp: float

    def labels(self) -> dict[str, str]:
        """The labels a metric selector is matched against."""
        return {"node": self.node, "gpu": self.gpu, "uuid": self.uuid}


@dataclass
class _Device:
    gpu: str = ""
    uuid: str = ""
    parent_uuid: str = ""
    fields: dict[str, float] = field(default_factory=dict)
    holder: tuple[str, str, str] | None = None
    timestamp: float = 0.0
    allocated: set[Container] = field(default_factory=set)
    observed_utilization: dict[Container, float] = field(default_factory=dict)
    observed_memory: dict[Container, float] = field(default_factory=dict)


def _devices(series: Iterable[WindowedSeries]) -> dict[str, _Device]:
    devices: dict[str, _Device] = defaultdict(_Device)
    for s in series:
        if s.name not in SERIES_NAMES:
            continue
        # One dict per series rather than a scan of its labels per lookup: this runs over every series
        # of every exporter whenever the direct backend's view changes.
        labels = dict(s.labels)
        gpu, uuid = labels.get("gpu", ""), labels.get("uuid", "")
        device = devices[uuid or f"index:{gpu}"]
        device.gpu = device.gpu or gpu
        device.uuid = device.uuid or uuid
        container = (labels.get("namespace", ""), labels.get("pod", ""), labels.get("container", ""))
        if s.name == INFO:
            device.parent_uuid = labels.get("parent_uuid", "")
        elif s.name in DEVICE_SERIES:
            device.fields[s.name] = s.mean
            device.timestamp = max(device.timestamp, s.last_timestamp)
            if container[1]:
                device.holder = container
        elif not container[1]:
            continue
        elif s.name == ALLOCATION:
            device.allocated.add(container)
        elif s.name == CONTAINER_UTILIZATION:
            device.observed_utilization[container] = s.mean
        elif s.name == CONTAINER_MEMORY_USED:
            device.observed_memory[container] = s.mean
    return {key: device for key, device in devices.items() if device.fields}


def _pod_part(
    pod: tuple[str, str],
    observed: Mapping[Container, float],
    holders: Sequence[Container],
    whole: float | None,
) -> float | None:
    if observed:
        return sum(value for container, value in observed.items() if container[:2] == pod)
    if whole is None or not holders:
        return None
    return whole * sum(1 for container in holders if container[:2] == pod) / len(holders)


def pod_device_use(series: Iterable[WindowedSeries], node: str) -> dict[ObjectKey, tuple[DeviceUse, ...]]:
    """Each pod's use of each device of one target, by the rules in this module's docstring."""
    return _pod_uses(_devices(series).values(), node)


def node_device_use(series: Iterable[WindowedSeries], node: str) -> tuple[DeviceUse, ...]:
    """Every device of one target, taken whole; a GPU split into MIG instances counts as its instances."""
    return _node_uses(_devices(series).values(), node)


def device_use(
    series: Iterable[WindowedSeries], node: str
) -> tuple[dict[ObjectKey, tuple[DeviceUse, ...]], tuple[DeviceUse, ...]]:
    """``pod_device_use`` and ``node_device_use`` of one target, from one pass over its series."""
    devices = _devices(series).values()
    return _pod_uses(devices, node), _node_uses(devices, node)


def _pod_uses(devices: Collection[_Device], node: str) -> dict[ObjectKey, tuple[DeviceUse, ...]]:
    result: dict[ObjectKey, list[DeviceUse]] = defaultdict(list)
    for device in devices:
        utilization = device.fields.get(UTILIZATION)
        used = device.fields.get(MEMORY_USED)
        total = device.fields.get(MEMORY_TOTAL)
        holders = sorted({device.holder} if device.holder else device.allocated)
        pods = {c[:2] for c in holders} | {
            c[:2] for c in (*device.observed_utilization, *device.observed_memory)
        }
        for pod in sorted(pods):
            if device.holder and device.holder[:2] == pod:
                pod_utilization, pod_used = utilization, used
            else:
                pod_utilization = _pod_part(pod, device.observed_utilization, holders, utilization)
                pod_used = _pod_part(pod, device.observed_memory, holders, used)
            result[ObjectKey(pod[0], pod[1])].append(
                DeviceUse(node, device.gpu, device.uuid, pod_utilization, pod_used, total, device.timestamp)
            )
    return {key: tuple(uses) for key, uses in result.items()}


def _node_uses(devices: Collection[_Device], node: str) -> tuple[DeviceUse, ...]:
    # The physical GPU's memory series cover its instances' memory: counting both would count it twice.
    parents = {device.parent_uuid for device in devices if device.parent_uuid}
    return tuple(
        DeviceUse(
            node,
            device.gpu,
            device.uuid,
            device.fields.get(UTILIZATION),
            device.fields.get(MEMORY_USED),
            device.fields.get(MEMORY_TOTAL),
            device.timestamp,
        )
        for device in devices
        if device.uuid not in parents
    )


# A named tuple: one is built for every value worked out, several times faster than a frozen dataclass.
class Value(NamedTuple):
    """A computed metric value and the time of the newest sample behind it."""

    value: float
    timestamp: float


def device_metric(metric: str, uses: Sequence[DeviceUse], selector: Selector | None = None) -> Value | None:
    """``metric`` over one object's devices (those whose labels match ``selector``); ``None`` without data."""
    if selector is not None:
        uses = [use for use in uses if selector.matches(use.labels())]
    # Lists rather than generators below: this runs once per pod of every answer.
    if metric == METRIC_UTILIZATION:
        values = [value for use in uses if (value := use.utilization) is not None]
        if not values:
            return None
        newest = max([use.timestamp for use in uses if use.utilization is not None])
        return Value(100.0 * sum(values) / len(values), newest)
    if metric == METRIC_MEMORY_USED:
        values = [value for use in uses if (value := use.memory_used) is not None]
        if not values:
            return None
        newest = max([use.timestamp for use in uses if use.memory_used is not None])
        # A mean over the window is fractional; a byte count reads better whole.
        return Value(float(round(sum(values))), newest)
    if metric == METRIC_MEMORY_UTILIZATION:
        used = total = newest = 0.0
        for use in uses:
            if use.memory_used is not None and use.memory_total:
                used += use.memory_used
                total += use.memory_total
                newest = max(newest, use.timestamp)
        return Value(100.0 * used / total, newest) if total else None
    raise KeyError(metric)


def group_metric(metric: str, values: Sequence[Value]) -> Value | None:
    """One value for a group of objects: the sum for bytes, the mean for percents."""
    if not values:
        return None
    total = sum(v.value for v in values)
    newest = max(v.timestamp for v in values)
    if metric == METRIC_MEMORY_USED:
        return Value(total, newest)
    return Value(total / len(values), newest)

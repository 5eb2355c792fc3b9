"""Matching the device IDs device plugins hand the kubelet to the GPUs the exporter reports.

Forms seen in the wild, all matched:

- ``GPU-<uuid>`` and ``MIG-<uuid>`` (NVIDIA device plugin), with ``::<n>`` appended for each
  replica slot under time-slicing or MPS;
- ``MIG-GPU-<uuid>/<gi>/<ci>`` (MIG UUIDs of drivers before R470);
- a plain NVML index ``<n>``;
- GKE's ``nvidia<n>``, ``nvidia<n>/vgpu<m>`` (time-sharing) and ``nvidia<n>/gi<k>[/vgpu<m>]`` (MIG).

An ID and a device match when they share a :class:`DeviceKey`; :func:`device_keys` lists the keys
a device answers to and :func:`parse_device_id` the key an ID names.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from exporter.gpu.model import GpuDevice

DEFAULT_RESOURCE_PATTERNS = ("nvidia.com/gpu", "nvidia.com/gpu.shared", "nvidia.com/mig-*")

_REPLICA = re.compile(r"(.*)::[0-9]+")
_HEX_UUID = r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
_UUID = re.compile(rf"(?:GPU|MIG)-{_HEX_UUID}")
_LEGACY_MIG = re.compile(rf"MIG-(GPU-{_HEX_UUID})/([0-9]{{1,6}})/([0-9]{{1,6}})")
_INDEX = re.compile(r"[0-9]{1,6}")
_GKE = re.compile(r"nvidia([0-9]{1,6})(?:/gi([0-9]{1,6}))?(?:/vgpu[0-9]{1,6})?")


@dataclass(frozen=True)
class DeviceKey:
    """One way of naming a device: by UUID, by exporter index, or by parent UUID and GPU instance."""

    kind: str
    value: str


def _uuid_key(uuid: str) -> DeviceKey:
    return DeviceKey("uuid", uuid.lower())


def _index_key(index: str) -> DeviceKey:
    return DeviceKey("index", index)


def _instance_key(parent_uuid: str, gpu_instance: int) -> DeviceKey:
    return DeviceKey("instance", f"{parent_uuid.lower()}/{gpu_instance}")


def parse_device_id(device_id: str) -> DeviceKey | None:
    """The key an allocated device ID names, or None for IDs of no known form."""
    text = device_id.strip()
    replica = _REPLICA.fullmatch(text)
    if replica:
        text = replica.group(1)
    if _UUID.fullmatch(text):
        return _uuid_key(text)
    legacy = _LEGACY_MIG.fullmatch(text)
    if legacy:
        return _instance_key(legacy.group(1), int(legacy.group(2)))
    if _INDEX.fullmatch(text):
        return _index_key(str(int(text)))
    gke = _GKE.fullmatch(text)
    if gke:
        gpu = str(int(gke.group(1)))
        return _index_key(f"{gpu}/{int(gke.group(2))}" if gke.group(2) is not None else gpu)
    return None


def device_keys(device: GpuDevice) -> frozenset[DeviceKey]:
    """Every key that names ``device``."""
    keys = {_uuid_key(device.uuid), _index_key(device.index)}
    if device.is_mig_instance:
        _, _, gpu_instance = device.index.rpartition("/")
        if _INDEX.fullmatch(gpu_instance):
            keys.add(_instance_key(device.parent_uuid, int(gpu_instance)))
    return frozenset(keys)


def match_device(device_id: str, devices: Iterable[GpuDevice]) -> GpuDevice | None:
    """The device ``device_id`` names among ``devices``, or None."""
    key = parse_device_id(device_id)
    if key is None:
        return None
    return next((device for device in devices if key in device_keys(device)), None)


def resource_matches(resource: str, patterns: Sequence[str]) -> bool:
    """Whether ``resource`` is one of ``patterns`` (shell globs: ``nvidia.com/mig-*``)."""
    return any(fnmatch.fnmatchcase(resource, pattern) for pattern in patterns)

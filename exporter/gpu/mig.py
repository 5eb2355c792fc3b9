"""MIG profile names (``1g.10gb``, ``1c.2g.20gb``) as nvidia-smi and the device plugin spell them."""

from __future__ import annotations

import math
import re

_PROFILE_IN_NAME = re.compile(r"(?:\d+c\.)?\d+g\.\d+gb(?:\+\w+)?")
_MIB = 1024 * 1024
_GIB = 1024 * _MIB


def profile_from_name(name: str) -> str:
    """The profile embedded in a MIG device's NVML name (``NVIDIA H100 80GB HBM3 MIG 1g.10gb``), or ``""``."""
    found = _PROFILE_IN_NAME.findall(name)
    return found[-1] if found else ""


def profile_from_attributes(
    gpu_instance_slices: int, compute_instance_slices: int, memory_mib: int, parent_total_bytes: int
) -> str:
    """The profile from a MIG device's attributes, for drivers whose names lack it.

    The memory part follows the device plugin: the instance's share of the parent rounded up to
    eighths, times the parent's size in whole GiB, so an 80 GB card's 1/8 slice is ``10gb``.
    """
    if parent_total_bytes <= 0:
        raise ValueError("parent memory size must be positive")
    share = math.ceil(memory_mib * _MIB / parent_total_bytes * 8) / 8
    parent_gib = -(-parent_total_bytes // _GIB)
    size = round(share * parent_gib)
    if compute_instance_slices == gpu_instance_slices:
        return f"{gpu_instance_slices}g.{size}gb"
    return f"{compute_instance_slices}c.{gpu_instance_slices}g.{size}gb"

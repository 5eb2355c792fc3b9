"""Parsers for the procfs files the host collector reads itself rather than through psutil.

psutil numbers CPUs by position, which is wrong once a CPU is offline, its load average ignores
``PROCFS_PATH``, and it has no reader for ``/proc/1/mounts``; these parsers keep what node_exporter keeps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from exporter.host.cpu import CPU_MODES, CpuTimes

_CPU_LINE = re.compile(r"cpu(\d+)", re.ASCII)
_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")
# user, nice, system and idle have been in /proc/stat since Linux 2.4; later modes read as 0 when absent.
_MIN_CPU_FIELDS = 4


@dataclass(frozen=True)
class Stat:
    """What the host collector needs from ``/proc/stat``."""

    cpus: Mapping[str, CpuTimes]
    boot_time_seconds: float | None


@dataclass(frozen=True)
class LoadAverage:
    """Run-queue averages over 1, 5 and 15 minutes."""

    one: float
    five: float
    fifteen: float


@dataclass(frozen=True)
class Mount:
    """One line of ``/proc/<pid>/mounts``."""

    device: str
    mountpoint: str
    fstype: str
    options: tuple[str, ...]


def parse_stat(text: str, user_hz: int) -> Stat:
    """Per-CPU times in seconds keyed by the kernel's CPU number, and the boot time."""
    cpus: dict[str, CpuTimes] = {}
    boot_time: float | None = None
    for line in text.splitlines():
        # The intr and softirq lines run to thousands of fields; only split the lines we keep.
        if not line.startswith(("cpu", "btime")):
            continue
        fields = line.split()
        match = _CPU_LINE.fullmatch(fields[0])
        if match:
            seconds = [int(tick) / user_hz for tick in fields[1 : len(CPU_MODES) + 1]]
            if len(seconds) < _MIN_CPU_FIELDS:
                raise ValueError(f"too few fields in /proc/stat line {line!r}")
            seconds += [0.0] * (len(CPU_MODES) - len(seconds))
            cpus[str(int(match.group(1)))] = CpuTimes(*seconds)
        elif fields[0] == "btime" and len(fields) > 1:
            boot_time = float(int(fields[1]))
    return Stat(cpus, boot_time)


def parse_loadavg(text: str) -> LoadAverage:
    """The three averages at the start of ``/proc/loadavg``."""
    fields = text.split()
    if len(fields) < 3:
        raise ValueError(f"malformed /proc/loadavg {text!r}")
    return LoadAverage(float(fields[0]), float(fields[1]), float(fields[2]))


def unescape_mount_field(field: str) -> str:
    """Undo the kernel's octal escaping of space, tab, newline and backslash in mount tables."""
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mounts(text: str) -> list[Mount]:
    """Every mount in table order; a line with fewer than four fields makes the whole table invalid.

    Fields are split on the single spaces the kernel writes: it escapes only space, tab, newline and
    backslash, so any other whitespace can be part of a path.
    """
    mounts = []
    for line in text.split("\n"):
        if not line:
            continue
        fields = line.split(" ")
        if len(fields) < 4:
            raise ValueError(f"malformed mount table line {line!r}")
        mounts.append(
            Mount(
                device=fields[0],
                mountpoint=unescape_mount_field(fields[1]),
                fstype=fields[2],
                options=tuple(fields[3].split(",")),
            )
        )
    return mounts

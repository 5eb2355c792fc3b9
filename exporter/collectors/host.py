"""Host series under node_exporter's names, types, units and labels, so its queries and dashboards work.

Each subsystem (cpu, meminfo, loadavg, filesystem, diskstats, netdev) is read on its own: one that fails
loses its own series for that scrape and counts an error, and the rest of the scrape goes on. Everything
is read through ``proc_root`` (the host's /proc as mounted in the container). Network counters come from
``<proc_root>/net/dev``, which is the network namespace of the exporter process, so host interfaces need
``hostNetwork: true`` exactly as node_exporter does.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import psutil
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.collectors.errors import ErrorCounts
from exporter.host.cpu import CpuTimes, hold_monotonic
from exporter.host.filesystems import Filesystem, select_filesystems
from exporter.host.procfs import parse_loadavg, parse_mounts, parse_stat
from exporter.host.statfs import BoundedStatfs, StatOutcome, Statvfs

log = logging.getLogger(__name__)

ERROR_KEY = "host"

# node_exporter 1.10's default for --collector.diskstats.device-exclude: partitions and pseudo-disks.
DISK_DEVICES_EXCLUDE = re.compile(r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$")

# node_exporter's --collector.filesystem.mount-timeout default.
DEFAULT_MOUNT_TIMEOUT_SECONDS = 5.0

# (/proc/meminfo field, psutil attribute). Only fields psutil passes through unchanged: its ``cached``
# adds SReclaimable and its ``used`` is derived, so neither can carry a node_exporter name. ``available``
# is MemAvailable except where the kernel reports none or 0 (pre-3.14, or a kernel bug), where psutil
# estimates it as ``free`` does.
_VIRTUAL_MEMORY_FIELDS = (
    ("MemTotal", "total"),
    ("MemFree", "free"),
    ("MemAvailable", "available"),
    ("Buffers", "buffers"),
)
_SWAP_FIELDS = (("SwapTotal", "total"), ("SwapFree", "free"))
_SWAP_MEMINFO_KEYS = frozenset(field for field, _ in _SWAP_FIELDS)


@dataclass(frozen=True)
class PsutilCounter:
    """A per-device counter family and the psutil field that feeds it."""

    name: str
    help: str
    attribute: str
    scale: float = 1.0


# The *_time fields are milliseconds; multiplying by 0.001 (not dividing) gives node_exporter's floats.
DISK_COUNTERS = (
    PsutilCounter(
        "node_disk_reads_completed_total", "The total number of reads completed successfully.", "read_count"
    ),
    PsutilCounter(
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        "write_count",
    ),
    PsutilCounter("node_disk_read_bytes_total", "The total number of bytes read successfully.", "read_bytes"),
    PsutilCounter(
        "node_disk_written_bytes_total", "The total number of bytes written successfully.", "write_bytes"
    ),
    PsutilCounter(
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        "read_time",
        0.001,
    ),
    PsutilCounter(
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        "write_time",
        0.001,
    ),
    PsutilCounter("node_disk_io_time_seconds_total", "Total seconds spent doing I/Os.", "busy_time", 0.001),
)

# /proc/net/dev's drop column already adds rx_missed_errors, as node_exporter's netlink path does.
NETWORK_COUNTERS = tuple(
    PsutilCounter(f"node_network_{statistic}_total", f"Network device statistic {statistic}.", attribute)
    for statistic, attribute in (
        ("receive_bytes", "bytes_recv"),
        ("transmit_bytes", "bytes_sent"),
        ("receive_packets", "packets_recv"),
        ("transmit_packets", "packets_sent"),
        ("receive_errs", "errin"),
        ("transmit_errs", "errout"),
        ("receive_drop", "dropin"),
        ("transmit_drop", "dropout"),
    )
)

FILESYSTEM_LABELS = ("device", "mountpoint", "fstype")
_FILESYSTEM_GAUGES = {
    "size_bytes": "Filesystem size in bytes.",
    "free_bytes": "Filesystem free space in bytes.",
    "avail_bytes": "Filesystem space available to non-root users in bytes.",
    "files": "Filesystem total file nodes.",
    "files_free": "Filesystem total free file nodes.",
    "readonly": "Filesystem read-only status.",
    "device_error": "Whether an error occurred while getting statistics for the given device.",
}

_PSUTIL_PROCFS_LOCK = threading.Lock()


@contextmanager
def _psutil_procfs(proc_root: str) -> Iterator[None]:
    """psutil reads its procfs location from the module global ``psutil.PROCFS_PATH`` on every call.

    Setting it once at start-up would point every psutil user in the process at the host's procfs,
    where ``/proc/<pid>`` names other processes than in the container; setting it around each read,
    under one lock, lets collectors for different roots coexist and leaves the global as it was
    between scrapes. Code elsewhere calling psutil at the same moment without this lock could still
    see the host root; nothing else in the exporter uses psutil.
    """
    with _PSUTIL_PROCFS_LOCK:
        saved = psutil.PROCFS_PATH
        psutil.PROCFS_PATH = proc_root
        try:
            yield
        finally:
            psutil.PROCFS_PATH = saved


def _read_text(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


class HostCollector:
    """Reads the host's CPU, memory, load, filesystem, disk and network statistics on every scrape."""

    def __init__(
        self,
        *,
        errors: ErrorCounts,
        proc_root: str = "/proc",
        rootfs: str = "/",
        mount_timeout_seconds: float = DEFAULT_MOUNT_TIMEOUT_SECONDS,
        statvfs: Statvfs = os.statvfs,
    ) -> None:
        """Read the host through ``proc_root`` (``--path.procfs``) and ``rootfs`` (``--path.rootfs``).

        ``rootfs`` is where the host's / is mounted in this container; mount points are stat'ed under
        it and labelled as the host names them. A statvfs that has not returned after
        ``mount_timeout_seconds`` marks its mount stuck; ``statvfs`` is the call used.
        """
        self._errors = errors
        self._proc_root = proc_root.rstrip("/") or "/"
        self._rootfs = rootfs
        self._statfs = BoundedStatfs(mount_timeout_seconds, statvfs)
        self._user_hz = os.sysconf("SC_CLK_TCK")
        self._lock = threading.Lock()
        self._cpu_exposed: dict[str, CpuTimes] = {}
        self._failing_subsystems: set[str] = set()
        self._failing_mounts: set[tuple[str, str, str]] = set()
        self._mounts_parsed: tuple[str, list[Filesystem]] = ("", [])
        self._subsystems: tuple[tuple[str, Callable[[], list[Metric]]], ...] = (
            ("cpu", self._cpu),
            ("meminfo", self._meminfo),
            ("loadavg", self._loadavg),
            ("filesystem", self._filesystem),
            ("diskstats", self._diskstats),
            ("netdev", self._netdev),
        )

    def collect(self) -> Iterator[Metric]:
        families: list[Metric] = []
        with self._lock:
            for name, read in self._subsystems:
                try:
                    families.extend(read())
                except Exception as exc:  # noqa: BLE001 - one subsystem failing must not fail the scrape
                    self._subsystem_failed(name, exc)
                else:
                    self._subsystem_ok(name)
        yield from families

    def _proc(self, name: str) -> str:
        return os.path.join(self._proc_root, name)

    def _subsystem_failed(self, name: str, exc: Exception) -> None:
        self._errors.add(ERROR_KEY)
        if name not in self._failing_subsystems:
            self._failing_subsystems.add(name)
            log.warning(
                "host subsystem failed; its series are left out until it recovers",
                extra={
                    "subsystem": name,
                    "proc_root": self._proc_root,
                    "error": f"{type(exc).__name__}: {exc}",
                },
            )

    def _subsystem_ok(self, name: str) -> None:
        if name in self._failing_subsystems:
            self._failing_subsystems.discard(name)
            log.info("host subsystem recovered", extra={"subsystem": name, "proc_root": self._proc_root})

    def _cpu(self) -> list[Metric]:
        stat = parse_stat(_read_text(self._proc("stat")), self._user_hz)
        exposed = {cpu: hold_monotonic(self._cpu_exposed.get(cpu), times) for cpu, times in stat.cpus.items()}
        self._cpu_exposed = exposed
        seconds = CounterMetricFamily(
            "node_cpu_seconds_total", "Seconds the CPUs spent in each mode.", labels=["cpu", "mode"]
        )
        for cpu, times in sorted(exposed.items(), key=lambda item: int(item[0])):
            for mode, value in times.by_mode():
                seconds.add_metric([cpu, mode], value)
        families: list[Metric] = [seconds]
        if stat.boot_time_seconds is not None:
            families.append(
                GaugeMetricFamily(
                    "node_boot_time_seconds", "Node boot time, in unixtime.", stat.boot_time_seconds
                )
            )
        return families

    def _meminfo(self) -> list[Metric]:
        with _psutil_procfs(self._proc_root):
            memory = psutil.virtual_memory()
        fields = [(field, getattr(memory, attribute)) for field, attribute in _VIRTUAL_MEMORY_FIELDS]
        fields += self._swap()
        return [
            GaugeMetricFamily(
                f"node_memory_{field}_bytes", f"Memory information field {field}_bytes.", float(value)
            )
            for field, value in fields
        ]

    def _swap(self) -> list[tuple[str, float]]:
        """SwapTotal and SwapFree in bytes, the numbers ``psutil.swap_memory`` takes from meminfo.

        psutil also parses /proc/vmstat for swap-in/out counts we do not export, which costs more than
        the rest of this subsystem together; it remains the reader where meminfo lacks the fields.
        """
        found = {}
        for line in _read_text(self._proc("meminfo")).splitlines():
            key, _, rest = line.partition(":")
            if key in _SWAP_MEMINFO_KEYS:
                found[key] = int(rest.split()[0]) * 1024
        if len(found) == len(_SWAP_FIELDS):
            return [(field, float(found[field])) for field, _ in _SWAP_FIELDS]
        with _psutil_procfs(self._proc_root):
            swap = psutil.swap_memory()
        return [(field, float(getattr(swap, attribute))) for field, attribute in _SWAP_FIELDS]

    def _loadavg(self) -> list[Metric]:
        load = parse_loadavg(_read_text(self._proc("loadavg")))
        return [
            GaugeMetricFamily("node_load1", "1m load average.", load.one),
            GaugeMetricFamily("node_load5", "5m load average.", load.five),
            GaugeMetricFamily("node_load15", "15m load average.", load.fifteen),
        ]

    def _mount_table(self) -> str:
        try:
            return _read_text(self._proc("1/mounts"))
        except FileNotFoundError:
            # /proc/1 is hidden when procfs is mounted with hidepid; node_exporter falls back the same way.
            return _read_text(self._proc("mounts"))

    def _filesystems(self) -> list[Filesystem]:
        """The mounts to report; parsed again only when the mount table's text changes."""
        table = self._mount_table()
        if table != self._mounts_parsed[0]:
            self._mounts_parsed = (table, select_filesystems(parse_mounts(table), self._rootfs))
        return self._mounts_parsed[1]

    def _filesystem(self) -> list[Metric]:
        filesystems = self._filesystems()
        outcomes = self._statfs.stat_all([fs.stat_path for fs in filesystems])
        self._note_mount_failures(filesystems, outcomes)
        built = {
            key: GaugeMetricFamily(f"node_filesystem_{key}", help_text, labels=FILESYSTEM_LABELS)
            for key, help_text in _FILESYSTEM_GAUGES.items()
        }
        for fs, outcome in zip(filesystems, outcomes, strict=True):
            labels = [fs.device, fs.mountpoint, fs.fstype]
            built["readonly"].add_metric(labels, 1.0 if fs.readonly else 0.0)
            if isinstance(outcome, Exception):
                built["device_error"].add_metric(labels, 1.0)
                continue
            built["device_error"].add_metric(labels, 0.0)
            # node_exporter counts blocks in f_bsize, not f_frsize; sizes match it even where the two differ.
            block = float(outcome.f_bsize)
            built["size_bytes"].add_metric(labels, outcome.f_blocks * block)
            built["free_bytes"].add_metric(labels, outcome.f_bfree * block)
            built["avail_bytes"].add_metric(labels, outcome.f_bavail * block)
            built["files"].add_metric(labels, float(outcome.f_files))
            built["files_free"].add_metric(labels, float(outcome.f_ffree))
        return list(built.values())

    def _note_mount_failures(
        self, filesystems: Sequence[Filesystem], outcomes: Sequence[StatOutcome]
    ) -> None:
        failing: set[tuple[str, str, str]] = set()
        for fs, outcome in zip(filesystems, outcomes, strict=True):
            if not isinstance(outcome, Exception):
                if fs.labels in self._failing_mounts:
                    log.info("statfs works again", extra={"mountpoint": fs.mountpoint, "device": fs.device})
                continue
            self._errors.add(ERROR_KEY)
            failing.add(fs.labels)
            if fs.labels not in self._failing_mounts:
                log.warning(
                    "statfs failed; the mount's size series are left out until it works",
                    extra={
                        "mountpoint": fs.mountpoint,
                        "device": fs.device,
                        "fstype": fs.fstype,
                        "path": fs.stat_path,
                        "error": f"{type(outcome).__name__}: {outcome}",
                    },
                )
        self._failing_mounts = failing

    def _diskstats(self) -> list[Metric]:
        with _psutil_procfs(self._proc_root):
            disks = psutil.disk_io_counters(perdisk=True, nowrap=False)
        kept = {
            device: counters for device, counters in disks.items() if not DISK_DEVICES_EXCLUDE.search(device)
        }
        return _per_device_counters(DISK_COUNTERS, kept)

    def _netdev(self) -> list[Metric]:
        with _psutil_procfs(self._proc_root):
            nics = psutil.net_io_counters(pernic=True, nowrap=False)
        return _per_device_counters(NETWORK_COUNTERS, nics)


def _per_device_counters(specs: Sequence[PsutilCounter], devices: Mapping[str, object]) -> list[Metric]:
    rows = sorted(devices.items())
    families: list[Metric] = []
    for spec in specs:
        family = CounterMetricFamily(spec.name, spec.help, labels=["device"])
        for device, counters in rows:
            family.add_metric([device], getattr(counters, spec.attribute) * spec.scale)
        families.append(family)
    return families

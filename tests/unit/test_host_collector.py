"""HostCollector against the real /proc, against a fake proc root, and its parsers under hypothesis."""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from exporter.collectors.errors import ErrorCounts
from exporter.collectors.host import DISK_DEVICES_EXCLUDE, HostCollector
from exporter.host.cpu import CPU_MODES, JUMP_BACK_SECONDS, CpuTimes, hold_monotonic
from exporter.host.filesystems import (
    FS_TYPES_EXCLUDE,
    MOUNT_POINTS_EXCLUDE,
    select_filesystems,
    strip_rootfs,
)
from exporter.host.procfs import Mount, parse_loadavg, parse_mounts, parse_stat
from exporter.host.statfs import BoundedStatfs, StatOutcome, StuckMountError
from tests.support import wait_until

USER_HZ = 100
FAKE_PROC = Path(__file__).parent.parent / "data" / "host" / "proc"
Labels = tuple[tuple[str, str], ...]


# --- reading our own exposition -------------------------------------------------------------------


def scrape(collector: HostCollector) -> dict[str, Metric]:
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def series(families: dict[str, Metric], family: str, sample: str | None = None) -> dict[Labels, float]:
    """Values of one family's samples keyed by their sorted labels; ``sample`` picks a suffixed name."""
    wanted = sample or family
    return {tuple(sorted(s.labels.items())): s.value for s in families[family].samples if s.name == wanted}


def one(families: dict[str, Metric], family: str) -> float:
    (value,) = series(families, family).values()
    return value


# --- independent /proc readers (deliberately not the code under test) -----------------------------


def proc_cpu_seconds() -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *ticks = line.split()
        if name.startswith("cpu") and name != "cpu":
            for mode, tick in zip(CPU_MODES, ticks, strict=False):
                out[(name[3:], mode)] = int(tick) / USER_HZ
    return out


def proc_meminfo() -> dict[str, int]:
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, value = line.split(":", 1)
        parts = value.split()
        out[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return out


def proc_loadavg() -> list[float]:
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


def proc_btime() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise AssertionError("no btime in /proc/stat")


def proc_disks() -> set[str]:
    names = {line.split()[2] for line in Path("/proc/diskstats").read_text().splitlines() if line.strip()}
    return {n for n in names if not re.search(r"^(z?ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$", n)}


def proc_net_devices() -> set[str]:
    lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    return {line.split(":", 1)[0].strip() for line in lines if line.strip()}


@pytest.fixture
def errors() -> ErrorCounts:
    return ErrorCounts()


def assert_no_errors_but_unstatable_mounts(families: dict[str, Metric], errors: ErrorCounts) -> None:
    """A CI container may hold mounts it cannot stat; those are the only errors allowed here."""
    unstatable = sum(series(families, "node_filesystem_device_error").values())
    assert errors.snapshot().get(("host",), 0) == unstatable


# --- against the real /proc -------------------------------------------------------------------------


def test_cpu_seconds_match_proc_stat(errors: ErrorCounts) -> None:
    before = proc_cpu_seconds()
    families = scrape(HostCollector(errors=errors))
    after = proc_cpu_seconds()
    ours = series(families, "node_cpu_seconds", "node_cpu_seconds_total")
    assert {(dict(k)["cpu"], dict(k)["mode"]) for k in ours} == set(before)
    for labels, value in ours.items():
        key = (dict(labels)["cpu"], dict(labels)["mode"])
        # Counters read between two reads of /proc/stat; iowait and idle may step back by a tick.
        assert before[key] - 0.02 <= value <= after[key] + 0.02, key
    assert_no_errors_but_unstatable_mounts(families, errors)


def test_memory_load_and_boot_time_match_proc(errors: ErrorCounts) -> None:
    meminfo = proc_meminfo()
    load_before = proc_loadavg()
    families = scrape(HostCollector(errors=errors))
    load_after = proc_loadavg()
    assert one(families, "node_memory_MemTotal_bytes") == meminfo["MemTotal"]
    assert one(families, "node_memory_SwapTotal_bytes") == meminfo["SwapTotal"]
    tolerance = max(256 * 2**20, meminfo["MemTotal"] // 20)
    assert abs(one(families, "node_memory_MemAvailable_bytes") - meminfo["MemAvailable"]) <= tolerance
    assert abs(one(families, "node_memory_MemFree_bytes") - meminfo["MemFree"]) <= tolerance
    for name, low, high in zip(
        ("node_load1", "node_load5", "node_load15"), load_before, load_after, strict=True
    ):
        assert min(low, high) - 0.5 <= one(families, name) <= max(low, high) + 0.5
    assert one(families, "node_boot_time_seconds") == proc_btime()
    assert "node_memory_Cached_bytes" not in families
    assert_no_errors_but_unstatable_mounts(families, errors)


def test_filesystems_disks_and_network_devices_match_proc(errors: ErrorCounts) -> None:
    families = scrape(HostCollector(errors=errors))
    sizes = series(families, "node_filesystem_size_bytes")
    for labels in sizes:
        fs = dict(labels)
        assert set(fs) == {"device", "mountpoint", "fstype"}
        assert not MOUNT_POINTS_EXCLUDE.search(fs["mountpoint"])
        assert not FS_TYPES_EXCLUDE.search(fs["fstype"])
    for labels, value in sizes.items():
        st_ = os.statvfs(dict(labels)["mountpoint"])
        assert value == st_.f_blocks * st_.f_bsize
    disks = series(families, "node_disk_reads_completed", "node_disk_reads_completed_total")
    assert {dict(k)["device"] for k in disks} == proc_disks()
    received = series(families, "node_network_receive_bytes", "node_network_receive_bytes_total")
    assert {dict(k)["device"] for k in received} == proc_net_devices()
    assert_no_errors_but_unstatable_mounts(families, errors)


def test_psutil_procfs_path_is_left_as_it_was(tmp_path: Path, errors: ErrorCounts) -> None:
    scrape(HostCollector(errors=errors, proc_root=str(tmp_path)))
    assert psutil.PROCFS_PATH == "/proc"


# --- against a fake proc root ------------------------------------------------------------------------


def escape_mount_field(value: str) -> str:
    return "".join(f"\\{ord(c):03o}" if c in " \t\n\\" else c for c in value)


@pytest.fixture
def proc_root(tmp_path: Path) -> Path:
    """tests/data/host/proc (cpu1 offline, partitions, lo, eth0) and mounts of real dirs under tmp_path."""
    root = tmp_path / "proc"
    shutil.copytree(FAKE_PROC, root)
    (root / "1").mkdir()
    data = tmp_path / "data"
    data.mkdir()
    read_only = tmp_path / "read only"
    read_only.mkdir()
    (root / "1" / "mounts").write_text(
        f"/dev/fake0 {escape_mount_field(str(data))} ext4 rw,relatime 0 0\n"
        f"/dev/fake0 {escape_mount_field(str(data))} ext4 rw,nosuid 0 0\n"
        "proc /proc proc rw,nosuid 0 0\n"
        f"overlay {escape_mount_field(str(tmp_path))} overlay rw 0 0\n"
        f"/dev/fake1 {escape_mount_field(str(read_only))} xfs ro,relatime 0 0\n"
        "server:/export /nonexistent/gone nfs4 rw,hard 0 0\n"
    )
    return root


def test_fake_proc_root_is_read(proc_root: Path, tmp_path: Path, errors: ErrorCounts) -> None:
    families = scrape(HostCollector(errors=errors, proc_root=str(proc_root)))

    cpu = series(families, "node_cpu_seconds", "node_cpu_seconds_total")
    assert {dict(k)["cpu"] for k in cpu} == {"0", "2"}  # the kernel's numbers, with cpu1 offline
    assert cpu[(("cpu", "2"), ("mode", "user"))] == 2.0
    assert cpu[(("cpu", "2"), ("mode", "steal"))] == 0.03
    assert cpu[(("cpu", "0"), ("mode", "idle"))] == 10.0
    assert one(families, "node_boot_time_seconds") == 1_700_000_000

    assert one(families, "node_memory_MemTotal_bytes") == 1000 * 1024
    assert one(families, "node_memory_MemFree_bytes") == 200 * 1024
    assert one(families, "node_memory_MemAvailable_bytes") == 600 * 1024
    assert one(families, "node_memory_Buffers_bytes") == 50 * 1024
    assert one(families, "node_memory_SwapTotal_bytes") == 2048 * 1024
    assert one(families, "node_memory_SwapFree_bytes") == 1024 * 1024
    assert not [name for name in families if "Cached" in name]

    assert [one(families, f"node_load{n}") for n in (1, 5, 15)] == [1.5, 0.75, 0.25]

    reads = series(families, "node_disk_read_bytes", "node_disk_read_bytes_total")
    assert reads == {
        (("device", "sda"),): 80 * 512,
        (("device", "nvme0n1"),): 2000 * 512,
        (("device", "dm-0"),): 24 * 512,
    }
    io_time = series(families, "node_disk_io_time_seconds", "node_disk_io_time_seconds_total")
    assert io_time[(("device", "nvme0n1"),)] == pytest.approx(0.12)
    write_time = series(families, "node_disk_write_time_seconds", "node_disk_write_time_seconds_total")
    assert write_time[(("device", "sda"),)] == pytest.approx(0.009)

    eth0 = (("device", "eth0"),)
    for name, value in [
        ("receive_bytes", 5000), ("transmit_bytes", 6000), ("receive_packets", 40), ("transmit_packets", 50),
        ("receive_errs", 1), ("transmit_errs", 4), ("receive_drop", 2), ("transmit_drop", 5),
    ]:  # fmt: skip
        assert series(families, f"node_network_{name}", f"node_network_{name}_total")[eth0] == value
    assert set(series(families, "node_network_receive_bytes", "node_network_receive_bytes_total")) == {
        eth0,
        (("device", "lo"),),
    }

    data = (("device", "/dev/fake0"), ("fstype", "ext4"), ("mountpoint", str(tmp_path / "data")))
    read_only = (("device", "/dev/fake1"), ("fstype", "xfs"), ("mountpoint", str(tmp_path / "read only")))
    gone = (("device", "server:/export"), ("fstype", "nfs4"), ("mountpoint", "/nonexistent/gone"))
    statvfs = os.statvfs(tmp_path / "data")
    assert series(families, "node_filesystem_size_bytes") == {
        data: statvfs.f_blocks * statvfs.f_bsize,
        read_only: statvfs.f_blocks * statvfs.f_bsize,
    }
    assert series(families, "node_filesystem_files")[data] == statvfs.f_files
    assert series(families, "node_filesystem_readonly") == {data: 0.0, read_only: 1.0, gone: 0.0}
    assert series(families, "node_filesystem_device_error") == {data: 0.0, read_only: 0.0, gone: 1.0}
    assert errors.snapshot() == {("host",): 1}  # the mount whose statfs failed


def test_failing_subsystem_is_isolated_counted_and_logged_once(
    proc_root: Path, errors: ErrorCounts, caplog: pytest.LogCaptureFixture
) -> None:
    (proc_root / "diskstats").write_text("   8       0 sda 1 2 3\n")
    (proc_root / "meminfo").unlink()
    (proc_root / "1" / "mounts").write_text("")
    collector = HostCollector(errors=errors, proc_root=str(proc_root))
    caplog.set_level(logging.INFO, logger="exporter.collectors.host")

    for _ in range(2):
        families = scrape(collector)
        assert not [name for name in families if name.startswith(("node_disk_", "node_memory_"))]
        assert "node_cpu_seconds" in families
        assert "node_load1" in families
        assert "node_network_receive_bytes" in families
    assert errors.snapshot() == {("host",): 4}
    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert sorted(r.__dict__["subsystem"] for r in warned) == ["diskstats", "meminfo"]

    shutil.copy(FAKE_PROC / "diskstats", proc_root / "diskstats")
    shutil.copy(FAKE_PROC / "meminfo", proc_root / "meminfo")
    families = scrape(collector)
    assert "node_disk_reads_completed" in families
    assert "node_memory_MemTotal_bytes" in families
    recovered = [r for r in caplog.records if r.levelno == logging.INFO]
    assert sorted(r.__dict__["subsystem"] for r in recovered) == ["diskstats", "meminfo"]
    assert errors.snapshot() == {("host",): 4}


def test_mount_table_falls_back_when_pid_1_is_hidden(proc_root: Path, errors: ErrorCounts) -> None:
    (proc_root / "mounts").write_text((proc_root / "1" / "mounts").read_text())
    (proc_root / "1" / "mounts").unlink()
    families = scrape(HostCollector(errors=errors, proc_root=str(proc_root)))
    assert len(series(families, "node_filesystem_device_error")) == 3


# Long enough that a busy machine never delays the calls that do return past it.
HANG_TIMEOUT = 1.0


class HangingStatvfs:
    """statvfs that blocks on one path until released, and records every call."""

    def __init__(self, hang_on: str) -> None:
        self.hang_on = hang_on
        self.release = threading.Event()
        self.calls: list[str] = []

    def __call__(self, path: str) -> os.statvfs_result:
        self.calls.append(path)
        if path == self.hang_on:
            self.release.wait()
        return os.statvfs("/")


@pytest.fixture
def hanging() -> Iterator[Callable[[str], HangingStatvfs]]:
    made: list[HangingStatvfs] = []

    def make(path: str) -> HangingStatvfs:
        made.append(HangingStatvfs(path))
        return made[-1]

    yield make
    for fake in made:
        fake.release.set()


def test_hung_statfs_costs_only_its_mount(
    proc_root: Path, tmp_path: Path, errors: ErrorCounts, hanging: Callable[[str], HangingStatvfs]
) -> None:
    (proc_root / "1" / "mounts").write_text(
        "nfs:/a /mnt-a nfs4 rw 0 0\nnfs:/dead /mnt-dead nfs4 rw 0 0\nnfs:/b /mnt-b nfs4 rw 0 0\n"
    )
    fake = hanging("/mnt-dead")
    collector = HostCollector(
        errors=errors, proc_root=str(proc_root), mount_timeout_seconds=HANG_TIMEOUT, statvfs=fake
    )

    def device_errors() -> dict[str, float]:
        values = series(scrape(collector), "node_filesystem_device_error")
        return {dict(k)["mountpoint"]: v for k, v in values.items()}

    assert device_errors() == {"/mnt-a": 0.0, "/mnt-dead": 1.0, "/mnt-b": 0.0}
    assert device_errors() == {"/mnt-a": 0.0, "/mnt-dead": 1.0, "/mnt-b": 0.0}
    assert fake.calls.count("/mnt-dead") == 1  # a stuck mount is not tried again while its call hangs
    assert errors.snapshot() == {("host",): 2}

    fake.release.set()
    wait_until(lambda: device_errors()["/mnt-dead"] == 0.0)
    assert fake.calls.count("/mnt-dead") == 2


def test_statfs_reports_each_paths_own_failure() -> None:
    def statvfs(path: str) -> os.statvfs_result:
        if path == "/etimedout":
            raise TimeoutError(errno.ETIMEDOUT, "Connection timed out", path)
        if path == "/missing":
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
        return os.statvfs("/")

    outcomes = BoundedStatfs(5.0, statvfs).stat_all(["/", "/etimedout", "/missing", "/"])
    assert isinstance(outcomes[0], os.statvfs_result)
    assert isinstance(outcomes[1], TimeoutError)
    assert not isinstance(outcomes[1], StuckMountError)
    assert isinstance(outcomes[2], FileNotFoundError)
    assert isinstance(outcomes[3], os.statvfs_result)


def test_statfs_goes_on_after_a_hung_path(hanging: Callable[[str], HangingStatvfs]) -> None:
    fake = hanging("/dead")
    statfs = BoundedStatfs(HANG_TIMEOUT, fake)
    outcomes = statfs.stat_all(["/a", "/dead", "/b", "/dead", "/c"])
    ok, stuck = os.statvfs_result, StuckMountError
    assert [type(o) for o in outcomes] == [ok, stuck, ok, stuck, ok]
    assert fake.calls.count("/dead") == 1


# Short deadlines for the tests that wait them out; the calls meant to finish take far less.
SHORT_TIMEOUT = 0.2
FAILURES: dict[str, OSError] = {
    "/missing": FileNotFoundError(errno.ENOENT, "No such file or directory", "/missing"),
    "/etimedout": TimeoutError(errno.ETIMEDOUT, "Connection timed out", "/etimedout"),
    "/denied": PermissionError(errno.EACCES, "Permission denied", "/denied"),
}


def fixed_statvfs(path: str) -> os.statvfs_result:
    """A result that tells paths apart, or the path's failure from ``FAILURES``."""
    if path in FAILURES:
        raise FAILURES[path]
    return os.statvfs_result((len(path),) * 10)


# One instance for all examples, as a collector keeps one across scrapes.
mixed_statfs = BoundedStatfs(5.0, fixed_statvfs)


@given(st.lists(st.sampled_from(["/", "/proc", "/var/lib", *FAILURES]), max_size=30))
def test_statfs_batch_matches_calling_statvfs_in_order(paths: list[str]) -> None:
    expected: list[StatOutcome] = []
    for path in paths:
        try:
            expected.append(fixed_statvfs(path))
        except OSError as exc:
            expected.append(exc)
    assert mixed_statfs.stat_all(paths) == expected


def test_statfs_hung_path_has_its_deadline_and_is_skipped_until_it_returns(
    hanging: Callable[[str], HangingStatvfs],
) -> None:
    fake = hanging("/dead")
    statfs = BoundedStatfs(SHORT_TIMEOUT, fake)
    ok, stuck = os.statvfs_result, StuckMountError

    started = time.monotonic()
    outcomes = statfs.stat_all(["/a", "/dead", "/b", "/c"])
    assert time.monotonic() - started >= SHORT_TIMEOUT
    assert [type(o) for o in outcomes] == [ok, stuck, ok, ok]

    started = time.monotonic()
    outcomes = statfs.stat_all(["/dead", "/a"])
    assert time.monotonic() - started < SHORT_TIMEOUT  # not waited on again while its call hangs
    assert [type(o) for o in outcomes] == [stuck, ok]
    assert fake.calls.count("/dead") == 1

    fake.release.set()
    wait_until(lambda: isinstance(statfs.stat_all(["/dead"])[0], ok), timeout=5.0)
    assert fake.calls.count("/dead") == 2


def test_statfs_slow_paths_each_within_their_deadline_are_not_stuck() -> None:
    def slow_statvfs(path: str) -> os.statvfs_result:
        time.sleep(SHORT_TIMEOUT / 2)
        return os.statvfs_result((0,) * 10)

    started = time.monotonic()
    outcomes = BoundedStatfs(SHORT_TIMEOUT, slow_statvfs).stat_all(["/a", "/b", "/c"])
    assert time.monotonic() - started > SHORT_TIMEOUT  # the batch outlasts one deadline
    assert outcomes == [os.statvfs_result((0,) * 10)] * 3


# --- parsers and pure logic under hypothesis --------------------------------------------------------

ticks = st.integers(min_value=0, max_value=2**53)
cpu_rows = st.dictionaries(st.integers(min_value=0, max_value=8191), st.lists(ticks, min_size=8, max_size=10))


@given(cpu_rows, st.integers(min_value=0, max_value=2**40))
def test_parse_stat_keeps_kernel_cpu_numbers(rows: dict[int, list[int]], btime: int) -> None:
    lines = ["cpu  1 2 3 4 5 6 7 8 9 10"]
    lines += [f"cpu{cpu} " + " ".join(map(str, values)) for cpu, values in rows.items()]
    lines += ["intr 1 2 3", f"btime {btime}", "processes 7"]
    stat = parse_stat("\n".join(lines) + "\n", USER_HZ)
    assert stat.boot_time_seconds == btime
    assert stat.cpus == {
        str(cpu): CpuTimes(*(v / USER_HZ for v in values[:8])) for cpu, values in rows.items()
    }


@given(st.lists(ticks, min_size=4, max_size=7))
def test_parse_stat_reads_missing_later_modes_as_zero(values: list[int]) -> None:
    stat = parse_stat("cpu0 " + " ".join(map(str, values)) + "\n", USER_HZ)
    expected = [v / USER_HZ for v in values] + [0.0] * (8 - len(values))
    assert stat.cpus == {"0": CpuTimes(*expected)}
    assert stat.boot_time_seconds is None


@given(st.lists(ticks, max_size=3))
def test_parse_stat_rejects_truncated_cpu_lines(values: list[int]) -> None:
    with pytest.raises(ValueError, match="too few fields"):
        parse_stat("cpu3 " + " ".join(map(str, values)) + "\n", USER_HZ)


loads = st.integers(min_value=0, max_value=10**7).map(lambda hundredths: hundredths / 100)


@given(loads, loads, loads, st.integers(min_value=0, max_value=10**6))
def test_parse_loadavg(one_: float, five: float, fifteen: float, pid: int) -> None:
    load = parse_loadavg(f"{one_:.2f} {five:.2f} {fifteen:.2f} 1/234 {pid}\n")
    assert (load.one, load.five, load.fifteen) == (one_, five, fifteen)


@given(st.text(max_size=40).filter(lambda text: len(text.split()) < 3))
def test_parse_loadavg_rejects_short_input(text: str) -> None:
    with pytest.raises(ValueError, match="malformed"):
        parse_loadavg(text)


word = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters=" \t\n\\,"), min_size=1, max_size=12
)
path = st.lists(
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="/\x00"), min_size=1, max_size=8),
    max_size=4,
).map(lambda parts: "/" + "/".join(parts))
mounts = st.lists(
    st.builds(
        Mount,
        device=word,
        mountpoint=path,
        fstype=word,
        options=st.lists(word, min_size=1, max_size=4).map(tuple),
    ),
    max_size=8,
)


@given(mounts)
def test_parse_mounts_round_trips_the_kernels_escaping(table: list[Mount]) -> None:
    text = "".join(
        f"{m.device} {escape_mount_field(m.mountpoint)} {m.fstype} {','.join(m.options)} 0 0\n" for m in table
    )
    assert parse_mounts(text) == table


@given(st.lists(word, min_size=1, max_size=3).map(" ".join))
def test_parse_mounts_rejects_short_lines(line: str) -> None:
    with pytest.raises(ValueError, match="malformed"):
        parse_mounts(line + "\n")


@given(mounts, st.sampled_from(["/", "/host/root", "/host/root/"]))
def test_select_filesystems_filters_and_deduplicates(table: list[Mount], rootfs: str) -> None:
    selected = select_filesystems(table, rootfs)
    labels = [fs.labels for fs in selected]
    assert len(labels) == len(set(labels))
    for fs in selected:
        assert not MOUNT_POINTS_EXCLUDE.search(fs.mountpoint)
        assert not FS_TYPES_EXCLUDE.search(fs.fstype)
        assert fs.stat_path.rstrip("/") == (rootfs.rstrip("/") + fs.mountpoint).rstrip("/")
    kept = {
        (m.device, m.fstype, m.mountpoint)
        for m in table
        if not MOUNT_POINTS_EXCLUDE.search(m.mountpoint) and not FS_TYPES_EXCLUDE.search(m.fstype)
    }
    if rootfs == "/":
        assert set(labels) == kept


@given(path, st.sampled_from(["/host/root", "/host/root/", "/rootfs"]))
def test_strip_rootfs_inverts_prefixing(host_path: str, rootfs: str) -> None:
    assert strip_rootfs(host_path, "/") == host_path
    assert strip_rootfs(rootfs.rstrip("/") + host_path.rstrip("/"), rootfs) == (host_path.rstrip("/") or "/")


def test_device_exclusions_follow_node_exporter() -> None:
    excluded = ["sda1", "vdb2", "xvda1", "nvme0n1p3", "loop7", "ram0", "zram0", "fd0"]
    kept = ["sda", "vda", "nvme0n1", "dm-0", "md0", "sr0", "mmcblk0"]
    assert all(DISK_DEVICES_EXCLUDE.search(name) for name in excluded)
    assert not any(DISK_DEVICES_EXCLUDE.search(name) for name in kept)


seconds = st.floats(min_value=0, max_value=1e9, allow_nan=False)
cpu_times = st.builds(CpuTimes, *([seconds] * len(CPU_MODES)))


@given(st.none() | cpu_times, cpu_times)
def test_hold_monotonic_never_goes_back_unless_the_cpu_restarted(
    previous: CpuTimes | None, current: CpuTimes
) -> None:
    exposed = hold_monotonic(previous, current)
    if previous is None or previous.idle - current.idle >= JUMP_BACK_SECONDS:
        assert exposed == current
        return
    for (mode, value), (_, before), (_, now) in zip(
        exposed.by_mode(), previous.by_mode(), current.by_mode(), strict=True
    ):
        assert value == max(before, now), mode


def test_cpu_counters_hold_when_the_kernel_steps_back(proc_root: Path, errors: ErrorCounts) -> None:
    collector = HostCollector(errors=errors, proc_root=str(proc_root))
    scrape(collector)
    (proc_root / "stat").write_text("cpu0 100 0 50 999 4 0 1 0 0 0\ncpu2 200 1 60 1000 6 0 2 3 0 0\n")
    cpu = series(scrape(collector), "node_cpu_seconds", "node_cpu_seconds_total")
    assert cpu[(("cpu", "0"), ("mode", "idle"))] == 10.0  # 0.01 s back: held
    assert cpu[(("cpu", "0"), ("mode", "iowait"))] == 0.05
    assert cpu[(("cpu", "2"), ("mode", "idle"))] == 10.0  # 10 s back: a replugged CPU, start over

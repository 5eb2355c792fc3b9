"""Our host series next to a real node_exporter scraping the same machine over HTTP."""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from exporter.collectors.errors import ErrorCounts
from exporter.collectors.host import DISK_DEVICES_EXCLUDE, HostCollector
from exporter.host.filesystems import FS_TYPES_EXCLUDE, MOUNT_POINTS_EXCLUDE
from tests.support import free_port, http_ok, require_program, stop_process, wait_until

Families = dict[str, Metric]

# The collectors we mirror, plus stat for node_boot_time_seconds. The exclusions are ours (node_exporter
# 1.10's defaults) because distribution packages change them: Debian's drops lo, /run, /mnt and /media.
NODE_EXPORTER_FLAGS = (
    "--collector.disable-defaults",
    "--collector.cpu",
    "--collector.meminfo",
    "--collector.loadavg",
    "--collector.filesystem",
    "--collector.diskstats",
    "--collector.netdev",
    "--collector.stat",
    f"--collector.filesystem.mount-points-exclude={MOUNT_POINTS_EXCLUDE.pattern}",
    f"--collector.filesystem.fs-types-exclude={FS_TYPES_EXCLUDE.pattern}",
    f"--collector.diskstats.device-exclude={DISK_DEVICES_EXCLUDE.pattern}",
    "--collector.netdev.device-exclude=",
)


def fetch(url: str) -> Families:
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def label_names(family: Metric) -> set[frozenset[str]]:
    return {frozenset(sample.labels) for sample in family.samples}


def label_values(family: Metric, *names: str) -> set[tuple[str, ...]]:
    return {tuple(sample.labels[name] for name in names) for sample in family.samples}


def values(family: Metric) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(sample.labels.items())): sample.value for sample in family.samples}


@pytest.fixture(scope="module")
def node_exporter_url() -> Iterator[str]:
    binary = require_program("prometheus-node-exporter", "/usr/bin/prometheus-node-exporter")
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}", *NODE_EXPORTER_FLAGS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        wait_until(lambda: process.poll() is not None or http_ok(url))
        if process.poll() is not None:
            _, stderr = process.communicate()
            pytest.fail(f"node_exporter exited with {process.returncode}: {stderr.decode()[-2000:]}")
        yield url
    finally:
        stop_process(process)
        if process.stderr:
            process.stderr.close()


@pytest.fixture(scope="module")
def our_url() -> Iterator[str]:
    registry = CollectorRegistry()
    registry.register(HostCollector(errors=ErrorCounts()))
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def scrapes(node_exporter_url: str, our_url: str) -> tuple[Families, Families]:
    return fetch(our_url), fetch(node_exporter_url)


def test_every_series_we_export_node_exporter_exports_alike(scrapes: tuple[Families, Families]) -> None:
    ours, theirs = scrapes
    assert set(ours) <= set(theirs), "names node_exporter does not export"
    for name, family in ours.items():
        reference = theirs[name]
        assert family.type == reference.type, name
        assert family.documentation == reference.documentation, name
        if family.samples and reference.samples:
            assert label_names(family) == label_names(reference), name


def test_same_cpus_mounts_disks_and_interfaces(scrapes: tuple[Families, Families]) -> None:
    ours, theirs = scrapes
    for name, labels in [
        ("node_cpu_seconds", ("cpu", "mode")),
        ("node_filesystem_device_error", ("device", "mountpoint", "fstype")),
        ("node_filesystem_size_bytes", ("device", "mountpoint", "fstype")),
        ("node_disk_io_time_seconds", ("device",)),
        ("node_network_receive_bytes", ("device",)),
    ]:
        assert label_values(ours[name], *labels) == label_values(theirs[name], *labels), name


def test_static_values_agree(scrapes: tuple[Families, Families]) -> None:
    ours, theirs = scrapes
    for name in [
        "node_boot_time_seconds",
        "node_memory_MemTotal_bytes",
        "node_memory_SwapTotal_bytes",
        "node_filesystem_size_bytes",
        "node_filesystem_files",
        "node_filesystem_readonly",
    ]:
        assert values(ours[name]) == values(theirs[name]), name


def test_counters_agree_within_the_gap_between_scrapes(node_exporter_url: str, our_url: str) -> None:
    before = fetch(our_url)
    theirs = fetch(node_exporter_url)
    after = fetch(our_url)
    for name in ["node_cpu_seconds", "node_disk_reads_completed", "node_network_receive_packets"]:
        low, reference, high = values(before[name]), values(theirs[name]), values(after[name])
        for labels, value in reference.items():
            # Per-CPU idle and iowait may step back by a tick between reads; both exporters hold them.
            assert low[labels] - 0.02 <= value <= high[labels] + 0.02, (name, labels)

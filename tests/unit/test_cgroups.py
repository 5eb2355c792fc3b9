"""The cgroup parser: real-world lines of every runtime, driver and cgroup version, and generated ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.collectors.errors import ErrorCounts
from exporter.pods.cgroups import ContainerCgroup, parse_cgroup_path, parse_proc_cgroup
from exporter.pods.procfs import ProcCgroups

PROC = Path(__file__).resolve().parents[1] / "data" / "proc"
CONTAINER_ID_TAIL = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852"

# tests/data/proc/<pid>/cgroup: one process per runtime/driver/cgroup-version combination.
EXPECTED: dict[int, tuple[str, str] | None] = {
    1001: ("0b6cbd0c-5c8a-4d1e-9a51-3f0f6c0e7a11", "a3e9"),  # v2, systemd, containerd
    1002: ("1c7dce1d-6d9b-4e2f-8b62-4a1a7d1f8b22", "a3ea"),  # v2, systemd, CRI-O
    1003: ("2d8edf2e-7eac-4f30-9c73-5b2b8e2a9c33", "a3eb"),  # v2, cgroupfs, bare ID
    1004: ("3e9fe03f-8fbd-4041-8d84-6c3c9f3bad44", "a3ec"),  # v2, private cgroup namespace (/../..)
    1005: ("4fa0f140-90ce-4152-9e95-7d4da04cbe55", "a3ed"),  # v1, systemd, Docker
    1006: ("50b10251-a1df-4263-afa6-8e5eb15dcf66", "a3ee"),  # v1, cgroupfs, Guaranteed QoS, bare ID
    1007: ("61c21362-b2e0-4374-b0b7-9f6fc26ed077", "a3ef"),  # v1, cgroupfs, CRI-O
    1008: ("72d32473-c3f1-4485-81c8-a070d37fe188", "a3f0"),  # hybrid v1 + unified, systemd, containerd
    1009: ("8e1f7c2b4a9d4e3f8b6c5d4e3f2a1b0c", "a3f1"),  # static pod: UID is the manifest hash
    1010: ("94f54695-e513-46a7-a3ea-c292f59a03aa", "a3f2"),  # kind: kubelet slices inside a Docker scope
    1011: ("a5065706-f624-47b8-b4fb-d3a3006b14bb", "a3f3"),  # CRI-O with a nested cgroup in the scope
    2001: None,  # host service
    2002: None,  # CRI-O conmon, beside the container
    2003: None,  # the pod's own cgroup, in no container
    2004: None,  # v1 + unified user session
}


def expected(pid: int) -> ContainerCgroup | None:
    found = EXPECTED[pid]
    return None if found is None else ContainerCgroup(found[0], found[1] + CONTAINER_ID_TAIL)


@pytest.mark.parametrize("pid", sorted(EXPECTED))
def test_real_world_proc_files(pid: int) -> None:
    assert parse_proc_cgroup((PROC / str(pid) / "cgroup").read_text()) == expected(pid)


def test_every_sample_is_covered() -> None:
    assert {int(p.name) for p in PROC.iterdir()} == set(EXPECTED)


def test_proc_reader_uses_the_configured_root_and_treats_vanished_pids_as_unknown() -> None:
    reader = ProcCgroups(str(PROC))
    assert reader.container_of(1001) == expected(1001)
    assert reader.container_of(999_999) is None


def test_proc_reader_counts_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "cgroup").mkdir()  # reading a directory fails with an OSError other than "gone"
    errors = ErrorCounts()
    assert ProcCgroups(str(tmp_path), errors=errors).container_of(7) is None
    assert errors.snapshot() == {("pods",): 1}


def test_container_segment_must_be_below_the_pod() -> None:
    outer = "a" * 64
    assert parse_cgroup_path(f"/system.slice/docker-{outer}.scope/kubepods/besteffort/pod{'1' * 32}") is None


def test_uppercase_and_underscores_are_normalised() -> None:
    uid = "0B6CBD0C_5C8A_4D1E_9A51_3F0F6C0E7A11"
    found = parse_cgroup_path(f"/kubepods-pod{uid}.slice/cri-containerd-{'AB' * 32}.scope")
    assert found == ContainerCgroup("0b6cbd0c-5c8a-4d1e-9a51-3f0f6c0e7a11", "ab" * 32)


@given(st.text())
def test_never_raises_on_arbitrary_text(text: str) -> None:
    parse_proc_cgroup(text)
    parse_cgroup_path(text)


@given(
    st.lists(
        st.sampled_from(
            [
                "/",
                ":",
                "0",
                "pod",
                "-",
                "_",
                ".slice",
                ".scope",
                "kubepods",
                "a" * 32,
                "crio-",
                "\n",
                "f" * 64,
                "../",
            ]
        )
    ).map("".join)
)
def test_never_raises_on_cgroup_like_text(text: str) -> None:
    parse_proc_cgroup(text)


HEX = "0123456789abcdef"
uids = st.uuids().map(str) | st.text(HEX, min_size=32, max_size=32)
container_ids = st.text(HEX, min_size=64, max_size=64)


@st.composite
def proc_cgroup_files(draw: st.DrawFn) -> tuple[str, ContainerCgroup]:
    """A ``/proc/<pid>/cgroup`` file as a kubelet with some driver, runtime and cgroup version makes it."""
    uid, cid = draw(uids), draw(container_ids)
    qos = draw(st.sampled_from(["", "burstable", "besteffort"]))
    runtime = draw(st.sampled_from(["containerd", "crio", "docker"]))
    if draw(st.booleans()):  # systemd driver
        prefix = draw(st.sampled_from(["", "kubelet-"]))
        slices = [f"{prefix}kubepods.slice"]
        if qos:
            slices.append(f"{prefix}kubepods-{qos}.slice")
        slices.append(f"{prefix}kubepods{'-' + qos if qos else ''}-pod{uid.replace('-', '_')}.slice")
        scope = {"containerd": "cri-containerd", "crio": "crio", "docker": "docker"}[runtime]
        segments = [*slices, f"{scope}-{cid}.scope"]
    else:  # cgroupfs driver
        segments = [
            "kubepods",
            *([qos] if qos else []),
            f"pod{uid}",
            f"crio-{cid}" if runtime == "crio" else cid,
        ]
    pod_position = len(segments) - 2
    if draw(st.booleans()):
        segments.append(draw(st.sampled_from(["container", "init"])))
    start = draw(st.integers(min_value=0, max_value=pod_position))
    if start:  # inside a private cgroup namespace the path starts from the reader's own cgroup
        segments = [".."] * draw(st.integers(1, 3)) + segments[start:]
    path = "/" + "/".join(segments)
    version = draw(st.sampled_from(["v1", "v2", "hybrid"]))
    if version == "v2":
        text = f"0::{path}\n"
    else:
        lines = [f"12:memory:{path}", f"11:cpu,cpuacct:{path}", f"1:name=systemd:{path}"]
        if version == "hybrid":
            lines.append(f"0::{path}")
        text = "\n".join(lines) + "\n"
    return text, ContainerCgroup(uid, cid)


@given(proc_cgroup_files())
def test_round_trips_generated_files(case: tuple[str, ContainerCgroup]) -> None:
    text, want = case
    assert parse_proc_cgroup(text) == want

"""Pod attribution on a real GPU: the whole exporter against NVML, compared with ``nvidia-smi``.

Run from the repository root, as root if possible, on a machine with an NVIDIA GPU and PyTorch::

    PYTHONPATH=. python3 tests/gpu/check_attribution.py --out DIR

Three processes use GPU 0: a matmul loop that also holds 2 GiB, a process holding 5 GiB and one
holding 1 GiB. The first two are moved into cgroups shaped like a kubelet's (systemd driver,
containerd) of two different pods; the third stays outside any pod. Where the cgroup tree cannot be
written (not root, read-only, no cgroupfs), the same paths are written into a stand-in ``/proc``
that ``--proc-root`` points at, and the output says so.

The real exporter (``python -m exporter --gpu-source nvml``) then runs in three configurations:

- ``a``: the pod-resources socket does not exist, so every process's memory is unattributed;
- ``b``: a fake kubelet allocates GPU 0 (by its ``GPU-<uuid>`` ID) to one container, so by the
  exactly-one-holder rule the two processes in pod cgroups count as that container's and the one
  outside any pod stays unattributed;
- ``c``: as ``b`` with the third process moved into a pod cgroup too, read again by the same
  exporter, so everything counts as the container's.

Each configuration is scraped twice, each time together with
``nvidia-smi --query-compute-apps=pid,used_memory``. The script prints the tables, writes
``DIR/attribution.json`` and the scraped text, and exits 1 if any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from prometheus_client.parser import text_string_to_metric_families

from exporter.pods.cgroups import ContainerCgroup, parse_proc_cgroup
from tests.fakes.fake_kubelet import Allocation, FakeKubelet, KubeletState
from tests.gpu.harness import smi, smi_apps, start_load, stop_load
from tests.support import free_port, stop_process

MIB = 1024**2
WORKER_SECONDS = 150.0
HOLDER = ("team-a", "train-0", "trainer")
RESOURCE = "nvidia.com/gpu"
# NVML counts memory in bytes and nvidia-smi prints whole MiB; a process's figure may round either way.
TOLERANCE_MIB = 1.0


@dataclass(frozen=True)
class Role:
    """One load process: what it runs, what it holds, and where it sits in configurations a/b and c."""

    name: str
    kind: str
    gib: int
    in_pod_from: str  # first configuration in which the process sits in a pod cgroup; "" = never


DEFAULT_ROLES = (
    Role("trainer", "matmul", 2, "a"),
    Role("other-pod", "hold", 5, "a"),
    Role("host", "hold", 1, "c"),
)


@dataclass(frozen=True)
class Placed:
    """A started load process and the pod cgroup prepared for it."""

    role: Role
    pid: int
    cgroup_path: str
    expected: ContainerCgroup


# -- placing processes in pod cgroups ------------------------------------------------------------


def kubelet_cgroup_path() -> tuple[str, ContainerCgroup]:
    """A fresh pod and container cgroup as the kubelet's systemd driver and containerd name them."""
    pod_uid = str(uuid.uuid4())
    container_id = secrets.token_hex(32)
    slice_ = f"kubepods-besteffort-pod{pod_uid.replace('-', '_')}.slice"
    path = f"/kubepods.slice/kubepods-besteffort.slice/{slice_}/cri-containerd-{container_id}.scope"
    return path, ContainerCgroup(pod_uid, container_id)


class Placement(Protocol):
    """Where the exporter reads cgroups from, and how a process is put into a pod's cgroup."""

    mode: str
    proc_root: str

    def place(self, pid: int, path: str) -> None: ...

    def close(self) -> None: ...


def cgroup_mount() -> tuple[Path, str]:
    """The cgroup hierarchy to write into: the v2 mount if there is one, else a v1 hierarchy."""
    v1: list[tuple[Path, str]] = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, target, fstype, options, *_ = line.split()
        if fstype == "cgroup2":
            return Path(target), f"cgroup2 {options}"
        if fstype == "cgroup":
            v1.append((Path(target), f"cgroup {options}"))
    if not v1:
        raise OSError("no cgroup filesystem is mounted")
    return v1[0]


class CgroupTree:
    """Real cgroup directories; processes are moved with ``cgroup.procs``, removed again on close."""

    mode = "cgroupfs"
    proc_root = "/proc"

    def __init__(self, mount: Path) -> None:
        self._mount = mount
        self._created: list[Path] = []

    def place(self, pid: int, path: str) -> None:
        directory = self._mount / path.lstrip("/")
        missing = [p for p in (directory, *directory.parents) if not p.exists()]
        directory.mkdir(parents=True, exist_ok=True)
        self._created.extend(sorted(missing, key=lambda p: len(p.parts)))
        (directory / "cgroup.procs").write_text(f"{pid}\n")

    def close(self) -> None:
        # A killed process leaves its cgroup a moment after it is reaped; rmdir fails (EBUSY) until then.
        for directory in sorted(set(self._created), key=lambda p: -len(p.parts)):
            for _ in range(50):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


class StandInProc:
    """A directory of ``<pid>/cgroup`` files for ``--proc-root``, when real cgroups cannot be made."""

    mode = "proc-root"

    def __init__(self) -> None:
        self.proc_root = tempfile.mkdtemp(prefix="kgm-proc-")

    def place(self, pid: int, path: str) -> None:
        self._write(pid, f"0::{path}\n")

    def keep_outside(self, pid: int) -> None:
        real = Path(f"/proc/{pid}/cgroup").read_text()
        if parse_proc_cgroup(real) is None:
            self._write(pid, real)
        else:
            self.place(pid, "/")

    def _write(self, pid: int, text: str) -> None:
        directory = Path(self.proc_root) / str(pid)
        directory.mkdir(exist_ok=True)
        (directory / "cgroup").write_text(text)

    def close(self) -> None:
        shutil.rmtree(self.proc_root, ignore_errors=True)


def seen_cgroup(placement: Placement, pid: int) -> str:
    path = Path(placement.proc_root) / str(pid) / "cgroup"
    return path.read_text().strip() if path.exists() else "(none)"


def choose_placement(first: Placed) -> tuple[Placement, dict[str, Any]]:
    """Try real cgroups with the first process and check that ``/proc`` shows it in its pod."""
    own = Path("/proc/self/cgroup").read_text()
    report: dict[str, Any] = {"own_cgroup": own.strip()}
    tree: CgroupTree | None = None
    try:
        if parse_proc_cgroup(own) is not None:
            raise OSError("this process already sits in a pod cgroup; processes outside pods are not")
        mount, described = cgroup_mount()
        report["mount"] = f"{mount} {described}"
        tree = CgroupTree(mount)
        tree.place(first.pid, first.cgroup_path)
        seen = Path(f"/proc/{first.pid}/cgroup").read_text()
        report["proc_cgroup_after_move"] = seen.strip()
        if parse_proc_cgroup(seen) != first.expected:
            raise OSError(f"/proc/{first.pid}/cgroup does not name the pod cgroup: {seen.strip()!r}")
    except OSError as error:
        if tree is not None:
            tree.close()
        report["cgroupfs_error"] = str(error)
        return StandInProc(), report
    return tree, report


# -- nvidia-smi and the exporter -----------------------------------------------------------------


@contextmanager
def exporter(socket_path: str, proc_root: str, log_path: Path) -> Iterator[str]:
    """The real exporter on NVML until the block ends; yields its base URL once /readyz answers."""
    port = free_port()
    with log_path.open("a") as log:
        log.write(f"--- socket={socket_path} proc_root={proc_root}\n")
        log.flush()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "exporter",
                "--gpu-source",
                "nvml",
                "--host-metrics",
                "false",
                "--listen",
                f"127.0.0.1:{port}",
                "--pod-resources-socket",
                socket_path,
                "--proc-root",
                proc_root,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "KGM_NODE_NAME": "gpu-validation"},
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"exporter exited with {proc.returncode}; see {log_path}")
                try:
                    with urllib.request.urlopen(f"{base}/readyz", timeout=2) as reply:
                        if reply.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("exporter did not become ready in 60 s")
                time.sleep(0.3)
            yield base
        finally:
            stop_process(proc)


Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(base: str, index: str) -> tuple[str, Samples, dict[int, float]]:
    """One /metrics answer and nvidia-smi's process list, asked for at the same moment."""
    with ThreadPoolExecutor(1) as pool:
        theirs = pool.submit(smi_apps, index)
        with urllib.request.urlopen(f"{base}/metrics", timeout=15) as reply:
            body = reply.read().decode()
        apps = theirs.result()
    samples: Samples = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return body, samples, apps


# -- checks --------------------------------------------------------------------------------------


@dataclass
class Observation:
    """What one scrape said about GPU 0, next to nvidia-smi."""

    config: str
    smi_mib: dict[int, float]
    container_mib: dict[str, float]
    container_util: dict[str, float]
    unattributed_mib: float | None
    device_labels: dict[str, str]
    pod_resources_up: float | None
    pods_collector_errors: float | None
    failures: list[str] = field(default_factory=list)


def _on(samples: Samples, name: str, uuid_: str) -> list[tuple[dict[str, str], float]]:
    return [(labels, value) for labels, value in samples.get(name, []) if labels.get("uuid") == uuid_]


def _one(samples: Samples, name: str, **labels: str) -> float | None:
    found = [v for lbl, v in samples.get(name, []) if all(lbl.get(k) == x for k, x in labels.items())]
    return found[0] if len(found) == 1 else None


def observe(config: str, samples: Samples, apps: dict[int, float], gpu_uuid: str) -> Observation:
    def who(labels: dict[str, str]) -> str:
        return "/".join(labels[k] for k in ("namespace", "pod", "container"))

    device = _on(samples, "gpu_utilization_ratio", gpu_uuid)
    named = {k: device[0][0].get(k, "") for k in ("namespace", "pod", "container")} if device else {}
    unattributed = _on(samples, "gpu_unattributed_memory_used_bytes", gpu_uuid)
    return Observation(
        config=config,
        smi_mib=apps,
        container_mib={
            who(lbl): v / MIB for lbl, v in _on(samples, "gpu_container_memory_used_bytes", gpu_uuid)
        },
        container_util={who(lbl): v for lbl, v in _on(samples, "gpu_container_utilization_ratio", gpu_uuid)},
        unattributed_mib=unattributed[0][1] / MIB if len(unattributed) == 1 else None,
        device_labels=named,
        pod_resources_up=_one(samples, "kgm_pod_resources_up"),
        pods_collector_errors=_one(samples, "kgm_exporter_collector_errors_total", collector="pods"),
    )


def close_to(ours: float | None, theirs: float, processes: int) -> bool:
    return ours is not None and abs(ours - theirs) <= TOLERANCE_MIB * max(1, processes)


def check(obs: Observation, placed: Sequence[Placed]) -> None:
    """Fill ``obs.failures`` with what the configuration promised and the scrape did not show."""
    fail = obs.failures.append
    pids = {p.pid for p in placed}
    if not pids <= set(obs.smi_mib):
        fail(f"nvidia-smi does not list every load process: {sorted(pids - set(obs.smi_mib))}")
    in_pod = {p.pid for p in placed if p.role.in_pod_from and p.role.in_pod_from <= obs.config}
    # With a kubelet, pod processes go to the sole holder; the rest (and anything else on the GPU) stays.
    attributed = in_pod if obs.config != "a" else set()
    want_container = sum(obs.smi_mib.get(pid, 0.0) for pid in attributed)
    want_unattributed = sum(v for pid, v in obs.smi_mib.items() if pid not in attributed)
    holder = "/".join(HOLDER)
    if not close_to(obs.unattributed_mib, want_unattributed, len(obs.smi_mib) - len(attributed)):
        fail(f"unattributed {obs.unattributed_mib} MiB, nvidia-smi says {want_unattributed} MiB")
    if obs.config == "a":
        if obs.pod_resources_up != 0.0:
            fail(f"kgm_pod_resources_up {obs.pod_resources_up} without a kubelet")
        if obs.container_mib or obs.container_util:
            fail(f"container series without a kubelet: {obs.container_mib} {obs.container_util}")
        if any(obs.device_labels.values()):
            fail(f"device series name a holder without a kubelet: {obs.device_labels}")
        return
    if obs.pod_resources_up != 1.0:
        fail(f"kgm_pod_resources_up {obs.pod_resources_up} with the fake kubelet")
    # Without a kubelet each retried dial counts as a pods error by design; with one, none may.
    if obs.pods_collector_errors not in (0.0, None):
        fail(f"pods collector errors: {obs.pods_collector_errors}")
    if set(obs.container_mib) != {holder}:
        fail(f"container memory series {sorted(obs.container_mib)}, want only {holder}")
    if not close_to(obs.container_mib.get(holder), want_container, len(attributed)):
        fail(f"container memory {obs.container_mib.get(holder)} MiB, nvidia-smi says {want_container} MiB")
    if not obs.container_util.get(holder, 0.0) > 0.0:
        fail(f"container utilisation {obs.container_util.get(holder)} while the matmul loop runs")
    if obs.device_labels != dict(zip(("namespace", "pod", "container"), HOLDER, strict=True)):
        fail(f"device series labels {obs.device_labels}, want {holder}")


# -- the run -------------------------------------------------------------------------------------


def gpu_identity() -> dict[str, str]:
    index, gpu_uuid, name, driver = smi(
        "--query-gpu=index,uuid,name,driver_version", "--format=csv,noheader", "-i", "0"
    )[0]
    return {"index": index, "uuid": gpu_uuid, "name": name, "driver": driver}


def run(out: Path, roles: Sequence[Role] = DEFAULT_ROLES, seconds: float = WORKER_SECONDS) -> dict[str, Any]:
    """Start the load, place it, run the three configurations; the JSON-ready result with its failures."""
    out.mkdir(parents=True, exist_ok=True)
    gpu = gpu_identity()
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "gpu": gpu,
        "python": sys.version.split()[0],
    }
    socket_dir = tempfile.mkdtemp(prefix="kgm-")  # unix socket paths are limited to about 100 bytes
    socket_path = str(Path(socket_dir) / "kubelet.sock")
    log_path = out / "exporter.log"
    procs = start_load([(r.kind, r.gib) for r in roles], seconds)
    placement: Placement | None = None
    kubelet: FakeKubelet | None = None
    observations: list[Observation] = []
    try:
        placed = [Placed(r, p.pid, *kubelet_cgroup_path()) for r, p in zip(roles, procs, strict=True)]
        result["processes"] = [
            {
                "pid": p.pid,
                "role": p.role.name,
                "kind": p.role.kind,
                "gib": p.role.gib,
                "cgroup": p.cgroup_path,
            }
            for p in placed
        ]
        placement, result["cgroups"] = choose_placement(placed[0])
        result["cgroups"]["mode"] = placement.mode
        for p in placed:
            if p.role.in_pod_from == "a":
                placement.place(p.pid, p.cgroup_path)
            elif isinstance(placement, StandInProc):
                placement.keep_outside(p.pid)
        result["cgroups"]["seen_by_exporter"] = {p.pid: seen_cgroup(placement, p.pid) for p in placed}

        def scrape_twice(config: str, base: str) -> None:
            for attempt in range(2):
                time.sleep(2.0)  # let NVML take process-utilisation samples since the last read
                body, samples, apps = scrape(base, gpu["index"])
                if attempt == 1:
                    (out / f"metrics-{config}.txt").write_text(body)
                obs = observe(config, samples, apps, gpu["uuid"])
                check(obs, placed)
                observations.append(obs)

        with exporter(socket_path, placement.proc_root, log_path) as base:
            scrape_twice("a", base)

        kubelet = FakeKubelet(
            socket_path,
            KubeletState(
                allocations=[Allocation(*HOLDER, RESOURCE, [gpu["uuid"]])],
                allocatable={RESOURCE: [gpu["uuid"]]},
                get_mode="serve",
            ),
        )
        kubelet.start()
        with exporter(socket_path, placement.proc_root, log_path) as base:
            scrape_twice("b", base)
            for p in placed:
                if p.role.in_pod_from == "c":
                    placement.place(p.pid, p.cgroup_path)
            scrape_twice("c", base)
            result["cgroups"]["seen_by_exporter_c"] = {p.pid: seen_cgroup(placement, p.pid) for p in placed}
        result["kubelet_calls"] = dict(kubelet.calls)
    finally:
        if kubelet is not None:
            kubelet.stop()
        stop_load(procs)
        if placement is not None:
            placement.close()
        shutil.rmtree(socket_dir, ignore_errors=True)
    result["observations"] = [obs.__dict__ for obs in observations]
    result["failures"] = [f"{obs.config}: {f}" for obs in observations for f in obs.failures]
    (out / "attribution.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def print_tables(result: dict[str, Any]) -> None:
    gpu = result["gpu"]
    print(f"# {result['date']} {gpu['name']} {gpu['uuid']} driver {gpu['driver']}")
    cgroups = result["cgroups"]
    print(f"cgroups: {cgroups['mode']} ({cgroups.get('mount') or cgroups.get('cgroupfs_error')})")
    roles = {p["pid"]: p for p in result["processes"]}
    print("\n| pid | role | holds | smi MiB |")
    print("|---|---|---|---|")
    first = result["observations"][0]["smi_mib"] if result["observations"] else {}
    for pid, used in sorted(first.items()):
        role = roles.get(pid, {})
        holds = f"{role['gib']} GiB{' + matmul' if role.get('kind') == 'matmul' else ''}" if role else "-"
        print(f"| {pid} | {role.get('role', 'not ours')} | {holds} | {used:.0f} |")
    print(
        "\n| config | smi sum MiB | container MiB (train-0/trainer) | container util | "
        "unattributed MiB | device labels | pod_resources_up |"
    )
    print("|---|---|---|---|---|---|---|")
    holder = "/".join(HOLDER)
    for obs in result["observations"]:
        named = obs["device_labels"]
        labels = "/".join(named.values()) if any(named.values()) else "(none)"
        util = obs["container_util"].get(holder)
        memory = obs["container_mib"].get(holder)
        print(
            f"| {obs['config']} | {sum(obs['smi_mib'].values()):.0f} | "
            f"{'-' if memory is None else f'{memory:.0f}'} | {'-' if util is None else f'{util:.2f}'} | "
            f"{obs['unattributed_mib']} | {labels} | {obs['pod_resources_up']} |"
        )
    print("\nfailures:" if result["failures"] else "\nall checks passed")
    for failure in result["failures"]:
        print(f"  {failure}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path())
    parser.add_argument("--seconds", type=float, default=WORKER_SECONDS, help="lifetime of each load process")
    args = parser.parse_args()
    result = run(args.out, seconds=args.seconds)
    print_tables(result)
    sys.exit(1 if result["failures"] else 0)


if __name__ == "__main__":
    main()

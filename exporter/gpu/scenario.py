"""Simulated GPUs driven by an HPA scenario (``--scenario``): a Deployment's pods share the scenario's load.

The node has a fixed pool of simulated GPUs (``--simulated-gpus``). The scenario's Deployment runs
``<deployment>-<i>`` pods on it, each holding ``gpusPerPod`` GPUs from its creation (the kubelet
allocates devices when it admits a pod); a pod is Pending for the scenario's startup time, its GPUs at
the idle utilisation, then Ready, and its GPUs serve its share of the load: ``rate / ready pods``.
A pod the pool cannot hold stays Pending without GPUs, as an unschedulable pod would.

The replica count comes from the scenario's own schedule, or from a control file that the HPA lab
writes (``--scenario-control-file``)::

    replicas=4
    start=1764097000.25

``replicas`` is the Deployment's replica count; ``start`` the Unix time of scenario time 0, so the lab
and the exporter share one clock. Until the file gives a ``start`` the scenario holds at time 0. The
file is re-read whenever it changes; content that cannot be used is logged once and ignored. Before
the start, and at each new one, the Deployment's pods are all Ready, as pods that ran before.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from exporter.gpu.model import GpuDevice, GpuReading, ProcessUsage
from exporter.gpu.simulated import (
    DEFAULT_MEMORY_BYTES,
    DEFAULT_MODEL,
    EnergyMeter,
    simulated_device,
    simulated_power,
    simulated_reading,
)
from kgm_common.scenario import Deployment, Scenario, ScenarioPod

log = logging.getLogger(__name__)

MAX_CONTROL_BYTES = 4096
MAX_REPLICAS = 10_000


class ControlError(ValueError):
    """Control-file content that cannot be used; the message says which line and why."""


@dataclass(frozen=True)
class Control:
    """What the control file says: the replica count and, once the experiment runs, its start time."""

    replicas: int
    start: float | None = None


def parse_control(text: str) -> Control:
    """Parse ``key=value`` lines (``replicas`` required, ``start`` optional; ``#`` comments)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        key, sep, value = (part.strip() for part in line.partition("="))
        if not sep or key not in ("replicas", "start"):
            raise ControlError(f"line {number}: expected replicas=N or start=UNIX_SECONDS")
        if key in values:
            raise ControlError(f"line {number}: {key} given twice")
        values[key] = value
    if "replicas" not in values:
        raise ControlError("replicas=N is required")
    text_replicas = values["replicas"]
    if not text_replicas.isascii() or not text_replicas.isdigit() or int(text_replicas) > MAX_REPLICAS:
        raise ControlError(f"replicas must be an integer from 0 to {MAX_REPLICAS}, got {text_replicas!r}")
    start: float | None = None
    if "start" in values:
        try:
            start = float(values["start"])
        except ValueError:
            start = math.nan
        if not math.isfinite(start) or start < 0:
            raise ControlError(f"start must be Unix seconds, got {values['start']!r}")
    return Control(int(text_replicas), start)


class ControlFile:
    """The control file, re-read when its identity, size or modification time changes.

    A missing, unreadable or invalid file leaves the last good content in force; each problem is logged
    once, when it appears.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._signature: tuple[int, int, int] | None = None
        self._control: Control | None = None
        self._problem = ""

    def read(self) -> Control | None:
        """The last good content, refreshed if the file changed; ``None`` before any good content."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return self._control
        except OSError as exc:
            self._report(f"cannot stat: {exc.strerror or exc}")
            return self._control
        signature = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        if signature == self._signature:
            return self._control
        self._signature = signature
        try:
            with self.path.open("rb") as handle:
                data = handle.read(MAX_CONTROL_BYTES + 1)
            if len(data) > MAX_CONTROL_BYTES:
                raise ControlError(f"larger than {MAX_CONTROL_BYTES} bytes")
            self._control = parse_control(data.decode("utf-8"))
        except (OSError, UnicodeDecodeError, ControlError) as exc:
            self._report(str(exc) if isinstance(exc, ControlError) else f"cannot read: {exc}")
        else:
            self._problem = ""
        return self._control

    def _report(self, problem: str) -> None:
        if problem != self._problem:
            log.warning(
                "ignoring the scenario control file",
                extra={
                    "path": str(self.path),
                    "problem": problem,
                    "replicas_in_force": self._control.replicas if self._control is not None else None,
                },
            )
        self._problem = problem


@dataclass(frozen=True)
class PodState:
    """One pod of the scenario's Deployment at one instant."""

    pod: ScenarioPod
    gpus: tuple[int, ...]
    ready: bool


class ScenarioNode:
    """The scenario's Deployment as this node runs it: pods, the GPUs they hold, each GPU's utilisation.

    ``clock`` is wall time (the control file's ``start`` is Unix time); ``speed`` is scenario seconds per
    real second.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        deployment: str,
        gpus: int,
        speed: float = 1.0,
        control: ControlFile | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.scenario = scenario
        self.gpus = gpus
        self._deployment_name = deployment
        self._speed = speed
        self._control = control
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._run_start: float | None = None
        self._held: dict[str, tuple[int, ...]] = {}
        self._unplaced: set[str] = set()
        self.generation = 0
        self._deployment = self._new_deployment(self._replicas(None, 0.0))

    def _new_deployment(self, replicas: int) -> Deployment:
        deployment = Deployment(self._deployment_name, self.scenario.pod_startup_seconds)
        deployment.scale(replicas, 0.0)
        self._held = {}
        return deployment

    def _replicas(self, control: Control | None, now: float) -> int:
        if control is not None:
            return control.replicas
        return self.scenario.scheduled_replicas(now, 1)

    def _time(self, control: Control | None) -> float:
        if self._control is None:
            return (self._clock() - self._started) * self._speed
        if control is None or control.start is None:
            return 0.0
        return max(0.0, (self._clock() - control.start) * self._speed)

    def refresh(self) -> tuple[float, tuple[PodState, ...]]:
        """Scenario time now and the pods, after applying any new replica count."""
        with self._lock:
            control = self._control.read() if self._control is not None else None
            now = self._time(control)
            start = control.start if control is not None else None
            replicas = self._replicas(control, now)
            held = self._control is not None and start is None
            if start != self._run_start or (held and replicas != len(self._deployment.pods)):
                self._run_start = start
                self._deployment = self._new_deployment(replicas)
                self.generation += 1
            elif replicas != len(self._deployment.pods):
                self._deployment.scale(replicas, now)
            self._place()
            pods = tuple(
                PodState(
                    pod,
                    self._held.get(pod.name, ()),
                    pod.name in self._held and pod.ready(now, self._deployment.startup),
                )
                for pod in self._deployment.pods
            )
            return now, pods

    def _place(self) -> None:
        """Free the GPUs of deleted pods and give free GPUs to pods without theirs, oldest pod first."""
        names = {pod.name for pod in self._deployment.pods}
        before = dict(self._held)
        self._held = {name: gpus for name, gpus in self._held.items() if name in names}
        taken = {gpu for gpus in self._held.values() for gpu in gpus}
        free = [gpu for gpu in range(self.gpus) if gpu not in taken]
        need = self.scenario.gpus_per_pod
        for pod in self._deployment.pods:
            if pod.name in self._held:
                continue
            if len(free) < need:
                if pod.name not in self._unplaced:
                    log.warning(
                        "scenario pod stays Pending: not enough simulated GPUs",
                        extra={"pod": pod.name, "gpus_per_pod": need, "node_gpus": self.gpus},
                    )
                    self._unplaced.add(pod.name)
                continue
            self._held[pod.name], free = tuple(free[:need]), free[need:]
            self._unplaced.discard(pod.name)
        self._unplaced &= names
        if self._held != before:
            self.generation += 1

    def utilizations(self) -> list[float]:
        """Each GPU's utilisation now: its pod's share of the load, idle while Pending, 0 when free."""
        now, pods = self.refresh()
        ready = sum(1 for state in pods if state.ready)
        result = [0.0] * self.gpus
        for state in pods:
            value = (
                self.scenario.utilization(now, ready, state.pod.index)
                if state.ready
                else self.scenario.idle_utilization
            )
            for gpu in state.gpus:
                result[gpu] = value
        return result


class ScenarioGpuSource:
    """The node's pool of simulated GPUs, each as busy as the scenario makes the pod holding it."""

    name = "simulated"
    up = True

    def __init__(
        self,
        node: ScenarioNode,
        *,
        model: str = DEFAULT_MODEL,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node = node
        self._memory_bytes = memory_bytes
        self._clock = clock
        self._started = clock()
        self._energy = EnergyMeter(node.gpus)
        self._devices = [simulated_device(seed, i, model) for i in range(node.gpus)]

    def devices(self) -> Sequence[GpuDevice]:
        return self._devices

    def read(self, device: GpuDevice) -> GpuReading:
        index = int(device.index)
        util = self.node.utilizations()[index]
        energy = self._energy.add(index, self._clock() - self._started, simulated_power(util))
        return simulated_reading(device, util, self._memory_bytes, energy)

    def processes(self, device: GpuDevice) -> Sequence[ProcessUsage]:
        return ()

    def close(self) -> None:
        """Nothing to release."""

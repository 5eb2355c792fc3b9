"""Scenarios: the load a GPU inference Deployment sees over time, and how that load turns into metrics.

Shared by the HPA lab (which replays a scenario, or decides its replicas live) and the exporter (whose
simulated GPUs and pods follow it with ``--scenario``); pure, so both see the same world.

A scenario is a YAML mapping (errors name the line)::

    duration: 1800            # seconds to simulate (required)
    capacityPerPod: 100       # requests/s that keep one pod's GPU 100 % busy (required)
    initialReplicas: 2        # the Deployment's replicas at t=0 (default: the HPA's minReplicas)
    podStartupSeconds: 45     # a new pod is Pending this long, then Running and Ready (default 30)
    gpusPerPod: 1             # GPUs each pod holds, all equally busy (default 1)
    idleUtilization: 0.05     # GPU utilization ratio of a pod serving nothing (default 0)
    noise: 0.02               # standard deviation of per-pod utilization noise, as a ratio (default 0)
    seed: 1                   # noise seed (default 0)
    load:                     # total request rate, shared equally by the ready pods (required)
      - {at: 0, rate: 120}
      - {at: 300, rate: 480, ramp: 120}    # reach 480 req/s linearly over the 120 s from t=300
    metrics:                  # how each HPA metric is derived (default: utilization_percent)
      gpu_utilization: utilization_percent
    replicas:                 # manual scaling of the Deployment, as ``kubectl scale`` would (optional)
      - {at: 900, replicas: 1}

Metric sources: ``utilization_percent`` (each pod's GPU busy time, 0-100, as the adapter's
``gpu_utilization`` serves it), ``utilization_ratio`` (the same, 0-1), ``requests_per_pod`` (the load a pod
serves) and ``requests_total`` (the whole load, for Object and External metrics). For Object and External
metrics the per-pod sources are averaged over the ready pods, as the adapter aggregates a workload.
Because the load is shared, every replica the HPA adds lowers each pod's utilization: the loop is closed.
"""

from __future__ import annotations

import bisect
import enum
import random
from dataclasses import dataclass
from pathlib import Path

from kgm_common.yamlsource import Node, SourceError, load_documents

DEFAULT_POD_STARTUP_SECONDS = 30.0
MAX_DURATION_SECONDS = 7 * 24 * 3600.0
MAX_GPUS_PER_POD = 16
PRE_EXISTING_PODS_AGE_SECONDS = 86400.0


class ScenarioError(SourceError):
    """A scenario that cannot be used; the message names the file, line and field."""


class MetricSource(enum.StrEnum):
    """How a scenario turns load into one metric's values."""

    UTILIZATION_PERCENT = "utilization_percent"
    UTILIZATION_RATIO = "utilization_ratio"
    REQUESTS_PER_POD = "requests_per_pod"
    REQUESTS_TOTAL = "requests_total"


@dataclass(frozen=True)
class LoadPoint:
    """From ``at`` on, the load is ``rate``; with ``ramp`` it gets there linearly over ``ramp`` seconds."""

    at: float
    rate: float
    ramp: float = 0.0


@dataclass(frozen=True)
class ReplicaChange:
    """A manual change of the Deployment's replicas at ``at``."""

    at: float
    replicas: int


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario."""

    duration: float
    capacity_per_pod: float
    load: tuple[LoadPoint, ...]
    initial_replicas: int | None = None
    pod_startup_seconds: float = DEFAULT_POD_STARTUP_SECONDS
    gpus_per_pod: int = 1
    idle_utilization: float = 0.0
    noise: float = 0.0
    seed: int = 0
    metrics: tuple[tuple[str, MetricSource], ...] = ()
    replica_changes: tuple[ReplicaChange, ...] = ()

    def rate(self, t: float) -> float:
        """The total request rate at ``t``."""
        starts = [point.at for point in self.load]
        i = bisect.bisect_right(starts, t) - 1
        if i < 0:
            return self.load[0].rate
        point = self.load[i]
        previous = self.load[i - 1].rate if i > 0 else point.rate
        if point.ramp > 0 and t < point.at + point.ramp:
            return previous + (point.rate - previous) * (t - point.at) / point.ramp
        return point.rate

    def scheduled_replicas(self, t: float, default: int) -> int:
        """The replicas the scenario sets at ``t``: its last manual change, else ``initialReplicas``."""
        due = [change.replicas for change in self.replica_changes if change.at <= t]
        if due:
            return due[-1]
        return self.initial_replicas if self.initial_replicas is not None else default

    def source(self, metric: str) -> MetricSource:
        """How ``metric`` is derived: as declared, else GPU utilization in percent."""
        return dict(self.metrics).get(metric, MetricSource.UTILIZATION_PERCENT)

    def utilization(self, t: float, ready_pods: int, pod_index: int) -> float:
        """One ready pod's GPU utilization ratio at ``t``: idle plus its share of the load, with noise."""
        share = self.rate(t) / ready_pods if ready_pods else 0.0
        base = self.idle_utilization + share / self.capacity_per_pod
        if not self.noise:
            return min(1.0, base)
        rng = random.Random(f"{self.seed}:{pod_index}:{int(t)}")  # noqa: S311 - reproducible noise, not secrets
        return min(1.0, max(0.0, base + rng.gauss(0.0, self.noise)))

    def value(self, metric: str, t: float, ready_pods: int, pod_index: int) -> float:
        """One ready pod's value of ``metric`` at ``t``, in the units the adapter would serve."""
        source = self.source(metric)
        if source is MetricSource.UTILIZATION_PERCENT:
            return 100.0 * self.utilization(t, ready_pods, pod_index)
        if source is MetricSource.UTILIZATION_RATIO:
            return self.utilization(t, ready_pods, pod_index)
        if source is MetricSource.REQUESTS_PER_POD:
            return self.rate(t) / ready_pods if ready_pods else 0.0
        return self.rate(t)


@dataclass(frozen=True)
class ScenarioPod:
    """A pod of the scenario's Deployment: ``<deployment>-<index>``, created at ``created``."""

    name: str
    index: int
    created: float

    def ready(self, now: float, startup: float) -> bool:
        """Running and Ready from ``startup`` seconds after creation on; Pending before."""
        return now >= self.created + startup


class Deployment:
    """The pods of a Deployment as replicas change: what the lab decides and the exporter shows.

    New pods are numbered on from the last one; a scale-down deletes Pending pods first, then the
    newest, as a ReplicaSet does. The pods of the first scale exist since long before ``now``, as those
    of a Deployment that ran before the experiment started.
    """

    def __init__(self, name: str, startup: float) -> None:
        self.name = name
        self.startup = startup
        self.pods: list[ScenarioPod] = []
        self._next_index = 0
        self._scaled = False

    def scale(self, replicas: int, now: float) -> None:
        """Create or delete pods until there are ``replicas``."""
        created = now if self._scaled else now - self.startup - PRE_EXISTING_PODS_AGE_SECONDS
        self._scaled = True
        while len(self.pods) < replicas:
            self.pods.append(ScenarioPod(f"{self.name}-{self._next_index}", self._next_index, created))
            self._next_index += 1
        while len(self.pods) > replicas:
            pending = [pod for pod in self.pods if not pod.ready(now, self.startup)]
            self.pods.remove(pending[-1] if pending else self.pods[-1])

    def ready(self, now: float) -> list[ScenarioPod]:
        """The pods Running and Ready at ``now``."""
        return [pod for pod in self.pods if pod.ready(now, self.startup)]


def _load(node: Node) -> tuple[LoadPoint, ...]:
    points: list[LoadPoint] = []
    for item in node.items():
        item.only("at", "rate", "ramp")
        ramp = item.get("ramp")
        at_node = item.require("at")
        point = LoadPoint(
            at=at_node.number(minimum=0),
            rate=item.require("rate").number(minimum=0),
            ramp=ramp.number(minimum=0) if ramp is not None else 0.0,
        )
        if points and point.at <= points[-1].at:
            raise at_node.error(f"must increase ({point.at:g} after {points[-1].at:g})")
        points.append(point)
    if not points:
        raise node.error("needs at least one point")
    return tuple(points)


def _replica_changes(node: Node | None) -> tuple[ReplicaChange, ...]:
    if node is None:
        return ()
    changes: list[ReplicaChange] = []
    for item in node.items():
        item.only("at", "replicas")
        at_node = item.require("at")
        change = ReplicaChange(
            at_node.number(minimum=0), item.require("replicas").integer(minimum=0, maximum=10_000)
        )
        if changes and change.at <= changes[-1].at:
            raise at_node.error(f"must increase ({change.at:g} after {changes[-1].at:g})")
        changes.append(change)
    return tuple(changes)


def _metrics(node: Node | None) -> tuple[tuple[str, MetricSource], ...]:
    if node is None:
        return ()
    result: list[tuple[str, MetricSource]] = []
    for name in node.mapping():
        child = node.require(str(name)) if isinstance(name, str) else None
        if child is None:
            raise node.error(f"metric names must be strings, got {name!r}")
        try:
            result.append((name, MetricSource(child.string())))
        except ValueError:
            known = ", ".join(s.value for s in MetricSource)
            raise child.error(f"unknown metric source (known: {known})") from None
    return tuple(result)


def scenario_from_node(root: Node) -> Scenario:
    """Validate one scenario document already loaded into a ``Node``."""
    root.only(
        "kind",
        "duration",
        "capacityPerPod",
        "initialReplicas",
        "podStartupSeconds",
        "gpusPerPod",
        "idleUtilization",
        "noise",
        "seed",
        "load",
        "metrics",
        "replicas",
    )
    kind = root.get("kind")
    if kind is not None and kind.value != "HpaScenario":
        raise kind.error(f"expected HpaScenario, got {kind.value!r}")
    initial = root.get("initialReplicas")
    startup = root.get("podStartupSeconds")
    gpus = root.get("gpusPerPod")
    idle = root.get("idleUtilization")
    noise = root.get("noise")
    seed = root.get("seed")
    capacity = root.require("capacityPerPod")
    capacity_value = capacity.number(minimum=0)
    if capacity_value <= 0:
        raise capacity.error("must be greater than 0")
    return Scenario(
        duration=root.require("duration").number(minimum=1, maximum=MAX_DURATION_SECONDS),
        capacity_per_pod=capacity_value,
        load=_load(root.require("load")),
        initial_replicas=initial.integer(minimum=0, maximum=10_000) if initial is not None else None,
        pod_startup_seconds=startup.number(minimum=0) if startup is not None else DEFAULT_POD_STARTUP_SECONDS,
        gpus_per_pod=gpus.integer(minimum=1, maximum=MAX_GPUS_PER_POD) if gpus is not None else 1,
        idle_utilization=idle.number(minimum=0, maximum=1) if idle is not None else 0.0,
        noise=noise.number(minimum=0, maximum=1) if noise is not None else 0.0,
        seed=seed.integer() if seed is not None else 0,
        metrics=_metrics(root.get("metrics")),
        replica_changes=_replica_changes(root.get("replicas")),
    )


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Parse a scenario document; raises ``ScenarioError`` naming the line and field."""
    try:
        documents = [d for d in load_documents(text, source) if d is not None]
    except SourceError as exc:
        raise ScenarioError(str(exc)) from None
    if len(documents) != 1:
        raise ScenarioError(f"{source}: expected one scenario document, found {len(documents)}")
    document = documents[0]
    return scenario_from_node(Node(document, "", getattr(document, "line", None), source, ScenarioError))


def load_scenario(path: Path) -> Scenario:
    """Read and parse a scenario file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    return parse_scenario(text, str(path))

"""Scenarios: the load a GPU inference Deployment sees over time, and how that load turns into metrics.

A scenario is a YAML mapping (errors name the line)::

    duration: 1800            # seconds to simulate (required)
    capacityPerPod: 100       # requests/s that keep one pod's GPU 100 % busy (required)
    initialReplicas: 2        # the Deployment's replicas at t=0 (default: the HPA's minReplicas)
    podStartupSeconds: 45     # a new pod is Pending this long, then Running and Ready (default 30)
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

from hpalab.yamlsource import Node, SourceError, load_documents

DEFAULT_POD_STARTUP_SECONDS = 30.0
MAX_DURATION_SECONDS = 7 * 24 * 3600.0


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

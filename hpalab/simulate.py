"""Offline replays: the HPA decision logic driven by a recorded series or by a closed-loop scenario.

Every ``sync_period`` seconds the simulator does what the controller's reconcile does
(``algorithm.reconcile``) with the pods and metrics of the simulated Deployment, then applies the
decision: new pods are Pending for the startup time and report metrics once Running and Ready;
scale-downs delete Pending pods first, then the newest, as a ReplicaSet does. In scenario mode the
load is shared by the ready pods, so the replicas the HPA adds lower each pod's utilization at the
next sync.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from hpalab import algorithm as alg
from hpalab.algorithm import ControllerConfig, ControllerState, Observation, Pod, PodMetric, PodPhase
from hpalab.hpa_spec import HorizontalPodAutoscaler, MetricSpec, SourceType, TargetType
from hpalab.quantity import milli_value
from hpalab.series import Series
from kgm_common.scenario import Deployment, MetricSource, Scenario, ScenarioPod

POD_REQUEST_MILLI = 1000
"""Offline pods request one unit of every resource, so a Utilization of N % is a usage of N/100."""
METRIC_WINDOW_SECONDS = 60.0


def pod_view(pod: ScenarioPod, now: float, startup: float) -> Pod:
    """The pod as the controller's lister sees it at ``now``."""
    running_at = pod.created + startup
    running = now >= running_at
    return Pod(
        name=pod.name,
        phase=PodPhase.RUNNING if running else PodPhase.PENDING,
        ready=running,
        start_time=running_at if running else None,
        ready_transition_time=running_at if running else pod.created,
        request=POD_REQUEST_MILLI,
    )


class World(Protocol):
    """Where the metric values come from: answers what the metrics APIs would answer at ``now``."""

    def observe(self, spec: MetricSpec, now: float, running: Sequence[ScenarioPod]) -> Observation:
        """The observation of ``spec`` with ``running`` the pods that are Running and Ready."""
        ...


def _milli(value: float) -> int:
    return milli_value(Decimal(repr(value)))


def _pod_scale(spec: MetricSpec) -> float:
    """Utilization targets read percent of the request; other values are in the metric's units."""
    if (
        spec.type in (SourceType.RESOURCE, SourceType.CONTAINER_RESOURCE)
        and spec.target.average_value is None
    ):
        return POD_REQUEST_MILLI / 100 / 1000
    return 1.0


class SeriesWorld:
    """Metric values replayed from a ``Series`` (see ``hpalab.series`` for the format)."""

    def __init__(self, series: Series) -> None:
        self.series = series

    def observe(self, spec: MetricSpec, now: float, running: Sequence[ScenarioPod]) -> Observation:
        """Per-pod columns for the pods they name, else the metric's column for every running pod."""
        missing = Observation(error=f"no sample of {spec.name} at t={now:g}s in the series")
        if spec.type in (SourceType.OBJECT, SourceType.EXTERNAL):
            value = self.series.value(spec.name, now)
            if value is None:
                return missing
            return Observation(value=_milli(value), values=(_milli(value),))
        per_pod = self.series.pod_columns(spec.name)
        scale = _pod_scale(spec)
        samples: dict[str, PodMetric] = {}
        for pod in running:
            value = (
                self.series.value(per_pod[pod.index], now) if per_pod else self.series.value(spec.name, now)
            )
            if value is not None:
                samples[pod.name] = PodMetric(_milli(value * scale), now, METRIC_WINDOW_SECONDS)
        if not samples and not per_pod and self.series.value(spec.name, now) is None:
            return missing
        return Observation(pod_values=samples)


class ScenarioWorld:
    """Metric values computed from a ``Scenario``'s load, shared by the ready pods."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario

    def observe(self, spec: MetricSpec, now: float, running: Sequence[ScenarioPod]) -> Observation:
        """Per-pod values for Pods and Resource metrics; their mean (or the total) for objects."""
        count = len(running)
        values = {pod.name: self.scenario.value(spec.name, now, count, pod.index) for pod in running}
        if spec.type in (SourceType.OBJECT, SourceType.EXTERNAL):
            if self.scenario.source(spec.name) is MetricSource.REQUESTS_TOTAL:
                total = self.scenario.rate(now)
            elif values:
                total = sum(values.values()) / count
            else:
                return Observation(error=f"no ready pods to aggregate {spec.name} at t={now:g}s")
            return Observation(value=_milli(total), values=(_milli(total),))
        scale = _pod_scale(spec)
        return Observation(
            pod_values={
                name: PodMetric(_milli(value * scale), now, METRIC_WINDOW_SECONDS)
                for name, value in values.items()
            }
        )


@dataclass(frozen=True)
class Step:
    """One sync of the replay: what the world looked like and what the HPA decided."""

    time: float
    replicas_before: int
    ready_pods: int
    decision: alg.Decision
    shown: tuple[float | None, ...]
    """Per metric, the value its status would show, in the units the target is written in."""

    @property
    def replicas(self) -> int:
        """The Deployment's replicas after this sync."""
        return self.decision.desired_replicas


def target_value(spec: MetricSpec) -> float:
    """The target in the units the metric is shown in (percent for Utilization, else the quantity)."""
    target = spec.target
    if target.average_utilization is not None and target.average_value is None:
        return float(target.average_utilization)
    milli = (
        target.value if target.type is TargetType.VALUE and target.value is not None else target.average_value
    )
    return (milli or 0) / 1000


def shown_value(proposal: alg.MetricProposal) -> float | None:
    """What ``kubectl get hpa`` shows as the current value of a metric, in its target's units."""
    if proposal.utilization is not None:
        return float(proposal.utilization)
    return proposal.usage / 1000 if proposal.usage is not None else None


def replay(
    hpa: HorizontalPodAutoscaler,
    world: World,
    *,
    duration: float,
    initial_replicas: int,
    startup: float,
    config: ControllerConfig,
    manual: Callable[[float], int | None],
    before_sync: Callable[[float], None] | None = None,
    on_scale: Callable[[int, float], None] | None = None,
) -> Iterator[Step]:
    """The controller's loop over a Deployment whose metrics come from ``world``.

    ``before_sync(now)`` runs before each sync's reads (the live lab waits there for the clock);
    ``on_scale(replicas, now)`` after each change of the replicas, manual or decided.
    """
    deployment = Deployment(hpa.scale_target_ref.name, startup)
    deployment.scale(initial_replicas, 0.0)
    state = ControllerState()
    replicas = initial_replicas
    ticks = math.floor(duration / config.sync_period)
    for tick in range(ticks + 1):
        now = tick * config.sync_period
        forced = manual(now)
        if forced is not None:
            replicas = forced
            deployment.scale(replicas, now)
            if on_scale is not None:
                on_scale(replicas, now)
        if before_sync is not None:
            before_sync(now)
        running = deployment.ready(now)
        views = [pod_view(pod, now, startup) for pod in deployment.pods]
        observations = [world.observe(spec, now, running) for spec in hpa.metrics]
        decision = alg.reconcile(
            hpa,
            state,
            spec_replicas=replicas,
            status_replicas=len(deployment.pods),
            pods=views,
            observations=observations,
            now=now,
            config=config,
        )
        proposals = decision.metrics.proposals if decision.metrics is not None else ()
        shown = tuple(shown_value(p) for p in proposals) or tuple(None for _ in hpa.metrics)
        yield Step(now, replicas, len(running), decision, shown)
        state = decision.state
        if decision.rescale:
            replicas = decision.desired_replicas
            deployment.scale(replicas, now)
            if on_scale is not None:
                on_scale(replicas, now)


def replay_series(
    hpa: HorizontalPodAutoscaler,
    series: Series,
    *,
    initial_replicas: int | None = None,
    pod_startup_seconds: float = 0.0,
    config: ControllerConfig | None = None,
) -> Iterator[Step]:
    """Replay a recorded series through the HPA; pods are Ready ``pod_startup_seconds`` after creation."""
    return replay(
        hpa,
        SeriesWorld(series),
        duration=series.duration,
        initial_replicas=initial_replicas if initial_replicas is not None else hpa.min_replicas,
        startup=pod_startup_seconds,
        config=config or ControllerConfig(),
        manual=lambda _t: None,
    )


def replay_scenario(
    hpa: HorizontalPodAutoscaler,
    scenario: Scenario,
    *,
    config: ControllerConfig | None = None,
) -> Iterator[Step]:
    """Run a scenario in closed loop: the HPA's replicas share the scenario's load."""
    return replay(
        hpa,
        ScenarioWorld(scenario),
        duration=scenario.duration,
        initial_replicas=scenario_initial_replicas(hpa, scenario),
        startup=scenario.pod_startup_seconds,
        config=config or ControllerConfig(),
        manual=manual_changes(scenario),
    )


def scenario_initial_replicas(hpa: HorizontalPodAutoscaler, scenario: Scenario) -> int:
    """The scenario's ``initialReplicas``, else the HPA's ``minReplicas``."""
    return scenario.initial_replicas if scenario.initial_replicas is not None else hpa.min_replicas


def manual_changes(scenario: Scenario) -> Callable[[float], int | None]:
    """The scenario's manual scaling: at each sync, the replicas set since the previous one, if any."""
    changes = list(scenario.replica_changes)

    def manual(now: float) -> int | None:
        due = [c for c in changes if c.at <= now]
        for change in due:
            changes.remove(change)
        return due[-1].replicas if due else None

    return manual


def _cell(value: float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    return str(value)


def timeline_header(hpa: HorizontalPodAutoscaler) -> list[str]:
    """The columns of ``timeline.csv``."""
    header = ["time", "current_replicas", "ready_pods"]
    for spec in hpa.metrics:
        header += [spec.label, f"{spec.label}_target", f"{spec.label}_proposal"]
    return [*header, "recommendation", "stabilized", "replicas", "event", "limit"]


def timeline_row(hpa: HorizontalPodAutoscaler, step: Step) -> list[str]:
    """One ``timeline.csv`` row."""
    decision = step.decision
    proposals = decision.metrics.proposals if decision.metrics is not None else ()
    row = [_cell(step.time), _cell(step.replicas_before), _cell(step.ready_pods)]
    for i, spec in enumerate(hpa.metrics):
        proposal = proposals[i].replicas if i < len(proposals) else None
        row += [_cell(step.shown[i]), _cell(target_value(spec)), _cell(proposal)]
    event = (
        decision.reason
        if decision.rescale
        else ("" if decision.metrics is None else decision.metrics.error or "")
    )
    return [
        *row,
        _cell(decision.proposal),
        _cell(decision.stabilized),
        _cell(decision.desired_replicas),
        event,
        decision.limit_reason if decision.limit_reason not in ("", "DesiredWithinRange") else "",
    ]


def write_timeline(path: Path, hpa: HorizontalPodAutoscaler, steps: Sequence[Step]) -> None:
    """Write ``timeline.csv``."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(timeline_header(hpa))
        for step in steps:
            writer.writerow(timeline_row(hpa, step))

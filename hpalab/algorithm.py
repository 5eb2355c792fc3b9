"""The HorizontalPodAutoscaler controller's decision logic as pure functions, time passed in.

Ported from kubernetes ``pkg/controller/podautoscaler`` (``replica_calculator.go``, ``horizontal.go``,
``metrics/utilization.go``), the controller as of Kubernetes 1.34/1.35 with the ``HPAConfigurableTolerance``
gate on and ``HPAScaleToZero`` off. Quantities are milli-values (``Quantity.MilliValue()``), integer
arithmetic truncates as Go's does, and every timestamp is seconds on one caller-chosen clock: nothing here
reads the wall clock, so a replay of an hour takes milliseconds and tests are exact.

Each function names the upstream function it mirrors; behaviour that differs is said so where it happens.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from hpalab.hpa_spec import (
    Behavior,
    HorizontalPodAutoscaler,
    MetricSpec,
    PolicyType,
    ScalingRules,
    SelectPolicy,
    SourceType,
    TargetType,
)

DEFAULT_TOLERANCE = 0.1
"""``--horizontal-pod-autoscaler-tolerance``."""
DEFAULT_SYNC_PERIOD = 15.0
"""``--horizontal-pod-autoscaler-sync-period``."""
DEFAULT_DOWNSCALE_STABILIZATION = 300.0
"""``--horizontal-pod-autoscaler-downscale-stabilization``."""
DEFAULT_CPU_INITIALIZATION_PERIOD = 300.0
"""``--horizontal-pod-autoscaler-cpu-initialization-period``."""
DEFAULT_INITIAL_READINESS_DELAY = 30.0
"""``--horizontal-pod-autoscaler-initial-readiness-delay``."""
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0
MAX_INT32 = 2**31 - 1
MAX_INT64 = 2**63 - 1


class MetricError(Exception):
    """A metric cannot give a proposal this sync; upstream returns an error and the metric is invalid."""


class PodPhase(StrEnum):
    """``v1.PodPhase``."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Pod:
    """What the controller's pod lister sees of one pod matching the scale target's selector.

    ``ready`` is the Ready condition (``None``: no condition), ``request`` the pod's resource request in
    milli-units (used by Utilization targets only); times are on the caller's clock.
    """

    name: str
    phase: PodPhase = PodPhase.RUNNING
    ready: bool | None = True
    deleted: bool = False
    start_time: float | None = None
    ready_transition_time: float = 0.0
    request: int | None = None


@dataclass(frozen=True)
class PodMetric:
    """``metricsclient.PodMetric``: a value in milli-units, when it was measured and over what window."""

    value: int
    timestamp: float = 0.0
    window: float = 60.0


@dataclass(frozen=True)
class Tolerances:
    """``Tolerances``: no change while ``1 - scale_down <= ratio <= 1 + scale_up``."""

    scale_down: float = DEFAULT_TOLERANCE
    scale_up: float = DEFAULT_TOLERANCE

    def is_within(self, usage_ratio: float) -> bool:
        """``Tolerances.isWithin``; NaN is never within."""
        return (1.0 - self.scale_down) <= usage_ratio <= (1.0 + self.scale_up)


@dataclass(frozen=True)
class ControllerConfig:
    """The kube-controller-manager flags that shape HPA decisions."""

    tolerance: float = DEFAULT_TOLERANCE
    sync_period: float = DEFAULT_SYNC_PERIOD
    downscale_stabilization: float = DEFAULT_DOWNSCALE_STABILIZATION
    cpu_initialization_period: float = DEFAULT_CPU_INITIALIZATION_PERIOD
    initial_readiness_delay: float = DEFAULT_INITIAL_READINESS_DELAY
    configurable_tolerance: bool = True


def tolerances_for_hpa(hpa: HorizontalPodAutoscaler, config: ControllerConfig) -> Tolerances:
    """``tolerancesForHpa``: the controller flag, overridden per direction by ``behavior.*.tolerance``."""
    result = Tolerances(config.tolerance, config.tolerance)
    if hpa.behavior is None or not config.configurable_tolerance:
        return result
    if hpa.behavior.scale_down.tolerance is not None:
        result = replace(result, scale_down=hpa.behavior.scale_down.tolerance)
    if hpa.behavior.scale_up.tolerance is not None:
        result = replace(result, scale_up=hpa.behavior.scale_up.tolerance)
    return result


def _quotient(numerator: int, denominator: int) -> int:
    """Go's integer division, truncating toward zero."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator >= 0) == (denominator >= 0) else -quotient


def _ceil_int32(value: float) -> int:
    """``int32(math.Ceil(value))`` saturated at MaxInt32, as newer upstream code does for huge ratios."""
    if math.isnan(value):
        return 0
    if value > MAX_INT32:
        return MAX_INT32
    return math.ceil(value)


# --- replica_calculator.go --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PodGroups:
    """``groupPods`` output."""

    ready_count: int
    unready: frozenset[str]
    missing: frozenset[str]
    ignored: frozenset[str]


def group_pods(
    pods: Sequence[Pod],
    metrics: Mapping[str, PodMetric],
    *,
    cpu: bool,
    now: float,
    cpu_initialization_period: float = DEFAULT_CPU_INITIALIZATION_PERIOD,
    initial_readiness_delay: float = DEFAULT_INITIAL_READINESS_DELAY,
) -> PodGroups:
    """``groupPods``: deleted and failed pods are ignored, pending pods unready, pods without metrics missing.

    Readiness matters only for the CPU resource (upstream checks ``resource == v1.ResourceCPU``): a CPU pod is
    unready while it is inside the initialization period and either not ready or its sample predates one
    window after the last readiness transition, or after that period when it has never been ready.
    Succeeded pods count as ignored too: upstream's tests ("succeeded pods ignored") expect it.
    """
    ready_count = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        if pod.deleted or pod.phase in (PodPhase.FAILED, PodPhase.SUCCEEDED):
            ignored.add(pod.name)
            continue
        if pod.phase is PodPhase.PENDING:
            unready.add(pod.name)
            continue
        metric = metrics.get(pod.name)
        if metric is None:
            missing.add(pod.name)
            continue
        if cpu:
            if pod.ready is None or pod.start_time is None:
                is_unready = True
            elif pod.start_time + cpu_initialization_period > now:
                is_unready = not pod.ready or metric.timestamp < pod.ready_transition_time + metric.window
            else:
                is_unready = (
                    not pod.ready and pod.start_time + initial_readiness_delay > pod.ready_transition_time
                )
            if is_unready:
                unready.add(pod.name)
                continue
        ready_count += 1
    return PodGroups(ready_count, frozenset(unready), frozenset(missing), frozenset(ignored))


def metric_usage_ratio(metrics: Mapping[str, int], target_usage: int) -> tuple[float, int]:
    """``metrics.GetMetricUsageRatio``: mean (truncated) over pods, divided by the target."""
    current = _quotient(sum(metrics.values()), len(metrics))
    return current / target_usage, current


def resource_utilization_ratio(
    metrics: Mapping[str, int], requests: Mapping[str, int], target_utilization: int
) -> tuple[float, int, int]:
    """``metrics.GetResourceUtilizationRatio``: ratio, utilization percent (truncated) and mean raw usage.

    Metrics of pods without a request are extraneous and skipped, as upstream does.
    """
    total = 0
    requested = 0
    entries = 0
    for pod, value in metrics.items():
        request = requests.get(pod)
        if request is None:
            continue
        total += value
        requested += request
        entries += 1
    if requested == 0:
        raise MetricError("no metrics returned matched known pods")
    utilization = _quotient(total * 100, requested)
    return utilization / target_utilization, utilization, _quotient(total, entries)


@dataclass(frozen=True)
class Calculation:
    """A replica calculator result: the proposal and the usage the HPA status reports."""

    replicas: int
    usage: int
    utilization: int | None = None


def _rebalance(
    current_replicas: int,
    usage_ratio: float,
    groups: PodGroups,
    metrics: dict[str, int],
    *,
    fill_missing_down: Mapping[str, int],
    tolerances: Tolerances,
    new_ratio: Callable[[Mapping[str, int]], float],
) -> int | None:
    """The shared tail of ``GetResourceReplicas`` and ``calcPlainMetricReplicas`` once pods are uncertain.

    Missing pods are assumed at 100 % of target (or request) when scaling down and at 0 when scaling up;
    unready pods at 0 on a scale-up. The ratio is then recomputed; no change when it lands inside the
    tolerance or flips direction, or when the count of pods used flips the direction. ``None`` means
    "keep ``current_replicas``".
    """
    scale_up_with_unready = bool(groups.unready) and usage_ratio > 1.0
    if groups.missing:
        if usage_ratio < 1.0:
            metrics.update({pod: fill_missing_down[pod] for pod in groups.missing})
        elif usage_ratio > 1.0:
            metrics.update(dict.fromkeys(groups.missing, 0))
    if scale_up_with_unready:
        metrics.update(dict.fromkeys(groups.unready, 0))
    new_usage_ratio = new_ratio(metrics)
    if (
        tolerances.is_within(new_usage_ratio)
        or (usage_ratio < 1.0 < new_usage_ratio)
        or (usage_ratio > 1.0 > new_usage_ratio)
    ):
        return None
    new_replicas = _ceil_int32(new_usage_ratio * len(metrics))
    if (new_usage_ratio < 1.0 and new_replicas > current_replicas) or (
        new_usage_ratio > 1.0 and new_replicas < current_replicas
    ):
        return None
    return new_replicas


def _counted_metrics(
    pods: Sequence[Pod],
    metrics: Mapping[str, PodMetric],
    *,
    resource: str,
    now: float,
    config: ControllerConfig | None,
) -> tuple[PodGroups, dict[str, int]]:
    """The start ``GetResourceReplicas`` and ``calcPlainMetricReplicas`` share: the pods grouped, and the
    values of the metrics left once ignored and unready pods are removed."""
    config = config or ControllerConfig()
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    groups = group_pods(
        pods,
        metrics,
        cpu=resource == "cpu",
        now=now,
        cpu_initialization_period=config.cpu_initialization_period,
        initial_readiness_delay=config.initial_readiness_delay,
    )
    values = {name: m.value for name, m in metrics.items() if name not in groups.ignored | groups.unready}
    if not values:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
    return groups, values


def resource_replicas(
    current_replicas: int,
    target_utilization: int,
    pods: Sequence[Pod],
    metrics: Mapping[str, PodMetric],
    *,
    tolerances: Tolerances,
    now: float,
    resource: str = "cpu",
    config: ControllerConfig | None = None,
) -> Calculation:
    """``GetResourceReplicas``: a Utilization target on a resource (or a resource-like per-pod metric).

    ``Pod.request`` plays the container requests (``calculateRequests``); a pod without one is an error.
    """
    groups, values = _counted_metrics(pods, metrics, resource=resource, now=now, config=config)
    requests: dict[str, int] = {}
    for pod in pods:
        if pod.request is None:
            raise MetricError(f"missing request for {resource} in Pod {pod.name}")
        requests[pod.name] = pod.request
    usage_ratio, utilization, raw = resource_utilization_ratio(values, requests, target_utilization)
    if not (groups.unready and usage_ratio > 1.0) and not groups.missing:
        if tolerances.is_within(usage_ratio):
            return Calculation(current_replicas, raw, utilization)
        return Calculation(_ceil_int32(usage_ratio * groups.ready_count), raw, utilization)
    fallback = max(100, target_utilization)
    proposal = _rebalance(
        current_replicas,
        usage_ratio,
        groups,
        values,
        fill_missing_down={pod: _quotient(requests[pod] * fallback, 100) for pod in groups.missing},
        tolerances=tolerances,
        new_ratio=lambda m: resource_utilization_ratio(m, requests, target_utilization)[0],
    )
    return Calculation(current_replicas if proposal is None else proposal, raw, utilization)


def plain_metric_replicas(
    current_replicas: int,
    target_usage: int,
    pods: Sequence[Pod],
    metrics: Mapping[str, PodMetric],
    *,
    tolerances: Tolerances,
    now: float,
    resource: str = "",
    config: ControllerConfig | None = None,
) -> Calculation:
    """``calcPlainMetricReplicas``: Pods AverageValue (``GetMetricReplicas``) and resource AverageValue
    (``GetRawResourceReplicas``, ``resource`` set). Metrics of pods that no longer exist still count.
    """
    groups, values = _counted_metrics(pods, metrics, resource=resource, now=now, config=config)
    usage_ratio, usage = metric_usage_ratio(values, target_usage)
    if not (groups.unready and usage_ratio > 1.0) and not groups.missing:
        if tolerances.is_within(usage_ratio):
            return Calculation(current_replicas, usage)
        return Calculation(_ceil_int32(usage_ratio * groups.ready_count), usage)
    proposal = _rebalance(
        current_replicas,
        usage_ratio,
        groups,
        values,
        fill_missing_down=dict.fromkeys(groups.missing, target_usage),
        tolerances=tolerances,
        new_ratio=lambda m: metric_usage_ratio(m, target_usage)[0],
    )
    return Calculation(current_replicas if proposal is None else proposal, usage)


def ready_pod_count(pods: Sequence[Pod]) -> int:
    """``getReadyPodsCount``: running pods whose Ready condition is true."""
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    return sum(1 for pod in pods if pod.phase is PodPhase.RUNNING and pod.ready is True)


def usage_ratio_replica_count(
    current_replicas: int, usage_ratio: float, tolerances: Tolerances, pods: Sequence[Pod]
) -> int:
    """``getUsageRatioReplicaCount``: ``ceil(ratio * ready pods)``; from zero replicas, ``ceil(ratio)``."""
    if current_replicas == 0:
        return _ceil_int32(usage_ratio)
    if tolerances.is_within(usage_ratio):
        return current_replicas
    return _ceil_int32(usage_ratio * ready_pod_count(pods))


def object_value_replicas(
    current_replicas: int, usage: int, target_usage: int, tolerances: Tolerances, pods: Sequence[Pod]
) -> Calculation:
    """``GetObjectMetricReplicas``: an Object metric against a Value target."""
    ratio = usage / target_usage
    return Calculation(usage_ratio_replica_count(current_replicas, ratio, tolerances, pods), usage)


def _per_pod(usage: int, target_per_pod: int, status_replicas: int, tolerances: Tolerances) -> Calculation:
    """The shared body of ``GetObjectPerPodMetricReplicas`` and ``GetExternalPerPodMetricReplicas``.

    The replica count matters only for the tolerance check: the proposal is ``ceil(total / per-pod target)``.
    With zero status replicas the reported usage is 0, as upstream's overflow guards give.
    """
    replicas = status_replicas
    denominator = float(target_per_pod) * float(status_replicas)
    ratio = float(usage) / denominator if denominator else (math.inf if usage else math.nan)
    if not tolerances.is_within(ratio):
        replicas = _ceil_int32(float(usage) / float(target_per_pod))
    if status_replicas == 0:
        per_pod = 0
    elif float(usage) >= float(MAX_INT64):
        per_pod = MAX_INT64
    else:
        per_pod = math.ceil(float(usage) / float(status_replicas))
    return Calculation(replicas, per_pod)


def object_average_replicas(
    status_replicas: int, usage: int, target_per_pod: int, tolerances: Tolerances
) -> Calculation:
    """``GetObjectPerPodMetricReplicas``: an Object metric against an AverageValue target."""
    return _per_pod(usage, target_per_pod, status_replicas, tolerances)


def external_total(values: Sequence[int]) -> int:
    """The sum of external metric series, saturating at MaxInt64 as upstream does."""
    total = 0
    for value in values:
        if value > 0 and total > MAX_INT64 - value:
            return MAX_INT64
        total += value
    return total


def external_value_replicas(
    current_replicas: int,
    values: Sequence[int],
    target_usage: int,
    tolerances: Tolerances,
    pods: Sequence[Pod],
) -> Calculation:
    """``GetExternalMetricReplicas``: the summed external series against a Value target."""
    usage = external_total(values)
    ratio = usage / target_usage
    return Calculation(usage_ratio_replica_count(current_replicas, ratio, tolerances, pods), usage)


def external_average_replicas(
    status_replicas: int, values: Sequence[int], target_per_pod: int, tolerances: Tolerances
) -> Calculation:
    """``GetExternalPerPodMetricReplicas``: the summed external series against an AverageValue target."""
    return _per_pod(external_total(values), target_per_pod, status_replicas, tolerances)


# --- horizontal.go: metrics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """What the metrics APIs answered for one metric spec in one sync.

    ``pod_values`` for Pods and Resource metrics, ``value`` for Object metrics, ``values`` for External
    metrics; ``error`` when the API failed, which makes the metric invalid for this sync.
    """

    pod_values: Mapping[str, PodMetric] = field(default_factory=dict)
    value: int | None = None
    values: tuple[int, ...] = ()
    error: str | None = None


@dataclass(frozen=True)
class MetricProposal:
    """One metric's outcome: its proposal and current usage, or why it is invalid."""

    spec: MetricSpec
    replicas: int | None
    usage: int | None = None
    utilization: int | None = None
    error: str | None = None


def _pods_or_resource(spec: MetricSpec, observation: Observation, context: _Context) -> Calculation:
    target = spec.target
    if target.average_value is not None:
        return plain_metric_replicas(
            context.spec_replicas,
            target.average_value,
            context.pods,
            observation.pod_values,
            tolerances=context.tolerances,
            now=context.now,
            resource="" if spec.type is SourceType.PODS else spec.name,
            config=context.config,
        )
    if target.average_utilization is not None and spec.type is not SourceType.PODS:
        return resource_replicas(
            context.spec_replicas,
            target.average_utilization,
            context.pods,
            observation.pod_values,
            tolerances=context.tolerances,
            now=context.now,
            resource=spec.name,
            config=context.config,
        )
    raise MetricError("invalid resource metric source: neither a utilization nor a value target was set")


def _object(spec: MetricSpec, observation: Observation, context: _Context) -> Calculation:
    target = spec.target
    if observation.value is None:
        raise MetricError(f"unable to get metric {spec.name}: no value")
    if target.type is TargetType.VALUE and target.value is not None:
        return object_value_replicas(
            context.spec_replicas, observation.value, target.value, context.tolerances, context.pods
        )
    if target.type is TargetType.AVERAGE_VALUE and target.average_value is not None:
        return object_average_replicas(
            context.status_replicas, observation.value, target.average_value, context.tolerances
        )
    raise MetricError(
        "invalid object metric source: neither a value target nor an average value target was set"
    )


def _external(spec: MetricSpec, observation: Observation, context: _Context) -> Calculation:
    target = spec.target
    if target.average_value is not None:
        return external_average_replicas(
            context.status_replicas, observation.values, target.average_value, context.tolerances
        )
    if target.value is not None:
        return external_value_replicas(
            context.spec_replicas, observation.values, target.value, context.tolerances, context.pods
        )
    raise MetricError(
        "invalid external metric source: neither a value target nor an average value target was set"
    )


@dataclass(frozen=True)
class _Context:
    spec_replicas: int
    status_replicas: int
    pods: Sequence[Pod]
    tolerances: Tolerances
    now: float
    config: ControllerConfig


def compute_metric(
    spec: MetricSpec,
    observation: Observation,
    *,
    spec_replicas: int,
    status_replicas: int,
    pods: Sequence[Pod],
    tolerances: Tolerances,
    now: float,
    config: ControllerConfig,
) -> MetricProposal:
    """``computeReplicasForMetric`` and the ``computeStatusFor*Metric`` functions it dispatches to.

    As upstream, Object and External metrics use the scale's status replicas for AverageValue targets and
    its spec replicas otherwise; Value targets win over AverageValue for Object metrics, AverageValue over
    Value for External ones.
    """
    context = _Context(spec_replicas, status_replicas, pods, tolerances, now, config)
    try:
        if observation.error is not None:
            raise MetricError(observation.error)
        if spec.type is SourceType.OBJECT:
            result = _object(spec, observation, context)
        elif spec.type is SourceType.EXTERNAL:
            result = _external(spec, observation, context)
        else:
            result = _pods_or_resource(spec, observation, context)
    except MetricError as exc:
        return MetricProposal(spec, None, error=str(exc))
    return MetricProposal(spec, result.replicas, result.usage, result.utilization)


@dataclass(frozen=True)
class MetricsResult:
    """``computeReplicasForMetrics``: the largest valid proposal; ``replicas == -1`` when none may be used."""

    replicas: int
    metric: str
    proposals: tuple[MetricProposal, ...]
    error: str | None = None


def _metric_description(spec: MetricSpec) -> str:
    if spec.type is SourceType.PODS:
        return f"pods metric {spec.name}"
    if spec.type is SourceType.OBJECT:
        kind = spec.described_object.kind if spec.described_object else "object"
        return f"{kind} metric {spec.name}"
    if spec.type is SourceType.EXTERNAL:
        return f"external metric {spec.name}"
    return f"{spec.name} resource"


def combine_proposals(proposals: Sequence[MetricProposal], spec_replicas: int) -> MetricsResult:
    """``computeReplicasForMetrics``: take the largest proposal of the valid metrics.

    When every metric is invalid, or some are and the valid ones would scale down, the controller does not
    scale at all (a missing metric must never cause a scale-down).
    """
    replicas = 0
    metric = ""
    invalid = 0
    first_error: str | None = None
    for proposal in proposals:
        if proposal.replicas is None:
            if invalid == 0:
                first_error = proposal.error
            invalid += 1
            continue
        if replicas == 0 or proposal.replicas > replicas:
            replicas = proposal.replicas
            metric = _metric_description(proposal.spec)
    error = (
        f"invalid metrics ({invalid} invalid out of {len(proposals)}), first error is: {first_error}"
        if invalid
        else None
    )
    if invalid >= len(proposals) or (invalid > 0 and replicas < spec_replicas):
        return MetricsResult(-1, "", tuple(proposals), error)
    return MetricsResult(replicas, metric, tuple(proposals), error)


# --- horizontal.go: stabilization and rate limits --------------------------------------------------------


@dataclass(frozen=True)
class Recommendation:
    """``timestampedRecommendation``."""

    replicas: int
    timestamp: float


@dataclass(frozen=True)
class ScaleEvent:
    """``timestampedScaleEvent``: the size of one scale change (always positive) and when it happened."""

    change: int
    timestamp: float
    outdated: bool = False


@dataclass(frozen=True)
class ControllerState:
    """What the controller keeps per HPA between syncs; ``recommendations`` is ``None`` before the first."""

    recommendations: tuple[Recommendation, ...] | None = None
    scale_up_events: tuple[ScaleEvent, ...] = ()
    scale_down_events: tuple[ScaleEvent, ...] = ()


def stabilize_recommendation(
    recommendations: Sequence[Recommendation], desired: int, now: float, window: float
) -> tuple[int, tuple[Recommendation, ...]]:
    """``stabilizeRecommendation`` (HPAs without ``behavior``): the largest recommendation of the window.

    The new recommendation replaces the last one older than the window, or is appended.
    """
    cutoff = now - window
    result = desired
    old_index: int | None = None
    for i, rec in enumerate(recommendations):
        if rec.timestamp < cutoff:
            old_index = i
        elif rec.replicas > result:
            result = rec.replicas
    return result, _record(recommendations, old_index, Recommendation(desired, now))


def _record(
    recommendations: Sequence[Recommendation], old_index: int | None, new: Recommendation
) -> tuple[Recommendation, ...]:
    updated = list(recommendations)
    if old_index is None:
        updated.append(new)
    else:
        updated[old_index] = new
    return tuple(updated)


def stabilize_recommendation_with_behaviors(
    recommendations: Sequence[Recommendation],
    *,
    current: int,
    desired: int,
    up_window: float,
    down_window: float,
    now: float,
) -> tuple[int, str, tuple[Recommendation, ...]]:
    """``stabilizeRecommendationWithBehaviors``: clamp ``current`` between the smallest recommendation of the
    scale-up window and the largest of the scale-down window (both including ``desired``).
    """
    up_cutoff = now - up_window
    down_cutoff = now - down_window
    up = desired
    down = desired
    old_index: int | None = None
    for i, rec in enumerate(recommendations):
        if rec.timestamp > up_cutoff:
            up = min(rec.replicas, up)
        if rec.timestamp > down_cutoff:
            down = max(rec.replicas, down)
        if rec.timestamp < up_cutoff and rec.timestamp < down_cutoff:
            old_index = i
    result = min(max(current, up), down)
    reason = "ScaleUpStabilized" if desired >= current else "ScaleDownStabilized"
    return result, reason, _record(recommendations, old_index, Recommendation(desired, now))


def calculate_scale_up_limit(current: int) -> int:
    """``calculateScaleUpLimit``: without ``behavior``, at most double (and at least 4) per sync."""
    return int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))


def convert_desired_replicas_with_rules(
    current: int, desired: int, min_replicas: int, max_replicas: int
) -> tuple[int, str]:
    """``convertDesiredReplicasWithRules``: min/max and the legacy scale-up limit, and the reason."""
    scale_up_limit = calculate_scale_up_limit(current)
    if max_replicas > scale_up_limit:
        maximum, reason = scale_up_limit, "ScaleUpLimit"
    else:
        maximum, reason = max_replicas, "TooManyReplicas"
    if desired < min_replicas:
        return min_replicas, "TooFewReplicas"
    if desired > maximum:
        return maximum, reason
    return desired, "DesiredWithinRange"


def replicas_change_per_period(period_seconds: int, events: Sequence[ScaleEvent], now: float) -> int:
    """``getReplicasChangePerPeriod``: the sum of changes strictly newer than ``now - period``."""
    cutoff = now - period_seconds
    return sum(event.change for event in events if event.timestamp > cutoff)


def _to_int32(value: float) -> int:
    """``int32(x)`` of a float: truncation toward zero."""
    return int(value)


def scale_up_limit_with_rules(
    current: int,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    rules: ScalingRules,
    now: float,
) -> int:
    """``calculateScaleUpLimitWithScalingRules``: each policy allows a size relative to its period's start."""
    if rules.select_policy is SelectPolicy.DISABLED:
        return current
    pick_min = rules.select_policy is SelectPolicy.MIN
    result = MAX_INT32 if pick_min else -MAX_INT32 - 1
    for policy in rules.policies:
        added = replicas_change_per_period(policy.period_seconds, up_events, now)
        deleted = replicas_change_per_period(policy.period_seconds, down_events, now)
        start = current - added + deleted
        if policy.type is PolicyType.PODS:
            proposed = start + policy.value
        else:
            proposed = math.ceil(float(start) * (1 + float(policy.value) / 100))
        result = min(result, proposed) if pick_min else max(result, proposed)
    return result


def scale_down_limit_with_behaviors(
    current: int,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    rules: ScalingRules,
    now: float,
) -> int:
    """``calculateScaleDownLimitWithBehaviors``: the smallest size the policies allow."""
    if rules.select_policy is SelectPolicy.DISABLED:
        return current
    pick_least_change = rules.select_policy is SelectPolicy.MIN
    result = -MAX_INT32 - 1 if pick_least_change else MAX_INT32
    for policy in rules.policies:
        added = replicas_change_per_period(policy.period_seconds, up_events, now)
        deleted = replicas_change_per_period(policy.period_seconds, down_events, now)
        start = current - added + deleted
        if policy.type is PolicyType.PODS:
            proposed = start - policy.value
        else:
            proposed = _to_int32(float(start) * (1 - float(policy.value) / 100))
        result = max(result, proposed) if pick_least_change else min(result, proposed)
    return result


def convert_desired_replicas_with_behavior_rate(
    current: int,
    desired: int,
    *,
    min_replicas: int,
    max_replicas: int,
    behavior: Behavior,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    now: float,
) -> tuple[int, str]:
    """``convertDesiredReplicasWithBehaviorRate``: min/max and the behavior policies' rate limits."""
    if desired > current:
        up_limit = scale_up_limit_with_rules(current, up_events, down_events, behavior.scale_up, now)
        limit = max(up_limit, current)
        if max_replicas > limit:
            maximum, reason = limit, "ScaleUpLimit"
        else:
            maximum, reason = max_replicas, "TooManyReplicas"
        if desired > maximum:
            return maximum, reason
    elif desired < current:
        down_limit = scale_down_limit_with_behaviors(
            current, up_events, down_events, behavior.scale_down, now
        )
        limit = min(down_limit, current)
        if min_replicas < limit:
            minimum, reason = limit, "ScaleDownLimit"
        else:
            minimum, reason = min_replicas, "TooFewReplicas"
        if desired < minimum:
            return minimum, reason
    return desired, "DesiredWithinRange"


def _longest_period(rules: ScalingRules) -> int:
    return max((policy.period_seconds for policy in rules.policies), default=0)


def _store(events: Sequence[ScaleEvent], change: int, longest: int, now: float) -> tuple[ScaleEvent, ...]:
    cutoff = now - longest
    marked = [replace(e, outdated=True) if e.timestamp < cutoff else e for e in events]
    old_index: int | None = None
    for i, event in enumerate(marked):
        if event.outdated:
            old_index = i
    new = ScaleEvent(change, now)
    if old_index is None:
        marked.append(new)
    else:
        marked[old_index] = new
    return tuple(marked)


def store_scale_event(
    state: ControllerState, behavior: Behavior | None, previous: int, new: int, now: float
) -> ControllerState:
    """``storeScaleEvent``: remember a scale change for the policies' periods (only with ``behavior``).

    Events older than the direction's longest policy period are marked outdated and the last of them is
    reused for the new event.
    """
    if behavior is None:
        return state
    if new > previous:
        events = _store(state.scale_up_events, new - previous, _longest_period(behavior.scale_up), now)
        return replace(state, scale_up_events=events)
    events = _store(state.scale_down_events, previous - new, _longest_period(behavior.scale_down), now)
    return replace(state, scale_down_events=events)


# --- horizontal.go: reconcileAutoscaler ------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """One sync of one HPA: what the metrics proposed, what stabilization and limits made of it, and why."""

    time: float
    current_replicas: int
    desired_replicas: int
    rescale: bool
    reason: str
    metrics: MetricsResult | None
    proposal: int | None
    stabilized: int | None
    limit_reason: str
    state: ControllerState


def reconcile(
    hpa: HorizontalPodAutoscaler,
    state: ControllerState,
    *,
    spec_replicas: int,
    status_replicas: int,
    pods: Sequence[Pod],
    observations: Sequence[Observation],
    now: float,
    config: ControllerConfig | None = None,
) -> Decision:
    """``reconcileAutoscaler`` without the API calls: the replica count the controller would write.

    ``spec_replicas`` and ``status_replicas`` are the scale subresource's ``spec.replicas`` and
    ``status.replicas``; ``observations`` line up with ``hpa.metrics``. With ``HPAScaleToZero`` off, a
    target at zero replicas disables scaling; above max or below min it is clamped without reading metrics.
    """
    config = config or ControllerConfig()
    current = spec_replicas
    if state.recommendations is None:
        state = replace(state, recommendations=(Recommendation(current, now),))
    if current == 0:
        return Decision(now, current, 0, False, "ScalingDisabled", None, None, None, "", state)
    if current > hpa.max_replicas:
        return _rescale(
            hpa,
            state,
            current=current,
            desired=hpa.max_replicas,
            reason="Current number of replicas above Spec.MaxReplicas",
            now=now,
        )
    if current < hpa.min_replicas:
        return _rescale(
            hpa,
            state,
            current=current,
            desired=hpa.min_replicas,
            reason="Current number of replicas below Spec.MinReplicas",
            now=now,
        )
    tolerances = tolerances_for_hpa(hpa, config)
    proposals = [
        compute_metric(
            spec,
            observation,
            spec_replicas=spec_replicas,
            status_replicas=status_replicas,
            pods=pods,
            tolerances=tolerances,
            now=now,
            config=config,
        )
        for spec, observation in zip(hpa.metrics, observations, strict=True)
    ]
    metrics = combine_proposals(proposals, spec_replicas)
    if metrics.replicas == -1:
        return Decision(now, current, current, False, metrics.error or "", metrics, None, None, "", state)
    desired = max(metrics.replicas, 0)
    reason = ""
    if desired > current:
        reason = f"{metrics.metric} above target"
    if desired < current:
        reason = "All metrics below target"
    recommendations = state.recommendations or ()
    if hpa.behavior is None:
        stabilized, recommendations = stabilize_recommendation(
            recommendations, desired, now, config.downscale_stabilization
        )
        final, limit_reason = convert_desired_replicas_with_rules(
            current, stabilized, hpa.min_replicas, hpa.max_replicas
        )
    else:
        down_window = hpa.behavior.scale_down.stabilization_window_seconds
        stabilized, _, recommendations = stabilize_recommendation_with_behaviors(
            recommendations,
            current=current,
            desired=desired,
            up_window=float(hpa.behavior.scale_up.stabilization_window_seconds or 0),
            down_window=float(down_window) if down_window is not None else config.downscale_stabilization,
            now=now,
        )
        final, limit_reason = convert_desired_replicas_with_behavior_rate(
            current,
            stabilized,
            min_replicas=hpa.min_replicas,
            max_replicas=hpa.max_replicas,
            behavior=hpa.behavior,
            up_events=state.scale_up_events,
            down_events=state.scale_down_events,
            now=now,
        )
    state = replace(state, recommendations=recommendations)
    rescale = final != current
    if rescale:
        state = store_scale_event(state, hpa.behavior, current, final, now)
    return Decision(
        now,
        current,
        final if rescale else current,
        rescale,
        reason if rescale else "",
        metrics,
        desired,
        stabilized,
        limit_reason,
        state,
    )


def _rescale(
    hpa: HorizontalPodAutoscaler,
    state: ControllerState,
    *,
    current: int,
    desired: int,
    reason: str,
    now: float,
) -> Decision:
    state = store_scale_event(state, hpa.behavior, current, desired, now)
    return Decision(now, current, desired, True, reason, None, None, None, "", state)

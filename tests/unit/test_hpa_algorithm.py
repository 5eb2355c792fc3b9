"""The HPA decision logic against cases ported from upstream kubernetes ``pkg/controller/podautoscaler``.

Each case id names its source: ``<GoTest>/<case name>`` from ``replica_calculator_test.go`` or
``horizontal_test.go``. Upstream times such as ``time.Now()`` and ``time3MinsAgo()`` become offsets
from ``NOW``; Go's zero ``time.Time`` becomes ``ZERO``, far in the past. In replica_calculator_test.go
pods have two containers with the same request and usage, so a pod's numbers here are twice the
per-container ones; in horizontal_test.go a pod's request and usage are split between its containers,
so they are used as given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hpalab import algorithm as alg
from hpalab.algorithm import (
    Calculation,
    ControllerConfig,
    ControllerState,
    MetricError,
    Observation,
    Pod,
    PodMetric,
    PodPhase,
    Recommendation,
    ScaleEvent,
    Tolerances,
)
from hpalab.hpa_spec import (
    DEFAULT_SCALE_DOWN_RULES,
    DEFAULT_SCALE_UP_RULES,
    Behavior,
    HorizontalPodAutoscaler,
    MetricSpec,
    MetricTarget,
    ObjectReference,
    PolicyType,
    ScalingPolicy,
    ScalingRules,
    SelectPolicy,
    SourceType,
    TargetType,
)

NOW = 1_000_000.0
ZERO = -1e12
THREE_MINUTES_AGO = NOW - 180
# replica_calculator.go defaultTestingCPUInitializationPeriod / defaultTestingDelayOfInitialReadinessStatus
TESTING = ControllerConfig(cpu_initialization_period=120, initial_readiness_delay=10)
DEFAULT = Tolerances(0.1, 0.1)
CONTAINERS = 2


@dataclass(frozen=True)
class Fixture:
    """``calcScenario``: pods ``test-pod-<i>``; ``levels[i]`` is pod i's metric (absent pods: missing)."""

    current: int
    levels: Sequence[int]
    requests: Sequence[int] = ()
    readiness: Sequence[bool] = ()
    start: Sequence[float] = ()
    phase: Sequence[PodPhase] = ()
    deleted: Sequence[bool] = ()
    pod_names: Sequence[str] = ()

    def pods(self) -> list[Pod]:
        count = max(self.current, len(self.phase))
        return [
            Pod(
                name=f"test-pod-{i}",
                phase=self.phase[i] if self.phase else PodPhase.RUNNING,
                ready=self.readiness[i] if i < len(self.readiness) else True,
                deleted=bool(self.deleted) and self.deleted[i],
                start_time=self.start[i] if self.start else ZERO,
                ready_transition_time=ZERO,
                request=self.requests[i] if i < len(self.requests) else None,
            )
            for i in range(count)
        ]

    def metrics(self) -> dict[str, PodMetric]:
        names = [
            self.pod_names[i] if i < len(self.pod_names) else f"test-pod-{i}" for i in range(len(self.levels))
        ]
        return {
            name: PodMetric(level, timestamp=ZERO, window=60)
            for name, level in zip(names, self.levels, strict=True)
        }


def cpu(n: int, cores: float = 1.0) -> list[int]:
    """``cpuRequests(n, val)``: every container requests ``cores``; a pod holds two containers."""
    return [round(cores * 1000) * CONTAINERS] * n


def per_pod(*levels: int) -> list[int]:
    """``makePodMetricLevels``: each container of pod i uses ``levels[i]``."""
    return [level * CONTAINERS for level in levels]


def container(*levels: int) -> list[int]:
    """Container-scoped cases read one container: its usage as given, its request one container's."""
    return list(levels)


def tol(down: float, up: float) -> Tolerances:
    return Tolerances(down, up)


RESOURCE_CASES = [
    # TestReplicaCalcResourceScale
    (
        "TestReplicaCalcResourceScale/scale up",
        Fixture(3, per_pod(300, 500, 700), cpu(3)),
        30,
        DEFAULT,
        (5, 50, 1000),
    ),
    (
        "TestReplicaCalcResourceScale/scale up: container metric",
        Fixture(3, container(300, 500, 700), [1000] * 3),
        30,
        DEFAULT,
        (5, 50, 500),
    ),
    (
        "TestReplicaCalcResourceScale/scale up: unready pod scales less",
        Fixture(3, per_pod(300, 500, 700), cpu(3), readiness=[False, True, True]),
        30,
        DEFAULT,
        (4, 60, 1200),
    ),
    (
        "TestReplicaCalcResourceScale/scale up: hot-CPU pod scales less",
        Fixture(3, per_pod(300, 500, 700), cpu(3), start=[NOW, THREE_MINUTES_AGO, THREE_MINUTES_AGO]),
        30,
        DEFAULT,
        (4, 60, 1200),
    ),
    (
        "TestReplicaCalcResourceScale/no scale: unready pods ignored",
        Fixture(3, per_pod(400, 500, 700), cpu(3), readiness=[True, False, False]),
        30,
        DEFAULT,
        (3, 40, 800),
    ),
    (
        "TestReplicaCalcResourceScale/no scale: hot-CPU pods ignored",
        Fixture(
            3,
            per_pod(400, 500, 700),
            cpu(3),
            readiness=[True, False, False],
            start=[THREE_MINUTES_AGO, NOW, NOW],
        ),
        30,
        DEFAULT,
        (3, 40, 800),
    ),
    (
        "TestReplicaCalcResourceScale/scale up: failed pods ignored",
        Fixture(
            2,
            per_pod(500, 700),
            cpu(4),
            readiness=[True, True, False, False],
            phase=[PodPhase.RUNNING, PodPhase.RUNNING, PodPhase.FAILED, PodPhase.FAILED],
        ),
        30,
        DEFAULT,
        (4, 60, 1200),
    ),
    (
        "TestReplicaCalcResourceScale/scale up: succeeded pods ignored",
        Fixture(
            2,
            per_pod(500, 700),
            cpu(4),
            readiness=[True, True, False, False],
            phase=[PodPhase.RUNNING, PodPhase.RUNNING, PodPhase.SUCCEEDED, PodPhase.SUCCEEDED],
        ),
        30,
        DEFAULT,
        (4, 60, 1200),
    ),
    (
        "TestReplicaCalcResourceScale/scale up: pods being deleted are ignored",
        Fixture(
            2,
            per_pod(500, 700),
            cpu(4),
            readiness=[True, True, False, False],
            phase=[PodPhase.RUNNING] * 4,
            deleted=[False, False, True, True],
        ),
        30,
        DEFAULT,
        (4, 60, 1200),
    ),
    (
        "TestReplicaCalcResourceScale/scale down",
        Fixture(5, per_pod(100, 300, 500, 250, 250), cpu(5)),
        50,
        DEFAULT,
        (3, 28, 560),
    ),
    (
        "TestReplicaCalcResourceScale/scale down: container metric",
        Fixture(5, container(100, 300, 500, 250, 250), [1000] * 5),
        50,
        DEFAULT,
        (3, 28, 280),
    ),
    (
        "TestReplicaCalcResourceScale/scale down: exclude unready pods",
        Fixture(5, per_pod(100, 300, 500, 250, 250), cpu(5), readiness=[True, True, True, False, False]),
        50,
        DEFAULT,
        (2, 30, 600),
    ),
    (
        "TestReplicaCalcResourceScale/scale down: exclude unscheduled pods",
        Fixture(
            5,
            per_pod(100),
            cpu(5),
            readiness=[True, False, False, False, False],
            phase=[PodPhase.RUNNING] + [PodPhase.PENDING] * 4,
        ),
        50,
        DEFAULT,
        (1, 10, 200),
    ),
    (
        "TestReplicaCalcResourceScale/scale down: ignore hot-CPU pods",
        Fixture(
            5,
            per_pod(100, 300, 500, 250, 250),
            cpu(5),
            start=[THREE_MINUTES_AGO] * 3 + [NOW] * 2,
        ),
        50,
        DEFAULT,
        (2, 30, 600),
    ),
    (
        "TestReplicaCalcResourceScale/scale down: failed pods ignored",
        Fixture(
            5,
            per_pod(100, 300, 500, 250, 250),
            cpu(7),
            readiness=[True] * 5 + [False] * 2,
            phase=[PodPhase.RUNNING] * 5 + [PodPhase.FAILED] * 2,
        ),
        50,
        DEFAULT,
        (3, 28, 560),
    ),
    (
        "TestReplicaCalcResourceScale/scale down: still-running pods being deleted are ignored",
        Fixture(
            5,
            container(100, 300, 500, 250, 250),
            [1000] * 7,
            readiness=[True] * 5 + [False] * 2,
            phase=[PodPhase.RUNNING] * 7,
            deleted=[False] * 5 + [True] * 2,
        ),
        50,
        DEFAULT,
        (3, 28, 280),
    ),
    # TestReplicaCalcResourceTolerance
    (
        "TestReplicaCalcResourceTolerance/within default tolerance",
        Fixture(3, per_pod(1010, 1030, 1020), [1800, 2000, 2200]),
        100,
        DEFAULT,
        (3, 102, 2040),
    ),
    (
        "TestReplicaCalcResourceTolerance/outside 0% tolerance",
        Fixture(3, per_pod(909, 1010, 1111), [1800, 2000, 2200]),
        100,
        tol(0, 0),
        (4, 101, 2020),
    ),
    (
        "TestReplicaCalcResourceTolerance/within 200% scale-up tolerance",
        Fixture(3, per_pod(1890, 1910, 1900), [1800, 2000, 2200]),
        100,
        tol(0.1, 2),
        (3, 190, 3800),
    ),
    (
        "TestReplicaCalcResourceTolerance/outside 8% scale-up tolerance (superfluous scale-down tolerance)",
        Fixture(3, per_pod(1100, 1080, 1090), [1800, 2000, 2200]),
        100,
        tol(2, 0.08),
        (4, 109, 2180),
    ),
    (
        "TestReplicaCalcResourceTolerance/within 36% scale-down tolerance",
        Fixture(3, per_pod(660, 640, 650), [1800, 2000, 2200]),
        100,
        tol(0.36, 0.1),
        (3, 65, 1300),
    ),
    (
        "TestReplicaCalcResourceTolerance/outside 34% scale-down tolerance",
        Fixture(3, per_pod(660, 640, 650), [1800, 2000, 2200]),
        100,
        tol(0.34, 0.1),
        (2, 65, 1300),
    ),
    # TestReplicaCalcResourceMissingMetrics
    (
        "TestReplicaCalcResourceMissingMetrics/superfluous metrics counted",
        Fixture(4, per_pod(4000, 9500, 3000, 7000, 3200, 2000), cpu(4)),
        100,
        DEFAULT,
        (24, 587, 11750),
    ),
    (
        "TestReplicaCalcResourceMissingMetrics/some pods missing metrics scales down",
        Fixture(4, per_pod(400, 95), cpu(4)),
        100,
        DEFAULT,
        (3, 24, 495),
    ),
    (
        "TestReplicaCalcResourceMissingMetrics/no change: metric equal to target",
        Fixture(2, per_pod(1000), cpu(2)),
        100,
        DEFAULT,
        (2, 100, 2000),
    ),
    (
        "TestReplicaCalcResourceMissingMetrics/no change: metric above target",
        Fixture(2, per_pod(1900), cpu(2)),
        100,
        DEFAULT,
        (2, 190, 3800),
    ),
    (
        "TestReplicaCalcResourceMissingMetrics/no change: metric below target",
        Fixture(2, per_pod(600), cpu(2)),
        100,
        DEFAULT,
        (2, 60, 1200),
    ),
    (
        "TestReplicaCalcResourceMissingMetrics/no change: unready pod metric missing",
        Fixture(3, per_pod(100, 450), cpu(3), readiness=[False, True, True]),
        50,
        DEFAULT,
        (3, 45, 900),
    ),
    (
        "TestReplicaCalcResourceMissingMetrics/no change: hot-CPU pod metric missing",
        Fixture(3, per_pod(100, 450), cpu(3), start=[NOW, THREE_MINUTES_AGO, THREE_MINUTES_AGO]),
        50,
        DEFAULT,
        (3, 45, 900),
    ),
    (
        "TestReplicaCalcResourceMissingMetrics/scale up: unready pod metric missing",
        Fixture(3, per_pod(100, 2000), cpu(3), readiness=[False, True, True]),
        50,
        DEFAULT,
        (4, 200, 4000),
    ),
    (
        "TestReplicaCalcResourceMissingMetrics/scale down: unready pod metric missing",
        Fixture(4, per_pod(100, 100, 100), cpu(4), readiness=[False, True, True, True]),
        50,
        DEFAULT,
        (3, 10, 200),
    ),
    (
        "TestReplicaCalcResourceMissingMetrics/scale down: target over 100",
        Fixture(4, per_pod(200, 100, 100), [2000, 2000, 4000, 4000], readiness=[False, True, True, True]),
        300,
        DEFAULT,
        (2, 6, 200),
    ),
    (
        "TestReplicaCalcResourceMissingMetrics/rolling update with maxSurge: extra pod missing metric",
        Fixture(2, per_pod(100, 100), cpu(3), phase=[PodPhase.RUNNING] * 3),
        50,
        DEFAULT,
        (2, 10, 200),
    ),
]


@pytest.mark.parametrize(
    ("fixture", "target", "tolerances", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in RESOURCE_CASES],
)
def test_resource_replicas(
    fixture: Fixture, target: int, tolerances: Tolerances, expected: tuple[int, int, int]
) -> None:
    result = alg.resource_replicas(
        fixture.current,
        target,
        fixture.pods(),
        fixture.metrics(),
        tolerances=tolerances,
        now=NOW,
        config=TESTING,
    )
    assert (result.replicas, result.utilization, result.usage) == expected


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        pytest.param(
            Fixture(1, per_pod(100), cpu(1), pod_names=["an-older-pod-name"]),
            "no metrics returned matched known pods",
            id="TestReplicaCalcResourceMissingMetrics/disjoint pod and metric names",
        ),
        pytest.param(
            Fixture(1, per_pod(200)),
            "missing request for",
            id="TestReplicaCalcResourceMissingMetrics/missing CPU request on container",
        ),
    ],
)
def test_resource_replicas_errors(fixture: Fixture, message: str) -> None:
    with pytest.raises(MetricError, match=message):
        alg.resource_replicas(
            fixture.current,
            100,
            fixture.pods(),
            fixture.metrics(),
            tolerances=DEFAULT,
            now=NOW,
            config=TESTING,
        )


def test_computed_tolerance_alg_implementation() -> None:
    """TestReplicaCalcComputedToleranceAlgImplementation: a target just past the tolerance scales, just inside
    does not."""
    start_pods = 10
    used = start_pods * 150
    requested = 2 * used
    requested_to_used = float(requested // used)
    per_pod_requested = requested // start_pods
    offsets = [100, -100, 10, -10, 2, -2, 1, -1, 0, 0]
    fixture = Fixture(
        start_pods,
        per_pod(*[used // 10] * 10),
        [(per_pod_requested + o) * CONTAINERS for o in offsets],
    )
    target = abs(1 / (requested_to_used * (1 - 0.1))) + 0.01
    final_pods = math.ceil(used / (requested * target) * start_pods)
    result = alg.resource_replicas(
        start_pods,
        int(target * 100),
        fixture.pods(),
        fixture.metrics(),
        tolerances=DEFAULT,
        now=NOW,
        config=TESTING,
    )
    assert (result.replicas, result.utilization) == (final_pods, used * 100 // requested)
    target = abs(1 / (requested_to_used * (1 - 0.1))) + 0.004
    result = alg.resource_replicas(
        start_pods,
        int(target * 100),
        fixture.pods(),
        fixture.metrics(),
        tolerances=DEFAULT,
        now=NOW,
        config=TESTING,
    )
    assert result.replicas == start_pods


POD_METRIC_CASES = [
    ("TestReplicaCalcPodMetric/scale up", Fixture(3, [20000, 10000, 30000]), 15000, DEFAULT, (4, 20000)),
    (
        "TestReplicaCalcPodMetric/scale up: unready hot-CPU pod scales less",
        Fixture(
            3, [50000, 10000, 30000], readiness=[True, True, False], start=[THREE_MINUTES_AGO] * 2 + [NOW]
        ),
        15000,
        DEFAULT,
        (6, 30000),
    ),
    (
        "TestReplicaCalcPodMetric/scale up: unready hot-CPU pods avoid scale-down",
        Fixture(
            3, [50000, 15000, 30000], readiness=[False, True, False], start=[NOW, THREE_MINUTES_AGO, NOW]
        ),
        15000,
        DEFAULT,
        (7, 31666),
    ),
    ("TestReplicaCalcPodMetric/scale down", Fixture(5, [12000] * 5), 20000, DEFAULT, (3, 12000)),
    (
        "TestReplicaCalcPodMetric/within default tolerance",
        Fixture(3, [20000, 21000, 21000]),
        20000,
        DEFAULT,
        (3, 20666),
    ),
    (
        "TestReplicaCalcPodMetric/outside configurable 1% tolerance",
        Fixture(3, [20000, 21000, 21000]),
        20000,
        tol(0.1, 0.01),
        (4, 20666),
    ),
    (
        "TestReplicaCalcPodMetric/no change: missing metrics",
        Fixture(5, [20000, 19000, 21000]),
        20000,
        DEFAULT,
        (5, 20000),
    ),
    (
        "TestReplicaCalcPodMetric/rolling update with maxSurge: extra pod missing metric",
        Fixture(2, [10000, 10000], phase=[PodPhase.RUNNING] * 3),
        17000,
        DEFAULT,
        (2, 10000),
    ),
]


@pytest.mark.parametrize(
    ("fixture", "target", "tolerances", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in POD_METRIC_CASES],
)
def test_pods_metric_replicas(
    fixture: Fixture, target: int, tolerances: Tolerances, expected: tuple[int, int]
) -> None:
    result = alg.plain_metric_replicas(
        fixture.current,
        target,
        fixture.pods(),
        fixture.metrics(),
        tolerances=tolerances,
        now=NOW,
        config=TESTING,
    )
    assert (result.replicas, result.usage) == expected


@pytest.mark.parametrize(
    ("current", "readiness", "usage", "target", "tolerances", "expected"),
    [
        pytest.param(3, (), 20000, 15000, DEFAULT, 4, id="TestReplicaCalcObjectMetric/scale up"),
        pytest.param(
            3,
            (),
            alg.MAX_INT64,
            1,
            DEFAULT,
            alg.MAX_INT32,
            id="TestReplicaCalcObjectMetric/scale up: very large metric saturates replicas to MaxInt32",
        ),
        pytest.param(
            3,
            (False, True, False),
            50000,
            10000,
            DEFAULT,
            5,
            id="TestReplicaCalcObjectMetric/scale up: ignores unready pods",
        ),
        pytest.param(5, (), 12000, 20000, DEFAULT, 3, id="TestReplicaCalcObjectMetric/scale down"),
        pytest.param(
            3, (), 20666, 20000, DEFAULT, 3, id="TestReplicaCalcObjectMetric/within default tolerance"
        ),
        pytest.param(
            3,
            (),
            20666,
            20000,
            tol(0.1, 0.01),
            4,
            id="TestReplicaCalcObjectMetric/outside configurable 1% tolerance",
        ),
    ],
)
def test_object_value_replicas(
    *, current: int, readiness: Sequence[bool], usage: int, target: int, tolerances: Tolerances, expected: int
) -> None:
    pods = Fixture(current, [], readiness=readiness).pods()
    assert alg.object_value_replicas(current, usage, target, tolerances, pods) == Calculation(expected, usage)


@pytest.mark.parametrize(
    ("status", "usage", "target", "tolerances", "expected"),
    [
        pytest.param(
            1,
            alg.MAX_INT64,
            alg.MAX_INT64,
            DEFAULT,
            (1, alg.MAX_INT64),
            id="TestReplicaCalcObjectPerPodMetric/usage overflow with huge target leaves replicas unchanged",
        ),
        pytest.param(3, 20000, 5000, DEFAULT, (4, 6667), id="TestReplicaCalcObjectPerPodMetric/scale up"),
        pytest.param(5, 6000, 2000, DEFAULT, (3, 1200), id="TestReplicaCalcObjectPerPodMetric/scale down"),
        pytest.param(
            4,
            20166,
            5000,
            DEFAULT,
            (4, 5042),
            id="TestReplicaCalcObjectPerPodMetric/within default tolerance",
        ),
        pytest.param(
            4,
            20208,
            5000,
            tol(0.1, 0.01),
            (5, 5052),
            id="TestReplicaCalcObjectPerPodMetric/outside configurable 1% tolerance",
        ),
        pytest.param(
            0,
            20000,
            5000,
            DEFAULT,
            (4, 0),
            id="TestReplicaCalcObjectPerPodMetric/statusReplicas zero does not overflow usage",
        ),
        pytest.param(
            0,
            0,
            5000,
            DEFAULT,
            (0, 0),
            id="TestReplicaCalcObjectPerPodMetric/statusReplicas zero and metric zero does not underflow",
        ),
    ],
)
def test_object_average_replicas(
    status: int, usage: int, target: int, tolerances: Tolerances, expected: tuple[int, int]
) -> None:
    result = alg.object_average_replicas(status, usage, target, tolerances)
    assert (result.replicas, result.usage) == expected


@pytest.mark.parametrize(
    ("status", "values", "target", "tolerances", "expected"),
    [
        pytest.param(
            1,
            [alg.MAX_INT64],
            1,
            DEFAULT,
            (alg.MAX_INT32, alg.MAX_INT64),
            id="TestReplicaCalcExternalPerPodMetric/replica count overflow saturates to MaxInt32",
        ),
        pytest.param(
            1,
            [alg.MAX_INT64],
            alg.MAX_INT64,
            DEFAULT,
            (1, alg.MAX_INT64),
            id=(
                "TestReplicaCalcExternalPerPodMetric/"
                "usage overflow with huge target leaves replicas unchanged"
            ),
        ),
        pytest.param(
            0,
            [20000],
            5000,
            DEFAULT,
            (4, 0),
            id="TestReplicaCalcExternalPerPodMetric/statusReplicas zero does not overflow usage",
        ),
        pytest.param(
            0,
            [0],
            5000,
            DEFAULT,
            (0, 0),
            id="TestReplicaCalcExternalPerPodMetric/statusReplicas zero and metric zero does not underflow",
        ),
        pytest.param(3, [8600], 2150, DEFAULT, (4, 2867), id="TestReplicaCalcExternalPerPodMetric/scale up"),
        pytest.param(
            5, [8600], 2867, DEFAULT, (3, 1720), id="TestReplicaCalcExternalPerPodMetric/scale down"
        ),
        pytest.param(
            3,
            [8600],
            2900,
            DEFAULT,
            (3, 2867),
            id="TestReplicaCalcExternalPerPodMetric/within default tolerance",
        ),
        pytest.param(
            3,
            [8600],
            2800,
            tol(0.1, 0.01),
            (4, 2867),
            id="TestReplicaCalcExternalPerPodMetric/outside configurable 1% tolerance",
        ),
    ],
)
def test_external_average_replicas(
    status: int, values: list[int], target: int, tolerances: Tolerances, expected: tuple[int, int]
) -> None:
    result = alg.external_average_replicas(status, values, target, tolerances)
    assert (result.replicas, result.usage) == expected


@pytest.mark.parametrize(
    ("current", "readiness", "values", "target", "tolerances", "expected"),
    [
        pytest.param(
            3,
            (False, True, False),
            [8600],
            4400,
            DEFAULT,
            (2, 8600),
            id="TestReplicaCalcExternalMetric/scale down: ignores unready pods (would otherwise scale up)",
        ),
        pytest.param(5, (), [8600], 14334, DEFAULT, (3, 8600), id="TestReplicaCalcExternalMetric/scale down"),
        pytest.param(
            3,
            (),
            [8600],
            8888,
            DEFAULT,
            (3, 8600),
            id="TestReplicaCalcExternalMetric/within default tolerance",
        ),
        pytest.param(
            3,
            (),
            [8900],
            8800,
            tol(0.1, 0.01),
            (4, 8900),
            id="TestReplicaCalcExternalMetric/outside configurable 1% tolerance",
        ),
        pytest.param(
            3,
            (),
            [alg.MAX_INT64 // 2 + 1, alg.MAX_INT64 // 2 + 1],
            alg.MAX_INT64,
            DEFAULT,
            (3, alg.MAX_INT64),
            id="TestReplicaCalcExternalMetric/usage overflow caps at MaxInt64",
        ),
    ],
)
def test_external_value_replicas(
    *,
    current: int,
    readiness: Sequence[bool],
    values: list[int],
    target: int,
    tolerances: Tolerances,
    expected: tuple[int, int],
) -> None:
    pods = Fixture(current, [], readiness=readiness).pods()
    result = alg.external_value_replicas(current, values, target, tolerances, pods)
    assert (result.replicas, result.usage) == expected


def _cpu_pod(name: str, **changes: object) -> Pod:
    return Pod(name=name, start_time=NOW - 60, ready_transition_time=NOW - 30, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pods", "metrics", "is_cpu", "expected"),
    [
        pytest.param([], {}, True, (0, set(), set(), set()), id="TestGroupPods/void"),
        pytest.param(
            [Pod("bentham", ready=None)],
            {"bentham": PodMetric(1, NOW, 60)},
            False,
            (1, set(), set(), set()),
            id="TestGroupPods/count in a ready pod - memory",
        ),
        pytest.param(
            [Pod("lucretius", ready=None, start_time=NOW)],
            {"lucretius": PodMetric(1)},
            True,
            (0, {"lucretius"}, set(), set()),
            id="TestGroupPods/unready a pod without ready condition - CPU",
        ),
        pytest.param(
            [_cpu_pod("bentham")],
            {"bentham": PodMetric(1, NOW, 30)},
            True,
            (1, set(), set(), set()),
            id="TestGroupPods/count in a ready pod with fresh metrics during initialization period - CPU",
        ),
        pytest.param(
            [_cpu_pod("bentham")],
            {"bentham": PodMetric(1, NOW, 60)},
            True,
            (0, {"bentham"}, set(), set()),
            id="TestGroupPods/unready a ready pod without fresh metrics during initialization period - CPU",
        ),
        pytest.param(
            [Pod("lucretius", ready=False, start_time=NOW - 600, ready_transition_time=NOW - 594)],
            {"lucretius": PodMetric(1)},
            True,
            (0, {"lucretius"}, set(), set()),
            id="TestGroupPods/unready an unready pod during initialization period - CPU",
        ),
        pytest.param(
            [Pod("bentham", start_time=NOW - 180, ready_transition_time=NOW - 180)],
            {"bentham": PodMetric(1, NOW - 120, 60)},
            True,
            (1, set(), set(), set()),
            id="TestGroupPods/count in a ready pod without fresh metrics after initialization period - CPU",
        ),
        pytest.param(
            [Pod("lucretius", ready=False, start_time=NOW - 600, ready_transition_time=NOW - 540)],
            {"lucretius": PodMetric(1)},
            True,
            (1, set(), set(), set()),
            id="TestGroupPods/count in an unready pod that was ready after initialization period - CPU",
        ),
        pytest.param(
            [Pod("epicurus", ready=None, start_time=NOW - 180)],
            {},
            True,
            (0, set(), {"epicurus"}, set()),
            id="TestGroupPods/a missing pod",
        ),
        pytest.param(
            [Pod("unscheduled", phase=PodPhase.PENDING, ready=None)],
            {},
            True,
            (0, {"unscheduled"}, set(), set()),
            id="TestGroupPods/pending pods are unreadied",
        ),
        pytest.param(
            [Pod("deleted", phase=PodPhase.PENDING, deleted=True)],
            {"deleted": PodMetric(1)},
            True,
            (0, set(), set(), {"deleted"}),
            id="TestGroupPods/ignore pods with deletion timestamps",
        ),
        pytest.param(
            [Pod("failed", phase=PodPhase.FAILED)],
            {"failed": PodMetric(1)},
            True,
            (0, set(), set(), {"failed"}),
            id="TestGroupPods/ignore pods in a failed state",
        ),
    ],
)
def test_group_pods(
    pods: list[Pod],
    metrics: dict[str, PodMetric],
    is_cpu: bool,
    expected: tuple[int, set[str], set[str], set[str]],
) -> None:
    """The upstream init period in TestGroupPods is 2 minutes and the readiness delay 10 s (TESTING)."""
    groups = alg.group_pods(
        pods,
        metrics,
        cpu=is_cpu,
        now=NOW,
        cpu_initialization_period=TESTING.cpu_initialization_period,
        initial_readiness_delay=TESTING.initial_readiness_delay,
    )
    assert (groups.ready_count, set(groups.unready), set(groups.missing), set(groups.ignored)) == expected


# --- horizontal_test.go -----------------------------------------------------------------------------------


def rules(pods: int, pods_period: int, percent: int, percent_period: int, window: int) -> ScalingRules:
    """``generateScalingRules``."""
    policies = []
    if pods:
        policies.append(ScalingPolicy(PolicyType.PODS, pods, pods_period))
    if percent:
        policies.append(ScalingPolicy(PolicyType.PERCENT, percent, percent_period))
    return ScalingRules(SelectPolicy.MAX, tuple(policies), window)


def uniform(raw: Sequence[int], period: int) -> tuple[ScaleEvent, ...]:
    """``generateEventsUniformDistribution``: events spread over ``period`` seconds before ``NOW``."""
    segment = period / len(raw)
    return tuple(
        ScaleEvent(change, NOW - int(period - segment * (i + 1) + segment / 2))
        for i, change in enumerate(raw)
    )


@dataclass(frozen=True)
class RateCase:
    current: int
    desired: int
    min_replicas: int
    max_replicas: int
    expected: int
    condition: str
    up: ScalingRules | None = None
    down: ScalingRules | None = None
    up_events: tuple[ScaleEvent, ...] = field(default_factory=tuple)
    down_events: tuple[ScaleEvent, ...] = field(default_factory=tuple)


SCALING_WITH_RULES = {
    "prenormalized desired replicas within range": RateCase(5, 7, 3, 8, 7, "DesiredWithinRange"),
    "prenormalized desired replicas < minReplicas": RateCase(3, 1, 2, 8, 2, "TooFewReplicas"),
    "prenormalized desired replicas within range when minReplicas is 0": RateCase(
        1, 0, 0, 10, 0, "DesiredWithinRange"
    ),
    "maxReplicas is the limit because maxReplicas < scaleUpLimit": RateCase(
        20, 1000, 1, 10, 10, "TooManyReplicas"
    ),
    "desired replica count is more than the maximum replica count": RateCase(
        100, 1000, 100, 150, 150, "TooManyReplicas"
    ),
    "scaleUpLimit is the limit because scaleUpLimit < maxReplicas with user policies": RateCase(
        3, 1000, 1, 2000, 4, "ScaleUpLimit", up=rules(0, 0, 1, 60, 0)
    ),
    "scaleUp with default behavior": RateCase(10, 50, 1, 1000, 20, "ScaleUpLimit"),
    "scaleUp with pods policy larger than percent policy": RateCase(
        10, 500, 1, 1000, 110, "ScaleUpLimit", up=rules(100, 60, 100, 60, 0)
    ),
    "scaleUp with percent policy larger than pods policy": RateCase(
        10, 500, 1, 1000, 20, "ScaleUpLimit", up=rules(2, 60, 100, 60, 0)
    ),
    "scaleUp with spec MaxReplicas limitation with large pod policy": RateCase(
        10, 50, 1, 1000, 50, "DesiredWithinRange", up=rules(100, 60, 0, 0, 0)
    ),
    "scaleUp with spec MaxReplicas limitation with large percent policy": RateCase(
        10, 50, 1, 1000, 50, "DesiredWithinRange", up=rules(10000, 60, 0, 0, 0)
    ),
    "scaleUp with pod policy limitation": RateCase(
        10, 50, 1, 1000, 40, "ScaleUpLimit", up=rules(30, 60, 0, 0, 0)
    ),
    "scaleUp with percent policy limitation": RateCase(
        10, 50, 1, 1000, 30, "ScaleUpLimit", up=rules(0, 0, 200, 60, 0)
    ),
    "scaleDown with percent policy larger than pod policy": RateCase(
        100, 2, 1, 1000, 80, "ScaleDownLimit", down=rules(20, 60, 1, 60, 300)
    ),
    "scaleDown with pod policy larger than percent policy": RateCase(
        100, 2, 1, 1000, 98, "ScaleDownLimit", down=rules(2, 60, 1, 60, 300)
    ),
    "scaleDown with spec MinReplicas limitation with large pod policy": RateCase(
        10, 0, 1, 1000, 1, "TooFewReplicas", down=rules(100, 60, 0, 0, 300)
    ),
    "scaleDown with spec MinReplicas limitation with large percent policy": RateCase(
        10, 2, 5, 1000, 5, "TooFewReplicas", down=rules(0, 0, 100, 60, 300)
    ),
    "scaleDown with pod policy limitation": RateCase(
        10, 2, 1, 1000, 5, "ScaleDownLimit", down=rules(5, 60, 0, 0, 300)
    ),
    "scaleDown with percent policy limitation": RateCase(
        10, 5, 1, 1000, 5, "DesiredWithinRange", down=rules(0, 0, 50, 60, 300)
    ),
    "scaleUp with spec MaxReplicas limitation with large pod policy and events": RateCase(
        100,
        500,
        1,
        200,
        200,
        "TooManyReplicas",
        up=rules(300, 60, 0, 0, 0),
        up_events=uniform([1, 5, 9], 120),
    ),
    "scaleUp with spec MaxReplicas limitation with large percent policy and events": RateCase(
        100,
        500,
        1,
        200,
        200,
        "TooManyReplicas",
        up=rules(0, 0, 10000, 60, 0),
        up_events=uniform([1, 5, 9], 120),
    ),
    (
        "scaleUp with currentReplicas limitation with rate.PeriodSeconds with a lot of recent scale up events"
    ): RateCase(
        100, 500, 1, 1000, 100, "ScaleUpLimit", up=rules(5, 120, 0, 0, 0), up_events=uniform([1, 5, 9], 120)
    ),
    "scaleUp with pod policy and previous scale up events": RateCase(
        100, 500, 1, 1000, 235, "ScaleUpLimit", up=rules(150, 120, 0, 0, 0), up_events=uniform([1, 5, 9], 120)
    ),
    "scaleUp with percent policy and previous scale up events": RateCase(
        100, 500, 1, 1000, 255, "ScaleUpLimit", up=rules(0, 0, 200, 120, 0), up_events=uniform([1, 5, 9], 120)
    ),
    "scaleUp with percent policy and previous scale up and down events": RateCase(
        6,
        24,
        1,
        1000,
        16,
        "ScaleUpLimit",
        up=rules(0, 0, 300, 300, 0),
        up_events=uniform([4], 120),
        down_events=uniform([2], 120),
    ),
    "scaleDown with default policy and previous events": RateCase(
        10, 5, 1, 1000, 5, "DesiredWithinRange", down_events=uniform([1, 5, 9], 120)
    ),
    "scaleDown with spec MinReplicas=nil limitation with large pod policy and previous events": RateCase(
        100,
        0,
        1,
        1000,
        1,
        "TooFewReplicas",
        down=rules(115, 120, 0, 0, 300),
        down_events=uniform([1, 5, 9], 120),
    ),
    "scaleDown with spec MinReplicas limitation with large pod policy and previous events": RateCase(
        100,
        0,
        5,
        1000,
        5,
        "TooFewReplicas",
        down=rules(130, 120, 0, 0, 300),
        down_events=uniform([1, 5, 9], 120),
    ),
    "scaleDown with spec MinReplicas limitation with large percent policy and previous events": RateCase(
        100,
        2,
        5,
        1000,
        5,
        "TooFewReplicas",
        down=rules(0, 0, 100, 120, 300),
        down_events=uniform([1, 5, 9], 120),
    ),
    "scaleDown with pod policy limitation and previous events": RateCase(
        100,
        2,
        1,
        1000,
        100,
        "ScaleDownLimit",
        down=rules(5, 120, 0, 0, 300),
        down_events=uniform([1, 5, 9], 120),
    ),
    "scaleDown with percent policy limitation and previous events": RateCase(
        100,
        0,
        1,
        1000,
        56,
        "ScaleDownLimit",
        down=rules(0, 0, 50, 120, 300),
        down_events=uniform([2, 4, 6], 120),
    ),
    "scaleDown with percent policy and previous scale up and down events": RateCase(
        10,
        1,
        1,
        1000,
        6,
        "ScaleDownLimit",
        down=rules(0, 0, 50, 180, 0),
        up_events=uniform([2], 120),
        down_events=uniform([4], 120),
    ),
    "scaleDown with previous events preventing further scale down": RateCase(
        100,
        0,
        1,
        1000,
        100,
        "ScaleDownLimit",
        down=rules(0, 0, 10, 120, 300),
        down_events=uniform([10, 10, 10], 120),
    ),
    "scaleDown with with previous events still allowing more scale down": RateCase(
        10,
        5,
        1,
        1000,
        5,
        "DesiredWithinRange",
        down=rules(0, 0, 1000, 120, 300),
        down_events=uniform([10, 10, 10], 120),
    ),
    "check 'outdated' flag for events for one behavior for up": RateCase(
        100,
        200,
        1,
        1000,
        200,
        "DesiredWithinRange",
        up=rules(1000, 60, 0, 0, 0),
        up_events=uniform([8, 12, 9, 11], 120),
    ),
    (
        "check that events were not marked 'outdated' for two different policies in the behavior for up"
    ): RateCase(
        100,
        200,
        1,
        1000,
        200,
        "DesiredWithinRange",
        up=rules(1000, 120, 100, 60, 0),
        up_events=uniform([8, 12, 9, 11], 120),
    ),
    "check 'outdated' flag for events for one behavior for down": RateCase(
        100,
        5,
        1,
        1000,
        5,
        "DesiredWithinRange",
        down=rules(1000, 60, 0, 0, 300),
        down_events=uniform([8, 12, 9, 11], 120),
    ),
}


@pytest.mark.parametrize(
    "case",
    [pytest.param(case, id=f"TestScalingWithRules/{name}") for name, case in SCALING_WITH_RULES.items()],
)
def test_scaling_with_rules(case: RateCase) -> None:
    behavior = Behavior(
        scale_up=case.up or Behavior().scale_up,
        scale_down=case.down or Behavior().scale_down,
    )
    replicas, condition = alg.convert_desired_replicas_with_behavior_rate(
        case.current,
        case.desired,
        min_replicas=case.min_replicas,
        max_replicas=case.max_replicas,
        behavior=behavior,
        up_events=case.up_events,
        down_events=case.down_events,
        now=NOW,
    )
    assert (replicas, condition) == (case.expected, case.condition)


def recs(*pairs: tuple[int, float]) -> tuple[Recommendation, ...]:
    return tuple(Recommendation(replicas, NOW - age) for replicas, age in pairs)


@pytest.mark.parametrize(
    ("history", "desired", "expected", "log_length"),
    [
        pytest.param((), 5, 5, 1, id="TestNormalizeDesiredReplicas/empty log"),
        pytest.param(recs((4, 120), (5, 60)), 3, 5, 3, id="TestNormalizeDesiredReplicas/stabilize"),
        pytest.param(recs((1, 120), (2, 60)), 3, 3, 3, id="TestNormalizeDesiredReplicas/no stabilize"),
        pytest.param(
            recs((10, 600), (9, 540)),
            3,
            3,
            2,
            id="TestNormalizeDesiredReplicas/no stabilize - old recommendations",
        ),
        pytest.param(
            recs((10, 600), (4, 60), (5, 120), (9, 540)),
            3,
            5,
            4,
            id="TestNormalizeDesiredReplicas/stabilize - old recommendations",
        ),
    ],
)
def test_normalize_desired_replicas(
    history: tuple[Recommendation, ...], desired: int, expected: int, log_length: int
) -> None:
    result, log = alg.stabilize_recommendation(history, desired, NOW, 300)
    assert (result, len(log)) == (expected, log_length)


@pytest.mark.parametrize(
    ("history", "current", "desired", "up_window", "down_window", "expected", "stored"),
    [
        pytest.param(
            (),
            100,
            5,
            0,
            0,
            5,
            [5],
            id="TestNormalizeDesiredReplicasWithBehavior/empty recommendations for scaling down",
        ),
        pytest.param(
            recs((4, 120), (5, 60)),
            100,
            3,
            0,
            180,
            5,
            [4, 5, 3],
            id="TestNormalizeDesiredReplicasWithBehavior/simple scale down stabilization",
        ),
        pytest.param(
            recs((4, 120), (5, 60)),
            1,
            7,
            300,
            0,
            4,
            [4, 5, 7],
            id="TestNormalizeDesiredReplicasWithBehavior/simple scale up stabilization",
        ),
        pytest.param(
            recs((1, 120), (2, 60)),
            100,
            3,
            300,
            0,
            3,
            [1, 2, 3],
            id="TestNormalizeDesiredReplicasWithBehavior/no scale down stabilization",
        ),
        pytest.param(
            recs((4, 120), (5, 60)),
            1,
            3,
            0,
            300,
            3,
            [4, 5, 3],
            id="TestNormalizeDesiredReplicasWithBehavior/no scale up stabilization",
        ),
        pytest.param(
            recs((10, 600), (9, 540)),
            100,
            3,
            0,
            0,
            3,
            [10, 3],
            id=(
                "TestNormalizeDesiredReplicasWithBehavior/"
                "no scale down stabilization, reuse recommendation element"
            ),
        ),
        pytest.param(
            recs((10, 600), (9, 540)),
            1,
            100,
            0,
            0,
            100,
            [10, 100],
            id=(
                "TestNormalizeDesiredReplicasWithBehavior/"
                "no scale up stabilization, reuse recommendation element"
            ),
        ),
        pytest.param(
            recs((10, 600), (4, 60), (5, 120), (9, 540)),
            100,
            3,
            0,
            180,
            5,
            [10, 4, 5, 3],
            id=(
                "TestNormalizeDesiredReplicasWithBehavior/"
                "scale down stabilization, reuse one of obsolete recommendation element"
            ),
        ),
        pytest.param(
            recs((10, 6000), (6, 60), (5, 120), (9, 180)),
            1,
            100,
            300,
            0,
            5,
            [100, 6, 5, 9],
            id=(
                "TestNormalizeDesiredReplicasWithBehavior/"
                "scale up stabilization, reuse one of obsolete recommendation element"
            ),
        ),
        pytest.param(
            recs((2, 6000), (3, 180)),
            2,
            1,
            300,
            300,
            2,
            None,
            id=(
                "TestNormalizeDesiredReplicasWithBehavior/"
                "scale up and down stabilization, do not scale up when prenormalized rec goes down"
            ),
        ),
        pytest.param(
            recs((2, 6000), (1, 180)),
            2,
            3,
            300,
            300,
            2,
            None,
            id=(
                "TestNormalizeDesiredReplicasWithBehavior/"
                "scale up and down stabilization, do not scale down when prenormalized rec goes up"
            ),
        ),
    ],
)
def test_normalize_desired_replicas_with_behavior(
    *,
    history: tuple[Recommendation, ...],
    current: int,
    desired: int,
    up_window: int,
    down_window: int,
    expected: int,
    stored: list[int] | None,
) -> None:
    result, _, log = alg.stabilize_recommendation_with_behaviors(
        history, current=current, desired=desired, up_window=up_window, down_window=down_window, now=NOW
    )
    assert result == expected
    if stored is not None:
        assert [r.replicas for r in log] == stored


def events(*triples: tuple[int, float, bool]) -> tuple[ScaleEvent, ...]:
    return tuple(ScaleEvent(change, NOW - age, outdated) for change, age, outdated in triples)


@pytest.mark.parametrize(
    ("with_rules", "previous", "stored", "change_before"),
    [
        pytest.param(None, (), [], 0, id="TestStoreScaleEvents/empty entries with default behavior"),
        pytest.param(
            rules(10, 60, 100, 60, 0),
            (),
            [(5, False)],
            0,
            id="TestStoreScaleEvents/empty entries with two-policy-behavior",
        ),
        pytest.param(
            None,
            events((7, 61, False)),
            [(7, False)],
            0,
            id="TestStoreScaleEvents/one outdated entry to be kept untouched without behavior",
        ),
        pytest.param(
            rules(10, 60, 100, 60, 0),
            events((7, 61, False)),
            [(5, False)],
            0,
            id="TestStoreScaleEvents/one outdated entry to be replaced with behavior",
        ),
        pytest.param(
            rules(10, 60, 100, 60, 0),
            events((7, 58, False)),
            [(7, False), (5, False)],
            7,
            id="TestStoreScaleEvents/one actual entry to be not touched with behavior",
        ),
        pytest.param(
            rules(10, 60, 0, 0, 0),
            events((7, 61, False), (6, 59, False)),
            [(5, False), (6, False)],
            6,
            id="TestStoreScaleEvents/two entries, one of them to be replaced",
        ),
        pytest.param(
            rules(10, 60, 100, 30, 0),
            events((8, 29, False), (6, 59, False), (7, 61, False), (9, 61, False)),
            [(8, False), (6, False), (7, True), (5, False)],
            14,
            id="TestStoreScaleEvents/replace one entry, use policies with different periods",
        ),
        pytest.param(
            rules(10, 120, 100, 30, 0),
            events((7, 58, False), (6, 59, False)),
            [(7, False), (6, False), (5, False)],
            13,
            id="TestStoreScaleEvents/two entries, both actual",
        ),
    ],
)
def test_store_scale_events(
    with_rules: ScalingRules | None,
    previous: tuple[ScaleEvent, ...],
    stored: list[tuple[int, bool]],
    change_before: int,
) -> None:
    assert alg.replicas_change_per_period(60, previous, NOW) == change_before
    up_behavior = Behavior(scale_up=with_rules) if with_rules else None
    up = alg.store_scale_event(ControllerState(scale_up_events=previous), up_behavior, 10, 15, NOW)
    assert [(e.change, e.outdated) for e in up.scale_up_events] == stored
    down_behavior = Behavior(scale_down=with_rules) if with_rules else None
    down = alg.store_scale_event(ControllerState(scale_down_events=previous), down_behavior, 10, 5, NOW)
    assert [(e.change, e.outdated) for e in down.scale_down_events] == stored


def hpa(
    min_replicas: int, max_replicas: int, metrics: Sequence[MetricSpec], behavior: Behavior | None = None
) -> HorizontalPodAutoscaler:
    return HorizontalPodAutoscaler(
        "test-hpa", "test-namespace", ObjectReference("ReplicationController", "test-rc"), min_replicas,
        max_replicas, tuple(metrics), behavior,
    )  # fmt: skip


HOT = NOW
"""horizontal_test.go ``hotCPUCreationTime``."""
COOL = NOW - 180
"""horizontal_test.go ``coolCPUCreationTime``."""
HORIZONTAL = ControllerConfig(
    downscale_stabilization=300, cpu_initialization_period=120, initial_readiness_delay=10
)
"""The controller horizontal_test.go builds: 5 min downscale window, the testing readiness periods."""


@dataclass(frozen=True)
class Horizontal:
    """``horizontalScenario``: one pod per CPU request (or per status replica), 1 CPU each, two containers."""

    min_replicas: int
    max_replicas: int
    spec_replicas: int
    levels: Sequence[int]
    metrics: Sequence[MetricSpec]
    status_replicas: int | None = None
    requests: Sequence[int] | None = None
    """Per-pod CPU requests, milli-CPU (``reportedCPURequests``); unset: a 1-CPU pod per status replica."""
    readiness: Sequence[bool] = ()
    start: Sequence[float] = ()
    phase: Sequence[PodPhase] = ()
    deleted: Sequence[bool] = ()
    recommendations: tuple[Recommendation, ...] | None = None
    container: bool = False
    failing: Sequence[int] = ()

    def pods(self) -> list[Pod]:
        status = self.spec_replicas if self.status_replicas is None else self.status_replicas
        requests = list(self.requests) if self.requests is not None else [1000] * status
        share = 2 if self.container else 1
        return [
            Pod(
                f"test-pod-{i}",
                phase=self.phase[i] if self.phase else PodPhase.RUNNING,
                ready=self.readiness[i] if self.readiness else True,
                deleted=bool(self.deleted) and self.deleted[i],
                start_time=self.start[i] if self.start else ZERO,
                ready_transition_time=self.start[i] if self.start else ZERO,
                request=request // share,
            )
            for i, request in enumerate(requests)
        ]

    def observation(self, spec: MetricSpec) -> Observation:
        if spec.type is SourceType.OBJECT:
            return Observation(value=self.levels[0])
        if spec.type is SourceType.EXTERNAL:
            return Observation(values=tuple(self.levels))
        share = 2 if self.container else 1
        return Observation(
            pod_values={
                f"test-pod-{i}": PodMetric(level // share, NOW, 60) for i, level in enumerate(self.levels)
            }
        )


def cpu_target(utilization: int, container: bool = False) -> MetricSpec:
    kind = SourceType.CONTAINER_RESOURCE if container else SourceType.RESOURCE
    return MetricSpec(kind, "cpu", MetricTarget(TargetType.UTILIZATION, average_utilization=utilization))


def qps(kind: SourceType, target: TargetType, milli: int) -> MetricSpec:
    value = milli if target is TargetType.VALUE else None
    average = milli if target is TargetType.AVERAGE_VALUE else None
    described = (
        ObjectReference("Deployment", "some-deployment", "apps/v1") if kind is SourceType.OBJECT else None
    )
    return MetricSpec(kind, "qps", MetricTarget(target, value=value, average_value=average), None, described)


QPS_VALUE = qps(SourceType.EXTERNAL, TargetType.VALUE, 100)
ONE_CPU = [1000]
MIXED = [900, 1000, 1100]
"""``resource.MustParse("0.9"), ("1.0"), ("1.1")``."""
PODS_QPS_15 = qps(SourceType.PODS, TargetType.AVERAGE_VALUE, 15000)
FRESH = ()
"""``recommendations: []timestampedRecommendation{}``: no history, so no initial recommendation either."""

HORIZONTAL_CASES = {
    "TestScaleUpCPU/scale up": (
        Horizontal(2, 6, 3, [300, 500, 700], [cpu_target(30)], requests=ONE_CPU * 3),
        5,
    ),
    "TestScaleUpCPU/scale up with unready pods results in less scale": (
        Horizontal(
            2, 6, 3, [300, 500, 700], [cpu_target(30)], requests=ONE_CPU * 3, readiness=[False, True, True]
        ),
        4,
    ),
    "TestScaleUpCPU/scale up with hot cpu pods results in less scale": (
        Horizontal(2, 6, 3, [300, 500, 700], [cpu_target(30)], requests=ONE_CPU * 3, start=[HOT, COOL, COOL]),
        4,
    ),
    "TestScaleUpCPU/scale up ignores failed pods": (
        Horizontal(
            2, 6, 2, [500, 700], [cpu_target(30)], requests=ONE_CPU * 4, readiness=[True, True, False, False],
            phase=[PodPhase.RUNNING, PodPhase.RUNNING, PodPhase.FAILED, PodPhase.FAILED],
        ),
        4,
    ),
    "TestScaleUpCPU/scale up ignores deletion pods": (
        Horizontal(
            2, 6, 2, [500, 700], [cpu_target(30)], requests=ONE_CPU * 4, readiness=[True, True, False, False],
            deleted=[False, False, True, True],
        ),
        4,
    ),
    "TestScaleUpCPU/no scale up when all unready pods bring utilization within target": (
        Horizontal(
            2, 6, 3, [400, 500, 700], [cpu_target(30)], requests=ONE_CPU * 3, readiness=[True, False, False]
        ),
        3,
    ),
    "TestScaleUpUnreadyOrHotCpuNoScale/unready pods excluded from scaling": (
        Horizontal(
            2, 6, 3, [400, 500, 700], [cpu_target(30)], requests=ONE_CPU * 3, readiness=[True, False, False]
        ),
        3,
    ),
    "TestScaleUpUnreadyOrHotCpuNoScale/hot CPU pods excluded from scaling": (
        Horizontal(
            2, 6, 3, [400, 500, 700], [cpu_target(30)], requests=ONE_CPU * 3, readiness=[True, False, False],
            start=[COOL, HOT, HOT],
        ),
        3,
    ),
    "TestScaleDownCPU/scale down": (
        Horizontal(
            2, 6, 5, [100, 300, 500, 250, 250], [cpu_target(50)], requests=ONE_CPU * 5, recommendations=FRESH
        ),
        3,
    ),
    "TestScaleDownCPU/scale down includes unready pods": (
        Horizontal(
            2, 6, 5, [100, 300, 500, 250, 250], [cpu_target(50)], requests=ONE_CPU * 5,
            readiness=[True, True, True, False, False], recommendations=FRESH,
        ),
        2,
    ),
    "TestScaleDownCPU/scale down ignores hot cpu pods": (
        Horizontal(
            2, 6, 5, [100, 300, 500, 250, 250], [cpu_target(50)], requests=ONE_CPU * 5,
            start=[COOL, COOL, COOL, HOT, HOT], recommendations=FRESH,
        ),
        2,
    ),
    "TestScaleDownCPU/scale down ignores failed pods": (
        Horizontal(
            2, 6, 5, [100, 300, 500, 250, 250], [cpu_target(50)], requests=ONE_CPU * 7,
            readiness=[True] * 5 + [False] * 2, phase=[PodPhase.RUNNING] * 5 + [PodPhase.FAILED] * 2,
            recommendations=FRESH,
        ),
        3,
    ),
    "TestScaleDownCPU/scale down ignores deletion pods": (
        Horizontal(
            2, 6, 5, [100, 300, 500, 250, 250], [cpu_target(50)], requests=ONE_CPU * 7,
            readiness=[True] * 5 + [False] * 2, deleted=[False] * 5 + [True] * 2, recommendations=FRESH,
        ),
        3,
    ),
    "TestScaleContainerResource/scale up container resource": (
        Horizontal(
            2, 6, 3, [300, 500, 700], [cpu_target(30, container=True)], requests=ONE_CPU * 3, container=True
        ),
        5,
    ),
    "TestScaleContainerResource/scale down container resource": (
        Horizontal(
            2, 6, 5, [100, 300, 500, 250, 250], [cpu_target(50, container=True)], requests=ONE_CPU * 5,
            container=True,
            recommendations=FRESH,
        ),
        3,
    ),
    "TestScaleUpCM/scale up custom metric": (
        Horizontal(2, 6, 3, [20000, 10000, 30000], [PODS_QPS_15], requests=ONE_CPU * 3),
        4,
    ),
    "TestScaleUpCM/unready and hot cpu pods do not reduce scale for custom metric": (
        Horizontal(
            2, 6, 3, [50000, 10000, 30000], [PODS_QPS_15], requests=ONE_CPU * 3,
            readiness=[True, True, False],
            start=[COOL, COOL, HOT],
        ),
        6,
    ),
    "TestScaleUpCM/unready and hot cpu pods scale to max with scaling limited condition": (
        Horizontal(
            2, 6, 3, [50000, 15000, 30000], [PODS_QPS_15], requests=ONE_CPU * 3,
            readiness=[False, True, False],
            start=[HOT, COOL, HOT],
        ),
        6,
    ),
    "TestScaleUpCMObject/scale up object metric with value target": (
        Horizontal(2, 6, 3, [20000], [qps(SourceType.OBJECT, TargetType.VALUE, 15000)]),
        4,
    ),
    "TestScaleUpCMObject/scale up from zero with feature gate disabled": (
        Horizontal(0, 6, 0, [20000], [qps(SourceType.OBJECT, TargetType.VALUE, 15000)]),
        0,
    ),
    "TestScaleUpCMObject/scale up from zero ignores tolerance with feature gate disabled": (
        Horizontal(0, 6, 0, [1000], [qps(SourceType.OBJECT, TargetType.VALUE, 1000)]),
        0,
    ),
    "TestScaleUpCMObject/scale up per-pod object metric with average value target": (
        Horizontal(2, 6, 3, [40000], [qps(SourceType.OBJECT, TargetType.AVERAGE_VALUE, 10000)]),
        4,
    ),
    "TestScaleUpCMExternal/scale up external metric with value target": (
        Horizontal(2, 6, 3, [8600], [qps(SourceType.EXTERNAL, TargetType.VALUE, 6666)]),
        4,
    ),
    "TestScaleUpCMExternal/scale up external metric with per-pod average value target": (
        Horizontal(2, 6, 3, [8600], [qps(SourceType.EXTERNAL, TargetType.AVERAGE_VALUE, 2222)]),
        4,
    ),
    "TestScaleDownCM/scale down pods metric": (
        Horizontal(
            2, 6, 5, [12000] * 5, [qps(SourceType.PODS, TargetType.AVERAGE_VALUE, 20000)],
            requests=ONE_CPU * 5,
            recommendations=FRESH,
        ),
        3,
    ),
    "TestScaleDownCM/scale down object metric with value target": (
        Horizontal(
            2, 6, 5, [12000], [qps(SourceType.OBJECT, TargetType.VALUE, 20000)], requests=ONE_CPU * 5,
            recommendations=FRESH,
        ),
        3,
    ),
    "TestScaleDownCM/scale down to zero object metric with feature gate disabled": (
        Horizontal(
            0, 6, 5, [0], [qps(SourceType.OBJECT, TargetType.VALUE, 20000)], requests=ONE_CPU * 5,
            recommendations=FRESH,
        ),
        0,
    ),
    "TestScaleDownCM/scale down per-pod object metric with average value target": (
        Horizontal(
            2, 6, 5, [60000], [qps(SourceType.OBJECT, TargetType.AVERAGE_VALUE, 20000)], requests=ONE_CPU * 5,
            recommendations=FRESH,
        ),
        3,
    ),
    "TestScaleDownCM/scale down external metric with value target": (
        Horizontal(
            2, 6, 5, [8600], [qps(SourceType.EXTERNAL, TargetType.VALUE, 14400)], recommendations=FRESH
        ),
        3,
    ),
    "TestScaleDownCM/scale down to zero external metric with feature gate disabled": (
        Horizontal(0, 6, 5, [0], [qps(SourceType.EXTERNAL, TargetType.VALUE, 14400)], recommendations=FRESH),
        0,
    ),
    "TestScaleDownCM/scale down per-pod external metric with average value target": (
        Horizontal(
            2, 6, 5, [8600], [qps(SourceType.EXTERNAL, TargetType.AVERAGE_VALUE, 3000)], recommendations=FRESH
        ),
        3,
    ),
    "TestScaleUpOneMetricInvalid": (
        Horizontal(2, 6, 3, [300, 400, 500], [cpu_target(30), QPS_VALUE], requests=ONE_CPU * 3, failing=[1]),
        4,
    ),
    "TestScaleUpOneMetricEmpty": (
        Horizontal(2, 6, 3, [300, 400, 500], [cpu_target(30), QPS_VALUE], requests=ONE_CPU * 3, failing=[1]),
        4,
    ),
    "TestNoScaleDownOneMetricEmpty": (
        Horizontal(
            2, 6, 5, [100, 300, 500, 250, 250], [cpu_target(50), QPS_VALUE], requests=ONE_CPU * 5,
            failing=[1],
            recommendations=FRESH,
        ),
        5,
    ),
    "TestScaleDownStabilizeInitialSize": (
        Horizontal(2, 6, 5, [100, 300, 500, 250, 250], [cpu_target(50)], requests=ONE_CPU * 5),
        5,
    ),
    "TestScaleUpFromZeroOneMetricInvalid/HPAScaleToZero=false": (
        Horizontal(0, 6, 0, [300, 400, 500], [cpu_target(30), QPS_VALUE], requests=ONE_CPU * 3, failing=[1]),
        0,
    ),
    "TestScaledToZeroConditionHandledOnNormalRescale/HPAScaleToZero=false": (
        Horizontal(1, 6, 3, [300, 500, 700], [cpu_target(30)], requests=ONE_CPU * 3),
        5,
    ),
    "TestManualScaleToZeroDisablesHPA/HPAScaleToZero=false": (
        Horizontal(1, 6, 0, [], [cpu_target(50)], requests=[]),
        0,
    ),
    "TestTolerance/CPU resource metric within tolerance": (
        Horizontal(1, 5, 3, [1010, 1030, 1020], [cpu_target(100)], requests=MIXED),
        3,
    ),
    "TestTolerance/pods metric within tolerance": (
        Horizontal(
            1, 5, 3, [20000, 20001, 21000], [qps(SourceType.PODS, TargetType.AVERAGE_VALUE, 20000)],
            requests=MIXED,
        ),
        3,
    ),
    "TestTolerance/object metric with value target within tolerance": (
        Horizontal(1, 5, 3, [20050], [qps(SourceType.OBJECT, TargetType.VALUE, 20000)], requests=MIXED),
        3,
    ),
    "TestTolerance/external metric with value target within tolerance": (
        Horizontal(2, 6, 4, [8600], [qps(SourceType.EXTERNAL, TargetType.VALUE, 8666)]),
        4,
    ),
    "TestTolerance/per-pod object metric with average value target within tolerance": (
        Horizontal(2, 6, 4, [8600], [qps(SourceType.OBJECT, TargetType.AVERAGE_VALUE, 2200)]),
        4,
    ),
    "TestTolerance/per-pod external metric with average value target within tolerance": (
        Horizontal(2, 6, 4, [8600], [qps(SourceType.EXTERNAL, TargetType.AVERAGE_VALUE, 2200)]),
        4,
    ),
    "TestReplicaLimits/scale down clamped to min replicas": (
        Horizontal(2, 5, 3, [10, 95, 10], [cpu_target(90)], requests=MIXED, recommendations=FRESH),
        2,
    ),
    "TestReplicaLimits/scale down to zero when min replicas is zero": (
        Horizontal(0, 5, 3, [0, 0, 0], [cpu_target(90)], requests=MIXED, recommendations=FRESH),
        0,
    ),
    "TestReplicaLimits/scale down clamped to min when desired is zero": (
        Horizontal(2, 5, 3, [0, 0, 0], [cpu_target(90)], requests=MIXED, recommendations=FRESH),
        2,
    ),
    "TestReplicaLimits/no scaling when spec replicas is zero": (
        Horizontal(3, 5, 0, [], [cpu_target(90)], requests=[]),
        0,
    ),
    "TestReplicaLimits/scale up to min when below min replicas": (
        Horizontal(3, 5, 2, [], [cpu_target(90)], requests=[]),
        3,
    ),
    "TestReplicaLimits/scale down to max when above max replicas": (
        Horizontal(3, 5, 10, [], [cpu_target(90)], requests=[]),
        5,
    ),
    "TestReplicaLimits/scale up clamped to max replicas": (
        Horizontal(2, 5, 3, [8000, 9500, 1000], [cpu_target(90)], requests=MIXED),
        5,
    ),
    "TestMetricsEdgeCases/superfluous metrics reported": (
        Horizontal(2, 6, 4, [4000, 9500, 3000, 7000, 3200, 2000], [cpu_target(100)], requests=ONE_CPU * 4),
        6,
    ),
    "TestMetricsEdgeCases/missing metrics from some pods": (
        Horizontal(2, 6, 4, [400, 95], [cpu_target(100)], requests=ONE_CPU * 4, recommendations=FRESH),
        3,
    ),
    "TestMetricsEdgeCases/empty metrics from all pods": (
        Horizontal(2, 6, 4, [], [cpu_target(100)], requests=ONE_CPU * 4),
        4,
    ),
    "TestMetricsEdgeCases/empty CPU requests": (
        Horizontal(1, 5, 1, [200], [cpu_target(100)], requests=[]),
        1,
    ),
    "TestEventCreated": (Horizontal(1, 5, 1, [200], [cpu_target(50)], requests=[200]), 2),
    "TestEventNotCreated": (Horizontal(1, 5, 2, [200, 200], [cpu_target(50)], requests=[400, 400]), 2),
}  # fmt: skip


@pytest.mark.parametrize(
    ("scenario", "expected"), [pytest.param(*case, id=name) for name, case in HORIZONTAL_CASES.items()]
)
def test_reconcile_autoscaler(scenario: Horizontal, expected: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """reconcileAutoscaler as horizontal_test.go drives it (whose init() raises scaleUpLimitFactor to 8)."""
    monkeypatch.setattr(alg, "SCALE_UP_LIMIT_FACTOR", 8.0)
    status = scenario.spec_replicas if scenario.status_replicas is None else scenario.status_replicas
    observations = [
        Observation(error="something went wrong") if i in scenario.failing else scenario.observation(spec)
        for i, spec in enumerate(scenario.metrics)
    ]
    decision = alg.reconcile(
        hpa(scenario.min_replicas, scenario.max_replicas, scenario.metrics),
        ControllerState(recommendations=scenario.recommendations),
        spec_replicas=scenario.spec_replicas,
        status_replicas=status,
        pods=scenario.pods(),
        observations=observations,
        now=NOW,
        config=HORIZONTAL,
    )
    assert decision.desired_replicas == expected
    assert decision.rescale == (expected != scenario.spec_replicas)


def test_scale_to_zero_disabled_keeps_zero() -> None:
    """reconcileAutoscaler with HPAScaleToZero off: a target at zero replicas is left alone."""
    decision = alg.reconcile(
        hpa(1, 5, [QPS_VALUE]), ControllerState(), spec_replicas=0, status_replicas=0, pods=[],
        observations=[Observation(values=(10_000,))], now=NOW,
    )  # fmt: skip
    assert (decision.desired_replicas, decision.rescale, decision.reason) == (0, False, "ScalingDisabled")


UP_1_PERCENT = Behavior(scale_up=replace(DEFAULT_SCALE_UP_RULES, tolerance=0.01))
DOWN_90_PERCENT = Behavior(scale_down=replace(DEFAULT_SCALE_DOWN_RULES, tolerance=0.9))


@pytest.mark.parametrize(
    ("behavior", "levels", "requests", "gate", "expected"),
    [
        pytest.param(
            UP_1_PERCENT, [1010, 1030, 1020], MIXED, True, 4,
            id="TestConfigurableTolerance/Scaling up because of a 1% configurable tolerance",
        ),
        pytest.param(
            DOWN_90_PERCENT, [300, 300, 300], ONE_CPU * 3, True, 3,
            id="TestConfigurableTolerance/No scale-down because of a 90% configurable tolerance",
        ),
        pytest.param(
            None, [1010, 1030, 1020], MIXED, True, 3,
            id="TestConfigurableTolerance/No scaling because of the large default tolerance",
        ),
        pytest.param(
            UP_1_PERCENT, [1010, 1030, 1020], MIXED, False, 3,
            id=(
                "TestConfigurableTolerance/"
                "No scaling because the configurable tolerance is ignored as the feature gate is disabled"
            ),
        ),
    ],
)  # fmt: skip
def test_configurable_tolerance(
    *, behavior: Behavior | None, levels: list[int], requests: list[int], gate: bool, expected: int
) -> None:
    scenario = Horizontal(1, 5, 3, levels, [cpu_target(100)], requests=requests)
    decision = alg.reconcile(
        hpa(1, 5, scenario.metrics, behavior), ControllerState(), spec_replicas=3, status_replicas=3,
        pods=scenario.pods(), observations=[scenario.observation(scenario.metrics[0])], now=NOW,
        config=replace(HORIZONTAL, configurable_tolerance=gate),
    )  # fmt: skip
    assert decision.desired_replicas == expected


def test_per_hpa_tolerance_overrides_flag() -> None:
    """tolerancesForHpa: behavior tolerances replace the flag per direction, unless the gate is off."""
    up = ScalingRules(SelectPolicy.MAX, Behavior().scale_up.policies, 0, tolerance=0.01)
    autoscaler = hpa(1, 10, [QPS_VALUE], Behavior(scale_up=up))
    assert alg.tolerances_for_hpa(autoscaler, ControllerConfig()) == Tolerances(0.1, 0.01)
    gate_off = ControllerConfig(configurable_tolerance=False)
    assert alg.tolerances_for_hpa(autoscaler, gate_off) == Tolerances(0.1, 0.1)


# --- properties -------------------------------------------------------------------------------------------

AVERAGE = MetricSpec(SourceType.EXTERNAL, "load", MetricTarget(TargetType.AVERAGE_VALUE, average_value=1000))
"""External AverageValue with a target of 1: the proposal is ``ceil(value)`` once outside tolerance."""

policies = st.lists(
    st.builds(
        ScalingPolicy,
        st.sampled_from(list(PolicyType)),
        st.integers(1, 300),
        st.integers(1, 600),
    ),
    min_size=1,
    max_size=3,
)
scaling_rules = st.builds(
    ScalingRules,
    st.sampled_from(list(SelectPolicy)),
    policies.map(tuple),
    st.integers(0, 900),
    st.one_of(st.none(), st.floats(0, 0.5)),
)
behaviors = st.one_of(st.none(), st.builds(Behavior, scaling_rules, scaling_rules))


def run(
    autoscaler: HorizontalPodAutoscaler, initial: int, loads: Sequence[float], period: float = 15.0
) -> list[alg.Decision]:
    """Sync every ``period`` seconds with the External ``load`` metric at each value; replicas follow."""
    state = ControllerState()
    replicas = initial
    decisions = []
    for i, load in enumerate(loads):
        pods = [Pod(f"p{j}") for j in range(replicas)]
        decision = alg.reconcile(
            autoscaler, state, spec_replicas=replicas, status_replicas=replicas, pods=pods,
            observations=[Observation(values=(round(load * 1000),))], now=i * period,
        )  # fmt: skip
        state = decision.state
        replicas = decision.desired_replicas
        decisions.append(decision)
    return decisions


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 20),
    st.integers(0, 40),
    st.integers(1, 60),
    st.lists(st.floats(0, 500), min_size=1, max_size=40),
    behaviors,
)
def test_property_never_outside_min_max(
    minimum: int, extra: int, initial: int, loads: list[float], behavior: Behavior | None
) -> None:
    autoscaler = hpa(minimum, minimum + extra, [AVERAGE], behavior)
    for decision in run(autoscaler, initial, loads):
        if decision.rescale:
            assert minimum <= decision.desired_replicas <= minimum + extra


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 50),
    st.lists(st.integers(0, 10**7), min_size=1, max_size=20),
    st.integers(1, 10**6),
    st.floats(0, 0.5),
    st.floats(0, 0.5),
)
def test_property_within_tolerance_no_change(
    current: int, values: list[int], target: int, down: float, up: float
) -> None:
    """calcPlainMetricReplicas: a usage ratio inside the tolerance band keeps the current replica count."""
    tolerances = Tolerances(down, up)
    pods = [Pod(f"p{i}") for i in range(len(values))]
    metrics = {pod.name: PodMetric(value) for pod, value in zip(pods, values, strict=True)}
    ratio, _ = alg.metric_usage_ratio({k: v.value for k, v in metrics.items()}, target)
    result = alg.plain_metric_replicas(current, target, pods, metrics, tolerances=tolerances, now=NOW)
    if tolerances.is_within(ratio):
        assert result.replicas == current


@settings(max_examples=150, deadline=None)
@given(
    st.integers(2, 30),
    st.integers(0, 3600),
    st.lists(st.floats(0, 40), min_size=1, max_size=60),
)
def test_property_no_scale_down_before_window(initial: int, window: int, loads: list[float]) -> None:
    """stabilizeRecommendationWithBehaviors: the count never drops below a recommendation younger than the
    scale-down window (the first recommendation is the initial size)."""
    down = ScalingRules(SelectPolicy.MAX, (ScalingPolicy(PolicyType.PERCENT, 100, 15),), window)
    autoscaler = hpa(1, 100, [AVERAGE], Behavior(scale_down=down))
    recommendations: list[tuple[float, int]] = [(0.0, initial)]
    for decision in run(autoscaler, initial, loads):
        recent = [r for t, r in recommendations if t > decision.time - window]
        if decision.desired_replicas < decision.current_replicas:
            assert decision.desired_replicas >= max(recent, default=0)
        if decision.time < window:
            assert decision.desired_replicas >= initial
        assert decision.proposal is not None
        recommendations.append((decision.time, decision.proposal))


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 20),
    st.integers(1, 50),
    st.integers(15, 600),
    st.lists(st.floats(0, 2000), min_size=1, max_size=60),
)
def test_property_pods_policy_limits_additions_per_period(
    initial: int, pods_per_period: int, period: int, loads: list[float]
) -> None:
    """calculateScaleUpLimitWithScalingRules: with one Pods policy no period adds more than its value."""
    up = ScalingRules(SelectPolicy.MAX, (ScalingPolicy(PolicyType.PODS, pods_per_period, period),), 0)
    autoscaler = hpa(1, 10_000, [AVERAGE], Behavior(scale_up=up))
    ups: list[tuple[float, int]] = []
    for decision in run(autoscaler, initial, loads):
        if decision.desired_replicas > decision.current_replicas:
            ups.append((decision.time, decision.desired_replicas - decision.current_replicas))
            window = [change for t, change in ups if t > decision.time - period]
            assert sum(window) <= pods_per_period


@settings(max_examples=300, deadline=None)
@given(
    current=st.integers(0, 500),
    desired=st.integers(0, 2000),
    minimum=st.integers(0, 100),
    maximum=st.integers(1, 2000),
    up=scaling_rules,
    down=scaling_rules,
    up_history=st.lists(st.tuples(st.integers(1, 50), st.floats(0, 1900)), max_size=6),
    down_history=st.lists(st.tuples(st.integers(1, 50), st.floats(0, 1900)), max_size=6),
)
def test_property_rate_limits_respected(
    *,
    current: int,
    desired: int,
    minimum: int,
    maximum: int,
    up: ScalingRules,
    down: ScalingRules,
    up_history: list[tuple[int, float]],
    down_history: list[tuple[int, float]],
) -> None:
    """convertDesiredReplicasWithBehaviorRate never passes the policies' limit nor turns direction."""
    up_events = tuple(ScaleEvent(change, NOW - age) for change, age in up_history)
    down_events = tuple(ScaleEvent(change, NOW - age) for change, age in down_history)
    result, _ = alg.convert_desired_replicas_with_behavior_rate(
        current, desired, min_replicas=minimum, max_replicas=maximum, behavior=Behavior(up, down),
        up_events=up_events, down_events=down_events, now=NOW,
    )  # fmt: skip
    if desired > current:
        limit = alg.scale_up_limit_with_rules(current, up_events, down_events, up, NOW)
        assert result <= max(limit, current)
        assert result <= desired
        if up.select_policy is SelectPolicy.DISABLED:
            assert result <= current
    elif desired < current:
        limit = alg.scale_down_limit_with_behaviors(current, up_events, down_events, down, NOW)
        assert result >= min(limit, current)
        assert result >= desired
        if down.select_policy is SelectPolicy.DISABLED:
            assert result >= current
    else:
        assert result == desired

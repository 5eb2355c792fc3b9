"""Scenario and series inputs of the HPA lab: formats, errors that name the line, closed-loop behaviour."""

from __future__ import annotations

import pytest

from hpalab.hpa_spec import parse_hpa
from hpalab.series import SeriesError, parse_series
from hpalab.simulate import replay_scenario, replay_series
from kgm_common.scenario import MetricSource, ScenarioError, parse_scenario

HPA = parse_hpa(
    """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: infer}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: infer}
  minReplicas: 1
  maxReplicas: 10
  metrics:
  - type: Pods
    pods:
      metric: {name: gpu_utilization}
      target: {type: AverageValue, averageValue: "50"}
"""
)


def test_load_ramps_and_steps() -> None:
    scenario = parse_scenario(
        "duration: 600\ncapacityPerPod: 10\n"
        "load:\n  - {at: 0, rate: 10}\n  - {at: 100, rate: 30, ramp: 100}\n"
    )
    assert [scenario.rate(t) for t in (0, 50, 100, 150, 200, 500)] == [10, 10, 10, 20, 30, 30]
    assert scenario.source("gpu_utilization") is MetricSource.UTILIZATION_PERCENT


def test_sharing_the_load_lowers_each_pods_utilization() -> None:
    scenario = parse_scenario(
        "duration: 60\ncapacityPerPod: 100\nidleUtilization: 0.1\nload: [{at: 0, rate: 120}]\n"
    )
    assert scenario.value("gpu_utilization", 0, 2, 0) == pytest.approx(70.0)
    assert scenario.value("gpu_utilization", 0, 4, 0) == pytest.approx(40.0)
    assert scenario.value("gpu_utilization", 0, 1, 0) == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "capacityPerPod: 1\nload: [{at: 0, rate: 1}]\n", "<scenario>:1: duration: required", id="duration"
        ),
        pytest.param(
            "duration: 60\ncapacityPerPod: 0\nload: [{at: 0, rate: 1}]\n",
            "<scenario>:2: capacityPerPod: must be greater than 0",
            id="capacity",
        ),
        pytest.param(
            "duration: 60\ncapacityPerPod: 1\nload:\n  - {at: 10, rate: 1}\n  - {at: 5, rate: 2}\n",
            "<scenario>:5: load[1].at: must increase",
            id="order",
        ),
        pytest.param(
            "duration: 60\ncapacityPerPod: 1\nload: [{at: 0, rate: 1}]\nmetrics:\n  gpu_utilization: watts\n",
            "<scenario>:5: metrics.gpu_utilization: unknown metric source",
            id="source",
        ),
        pytest.param(
            "duration: 60\ncapacityPerPod: 1\nload: [{at: 0, rate: 1}]\nstartup: 3\n",
            "<scenario>:4: startup: unknown field",
            id="typo",
        ),
        pytest.param("duration: [\n", "<scenario>:2: invalid YAML", id="syntax"),
    ],
)
def test_scenario_errors_name_the_line(text: str, expected: str) -> None:
    with pytest.raises(ScenarioError, match="^" + expected.replace("[", r"\[").replace("]", r"\]")):
        parse_scenario(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("t,gpu\n0,1\n", "<series>:1: the header must start with 'time'", id="header"),
        pytest.param("time,gpu\n0,1\n0,2\n", "<series>:3: time must increase", id="order"),
        pytest.param("time,gpu\n0,1\n15,abc\n", "<series>:3: value 'abc' is not a number", id="number"),
        pytest.param("time,gpu\n0,1,2\n", "<series>:2: expected 2 cells, got 3", id="cells"),
        pytest.param("time,gpu[x]\n0,1\n", "<series>:1: bad column name", id="column"),
    ],
)
def test_series_errors_name_the_line(text: str, expected: str) -> None:
    with pytest.raises(SeriesError) as caught:
        parse_series(text)
    assert str(caught.value).startswith(expected)


def test_series_per_pod_columns_make_missing_pods() -> None:
    """Pods without a sample are missing: on a scale-down they count at the target (no change here)."""
    series = parse_series("time,gpu_utilization[0],gpu_utilization[1]\n0,10,\n")
    steps = list(replay_series(HPA, series, initial_replicas=2))
    proposal = steps[0].decision.metrics
    assert proposal is not None
    assert (proposal.proposals[0].usage, steps[0].replicas) == (10_000, 2)


def test_empty_cells_make_the_metric_invalid_and_keep_replicas() -> None:
    series = parse_series("time,gpu_utilization\n0,\n")
    (step,) = replay_series(HPA, series, initial_replicas=3)
    assert step.replicas == 3
    assert step.decision.metrics is not None
    assert step.decision.metrics.replicas == -1


def test_closed_loop_settles_at_the_target() -> None:
    """300 req/s at 100 req/s per GPU and a 50 % target need 6 pods; the loop gets there and stays."""
    scenario = parse_scenario(
        "duration: 900\ncapacityPerPod: 100\ninitialReplicas: 1\npodStartupSeconds: 30\n"
        "load: [{at: 0, rate: 300}]\n"
    )
    steps = list(replay_scenario(HPA, scenario))
    assert steps[-1].replicas == 6
    assert all(step.replicas <= 10 for step in steps)


def test_manual_scale_up_is_undone_by_the_recommendation_history() -> None:
    """The window holds only the HPA's own recommendations (2), so a manual 4 goes straight back to 2."""
    scenario = parse_scenario(
        "duration: 60\ncapacityPerPod: 100\ninitialReplicas: 2\npodStartupSeconds: 0\n"
        "load: [{at: 0, rate: 100}]\nreplicas: [{at: 30, replicas: 4}]\n"
    )
    steps = list(replay_scenario(HPA, scenario))
    assert [s.replicas_before for s in steps] == [2, 2, 4, 2, 2]

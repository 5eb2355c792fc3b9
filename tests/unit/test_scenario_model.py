"""The shared scenario model (``kgm_common.scenario``): the Deployment's pods and the scenario's replicas."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kgm_common.scenario import Deployment, ScenarioError, parse_scenario


def test_first_pods_ran_before_later_ones_start_pending() -> None:
    deployment = Deployment("infer", startup=30)
    deployment.scale(2, 0.0)
    assert [pod.name for pod in deployment.ready(0.0)] == ["infer-0", "infer-1"]
    deployment.scale(3, 10.0)
    assert [pod.name for pod in deployment.ready(39.9)] == ["infer-0", "infer-1"]
    assert [pod.name for pod in deployment.ready(40.0)] == ["infer-0", "infer-1", "infer-2"]


def test_scale_down_deletes_pending_pods_first_then_the_newest() -> None:
    deployment = Deployment("infer", startup=30)
    deployment.scale(2, 0.0)
    deployment.scale(3, 100.0)
    deployment.scale(4, 120.0)
    deployment.scale(3, 125.0)
    assert [pod.name for pod in deployment.pods] == ["infer-0", "infer-1", "infer-2"]
    deployment.scale(1, 200.0)
    assert [pod.name for pod in deployment.pods] == ["infer-0"]
    deployment.scale(2, 200.0)
    assert [pod.name for pod in deployment.pods] == ["infer-0", "infer-4"]


@given(st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=30))
def test_any_scale_sequence_keeps_the_count_and_unique_names(counts: list[int]) -> None:
    deployment = Deployment("d", startup=15)
    for i, count in enumerate(counts):
        deployment.scale(count, 10.0 * i)
        assert len(deployment.pods) == count
        assert len({pod.name for pod in deployment.pods}) == count


def test_scheduled_replicas_and_gpus_per_pod() -> None:
    scenario = parse_scenario(
        "duration: 600\ncapacityPerPod: 10\ngpusPerPod: 2\nload: [{at: 0, rate: 5}]\n"
        "replicas: [{at: 60, replicas: 4}, {at: 120, replicas: 1}]\n"
    )
    assert scenario.gpus_per_pod == 2
    assert [scenario.scheduled_replicas(t, 3) for t in (0, 59, 60, 119, 500)] == [3, 3, 4, 4, 1]
    assert parse_scenario("duration: 9\ncapacityPerPod: 1\nload: [{at: 0, rate: 1}]\n").gpus_per_pod == 1


def test_gpus_per_pod_is_bounded() -> None:
    with pytest.raises(ScenarioError, match="<scenario>:3: gpusPerPod: must be greater than or equal to 1"):
        parse_scenario("duration: 9\ncapacityPerPod: 1\ngpusPerPod: 0\nload: [{at: 0, rate: 1}]\n")

"""Parsing autoscaling/v2 HPA documents: upstream defaults, validation errors naming field and line, and a
parser that fails only with ``HpaSpecError`` whatever YAML it is given."""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from hpalab.hpa_spec import (
    DEFAULT_SCALE_DOWN_RULES,
    DEFAULT_SCALE_UP_RULES,
    HpaSpecError,
    PolicyType,
    ScalingPolicy,
    SelectPolicy,
    SourceType,
    TargetType,
    hpa_from_node,
    load_hpa,
    parse_hpa,
)
from hpalab.quantity import QuantityError, format_milli, parse_milli
from kgm_common.yamlsource import Node

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hpa" / "hpa-gpu-utilization.yaml"

MINIMAL = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  maxReplicas: 5
"""


def test_example_parses_with_its_policies() -> None:
    hpa = load_hpa(EXAMPLE)
    assert (hpa.name, hpa.namespace, hpa.min_replicas, hpa.max_replicas) == (
        "llm-inference",
        "gpu-demo",
        2,
        10,
    )
    (metric,) = hpa.metrics
    assert (metric.type, metric.name, metric.target.type) == (
        SourceType.PODS,
        "gpu_utilization",
        TargetType.AVERAGE_VALUE,
    )
    assert metric.target.average_value == 60_000
    assert hpa.behavior is not None
    assert hpa.behavior.scale_up.policies == (
        ScalingPolicy(PolicyType.PODS, 2, 60),
        ScalingPolicy(PolicyType.PERCENT, 100, 60),
    )
    assert hpa.behavior.scale_down.stabilization_window_seconds == 300
    assert hpa.behavior.scale_down.select_policy is SelectPolicy.MAX


def test_defaults_follow_set_defaults_horizontal_pod_autoscaler() -> None:
    """SetDefaults_HorizontalPodAutoscaler: minReplicas 1, CPU at 80 %, no behavior unless one is given."""
    hpa = parse_hpa(MINIMAL)
    assert hpa.min_replicas == 1
    assert hpa.namespace == "default"
    (metric,) = hpa.metrics
    assert (metric.type, metric.name, metric.target.average_utilization) == (SourceType.RESOURCE, "cpu", 80)
    assert hpa.behavior is None


def test_partial_behavior_is_completed_with_upstream_rules() -> None:
    """GenerateHPAScaleUpRules/GenerateHPAScaleDownRules fill what a partial behavior leaves out."""
    hpa = parse_hpa(MINIMAL + "  behavior:\n    scaleDown:\n      tolerance: 0.05\n")
    assert hpa.behavior is not None
    assert hpa.behavior.scale_up == DEFAULT_SCALE_UP_RULES
    assert hpa.behavior.scale_down.policies == DEFAULT_SCALE_DOWN_RULES.policies
    assert hpa.behavior.scale_down.stabilization_window_seconds is None
    assert hpa.behavior.scale_down.tolerance == pytest.approx(0.05)


def test_quantities_are_milli_values_rounded_up() -> None:
    text = MINIMAL + (
        "  metrics:\n"
        "  - type: Object\n"
        "    object:\n"
        "      describedObject: {apiVersion: apps/v1, kind: Deployment, name: web}\n"
        "      metric: {name: queue_length, selector: {matchLabels: {queue: jobs}}}\n"
        "      target: {type: Value, value: 1.5k}\n"
        "  - type: External\n"
        "    external:\n"
        "      metric: {name: qps}\n"
        "      target: {type: AverageValue, averageValue: 0.0001}\n"
    )
    hpa = parse_hpa(text)
    assert hpa.metrics[0].target.value == 1_500_000
    assert hpa.metrics[0].selector is not None
    assert hpa.metrics[0].selector.query() == "queue=jobs"
    assert hpa.metrics[1].target.average_value == 1


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            ("  maxReplicas: 5\n", "  maxReplicas: 0\n"),
            ":7: spec.maxReplicas: must be greater",
            id="max-zero",
        ),
        pytest.param(
            ("  maxReplicas: 5\n", "  minReplicas: 6\n  maxReplicas: 5\n"),
            ":8: spec.maxReplicas: must be greater than or equal to `minReplicas`",
            id="max-below-min",
        ),
        pytest.param(("kind: HorizontalPodAutoscaler", "kind: Deployment"), ":2: kind: expected", id="kind"),
        pytest.param(
            ("autoscaling/v2", "autoscaling/v1"), ":1: apiVersion: expected autoscaling/v2", id="v1"
        ),
        pytest.param(
            ("  maxReplicas: 5\n", "  maxReplicas: 5\n  minReplica: 1\n"),
            ":8: spec.minReplica: unknown field",
            id="typo",
        ),
        pytest.param(
            (
                "  maxReplicas: 5\n",
                "  maxReplicas: 5\n  behavior:\n    scaleUp:\n      stabilizationWindowSeconds: 3601\n",
            ),
            ":10: spec.behavior.scaleUp.stabilizationWindowSeconds: must be less than or equal to 3600",
            id="window",
        ),
        pytest.param(
            (
                "  maxReplicas: 5\n",
                "  maxReplicas: 5\n  behavior:\n    scaleDown:\n      policies:\n"
                "      - {type: Pods, value: 1, periodSeconds: 1801}\n",
            ),
            ":11: spec.behavior.scaleDown.policies[0].periodSeconds: must be less than or equal to 1800",
            id="period",
        ),
        pytest.param(
            ("  maxReplicas: 5\n", "  maxReplicas: 5\n  behavior:\n    scaleDown:\n      policies: []\n"),
            "spec.behavior.scaleDown.policies: must specify at least one Policy",
            id="no-policies",
        ),
        pytest.param(
            (
                "  maxReplicas: 5\n",
                "  maxReplicas: 5\n  behavior:\n    scaleUp:\n      selectPolicy: Fastest\n",
            ),
            ':10: spec.behavior.scaleUp.selectPolicy: supported values: "Disabled", "Max", "Min"',
            id="select",
        ),
        pytest.param(
            ("  maxReplicas: 5\n", "  maxReplicas: 5\n  behavior:\n    scaleUp:\n      tolerance: -0.1\n"),
            "spec.behavior.scaleUp.tolerance: must be greater than or equal to 0",
            id="tolerance",
        ),
        pytest.param(
            (
                "  maxReplicas: 5\n",
                "  maxReplicas: 5\n  metrics:\n  - type: Pods\n    pods:\n      metric: {name: gpu}\n"
                "      target: {type: Utilization, averageUtilization: 50}\n",
            ),
            "spec.metrics[0].pods.target: averageValue: must specify a positive target averageValue",
            id="pods-utilization",
        ),
        pytest.param(
            (
                "  maxReplicas: 5\n",
                "  maxReplicas: 5\n  metrics:\n  - type: External\n    external:\n      metric: {name: q}\n"
                "      target: {type: Value, value: 1, averageValue: 2}\n",
            ),
            "value: may not set both a target value for metric and a per-pod target",
            id="external-both",
        ),
        pytest.param(
            (
                "  maxReplicas: 5\n",
                "  maxReplicas: 5\n  metrics:\n  - type: Pods\n    resource: {name: cpu}\n    pods:\n"
                "      metric: {name: a/b}\n      target: {type: AverageValue, averageValue: 1}\n",
            ),
            "spec.metrics[0]: resource: must populate the given metric source only",
            id="two-sources",
        ),
        pytest.param(("maxReplicas: 5", "maxReplicas: [5"), "invalid YAML", id="syntax"),
    ],
)
def test_errors_name_the_field_and_line(change: tuple[str, str], expected: str) -> None:
    old, new = change
    assert old in MINIMAL
    with pytest.raises(HpaSpecError) as caught:
        parse_hpa(MINIMAL.replace(old, new), "hpa.yaml")
    assert str(caught.value).startswith("hpa.yaml")
    assert expected in str(caught.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(HpaSpecError, match="cannot read"):
        load_hpa(tmp_path / "absent.yaml")


def test_picks_the_hpa_out_of_a_multi_document_file() -> None:
    text = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n---\n" + MINIMAL
    assert parse_hpa(text).name == "web"


# --- never anything but HpaSpecError ----------------------------------------------------------------------

WORDS = [
    "Pods",
    "Object",
    "External",
    "Resource",
    "ContainerResource",
    "AverageValue",
    "Value",
    "Utilization",
    "Max",
    "Min",
    "Disabled",
    "Percent",
    "1.5k",
    "500m",
    "2Gi",
    "1e400",
    "-1",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(WORDS),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
BASE: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())


def _paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix]
    if isinstance(document, dict):
        for key, value in document.items():
            paths += _paths(value, (*prefix, key))
    elif isinstance(document, list):
        for i, value in enumerate(document):
            paths += _paths(value, (*prefix, i))
    return paths


PATHS = _paths(BASE)[1:]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_arbitrary_text_fails_only_with_spec_errors(text: str) -> None:
    with contextlib.suppress(HpaSpecError):
        parse_hpa(text)


@settings(max_examples=300, deadline=None)
@given(values)
def test_arbitrary_documents_fail_only_with_spec_errors(document: Any) -> None:
    with contextlib.suppress(HpaSpecError):
        parse_hpa(yaml.safe_dump(document))
    with contextlib.suppress(HpaSpecError):
        hpa_from_node(Node(document, "", None, "<doc>", HpaSpecError))


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(PATHS), values)
def test_mutated_example_fails_only_with_spec_errors(path: tuple[Any, ...], replacement: Any) -> None:
    """Replace one field of the valid example with anything: parse or an ``HpaSpecError``, nothing else."""
    document = copy.deepcopy(BASE)
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = replacement
    with contextlib.suppress(HpaSpecError):
        parse_hpa(yaml.safe_dump(document))


@pytest.mark.parametrize(
    ("text", "milli"),
    [
        ("60", 60_000),
        ("500m", 500),
        ("1.5k", 1_500_000),
        ("2Ki", 2_048_000),
        ("1e3", 1_000_000),
        ("0.0001", 1),
        ("-0.0001", 0),
        ("100n", 1),
    ],
)
def test_quantities_as_the_controller_reads_them(text: str, milli: int) -> None:
    """``Quantity.MilliValue()`` rounds up: a tenth of a milli is one milli."""
    assert parse_milli(text) == milli
    assert parse_milli(format_milli(milli)) == milli


@pytest.mark.parametrize("text", ["", "abc", "1.2.3", "5 m", "1Xi", "1e999"])
def test_bad_quantities(text: str) -> None:
    with pytest.raises(QuantityError):
        parse_milli(text)

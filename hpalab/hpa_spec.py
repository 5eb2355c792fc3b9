"""``autoscaling/v2`` HorizontalPodAutoscaler documents parsed into frozen values, with upstream defaults.

Validation follows kubernetes ``pkg/apis/autoscaling/validation/validation.go``
(``validateHorizontalPodAutoscalerSpec``, ``validateMetricSpec``, ``validateMetricTarget``,
``validateScalingRules``, ``validateScalingPolicy``); defaults follow ``pkg/apis/autoscaling/v2/defaults.go``
(``SetDefaults_HorizontalPodAutoscaler``, ``GenerateHPAScaleUpRules``, ``GenerateHPAScaleDownRules``):
``minReplicas`` 1, a CPU 80 % utilization metric when none is given, and, only when ``behavior`` is
present, scale-up rules of 0 s stabilization with ``Max`` of 4 pods or 100 % per 15 s and scale-down
rules of ``Max`` of 100 % per 15 s. The scale-down window is left unset there and filled by the
controller from ``--horizontal-pod-autoscaler-downscale-stabilization`` (300 s).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from hpalab.quantity import QuantityError, milli_value, parse_quantity
from kgm_common.yamlsource import Node, SourceError, load_documents

MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_WINDOW_SECONDS = 3600
DEFAULT_CPU_UTILIZATION = 80


class HpaSpecError(SourceError):
    """An HPA document that the API server would reject or that cannot be read; names field and line."""


class SourceType(enum.StrEnum):
    """``MetricSourceType``."""

    OBJECT = "Object"
    PODS = "Pods"
    RESOURCE = "Resource"
    CONTAINER_RESOURCE = "ContainerResource"
    EXTERNAL = "External"


class TargetType(enum.StrEnum):
    """``MetricTargetType``."""

    UTILIZATION = "Utilization"
    VALUE = "Value"
    AVERAGE_VALUE = "AverageValue"


class PolicyType(enum.StrEnum):
    """``HPAScalingPolicyType``."""

    PODS = "Pods"
    PERCENT = "Percent"


class SelectPolicy(enum.StrEnum):
    """``ScalingPolicySelect``."""

    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


@dataclass(frozen=True)
class Requirement:
    """One ``matchExpressions`` entry."""

    key: str
    operator: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelSelector:
    """``metav1.LabelSelector``."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[Requirement, ...] = ()

    def query(self) -> str:
        """The selector as ``labelSelector`` query text (``LabelSelectorAsSelector(...).String()``)."""
        parts = [f"{key}={value}" for key, value in sorted(self.match_labels)]
        for requirement in self.match_expressions:
            op = requirement.operator
            if op == "Exists":
                parts.append(requirement.key)
            elif op == "DoesNotExist":
                parts.append(f"!{requirement.key}")
            else:
                word = "in" if op == "In" else "notin"
                parts.append(f"{requirement.key} {word} ({','.join(sorted(requirement.values))})")
        return ",".join(parts)


@dataclass(frozen=True)
class ObjectReference:
    """``CrossVersionObjectReference``."""

    kind: str
    name: str
    api_version: str = ""


@dataclass(frozen=True)
class MetricTarget:
    """``MetricTarget``; quantities are milli-values, as the controller compares them."""

    type: TargetType
    value: int | None = None
    average_value: int | None = None
    average_utilization: int | None = None


@dataclass(frozen=True)
class MetricSpec:
    """One entry of ``spec.metrics``; ``name`` is the metric name, or the resource name for Resource types."""

    type: SourceType
    name: str
    target: MetricTarget
    selector: LabelSelector | None = None
    described_object: ObjectReference | None = None
    container: str | None = None

    @property
    def label(self) -> str:
        """A short column-friendly name: the metric name (``cpu`` for the CPU resource)."""
        return self.name


@dataclass(frozen=True)
class ScalingPolicy:
    """``HPAScalingPolicy``."""

    type: PolicyType
    value: int
    period_seconds: int


@dataclass(frozen=True)
class ScalingRules:
    """``HPAScalingRules`` after defaulting; the scale-down stabilization window may stay unset."""

    select_policy: SelectPolicy
    policies: tuple[ScalingPolicy, ...]
    stabilization_window_seconds: int | None
    tolerance: float | None = None


DEFAULT_SCALE_UP_RULES = ScalingRules(
    select_policy=SelectPolicy.MAX,
    policies=(ScalingPolicy(PolicyType.PODS, 4, 15), ScalingPolicy(PolicyType.PERCENT, 100, 15)),
    stabilization_window_seconds=0,
)
DEFAULT_SCALE_DOWN_RULES = ScalingRules(
    select_policy=SelectPolicy.MAX,
    policies=(ScalingPolicy(PolicyType.PERCENT, 100, 15),),
    stabilization_window_seconds=None,
)


@dataclass(frozen=True)
class Behavior:
    """``HorizontalPodAutoscalerBehavior`` with both directions defaulted."""

    scale_up: ScalingRules = DEFAULT_SCALE_UP_RULES
    scale_down: ScalingRules = DEFAULT_SCALE_DOWN_RULES


@dataclass(frozen=True)
class HorizontalPodAutoscaler:
    """An ``autoscaling/v2`` HPA after API defaulting."""

    name: str
    namespace: str
    scale_target_ref: ObjectReference
    min_replicas: int
    max_replicas: int
    metrics: tuple[MetricSpec, ...]
    behavior: Behavior | None = None


def _path_segment(node: Node) -> str:
    """``IsValidPathSegmentName``: metric and object names end up in URL paths."""
    text = node.string()
    if text in (".", "..") or "/" in text or "%" in text:
        raise node.error(f"{text!r} may not be '.' or '..' and may not contain '/' or '%'")
    return text


def _quantity(node: Node) -> int:
    raw = node.value
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise node.error(f"expected a quantity such as 60, 500m or 1.5k, got {type(raw).__name__}")
    try:
        exact = Decimal(raw) if isinstance(raw, int) else parse_quantity(str(raw))
        milli = milli_value(exact)
    except QuantityError as exc:
        raise node.error(str(exc)) from None
    if exact <= 0:
        raise node.error(f"must be positive, got {raw}")
    return milli


def _tolerance(node: Node) -> float:
    raw = node.value
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise node.error(f"expected a quantity such as 0.05, got {type(raw).__name__}")
    try:
        exact = Decimal(raw) if isinstance(raw, int) else parse_quantity(str(raw))
    except QuantityError as exc:
        raise node.error(str(exc)) from None
    if exact < 0:
        raise node.error(f"must be greater than or equal to 0, got {raw}")
    return float(exact)


def _selector(node: Node | None) -> LabelSelector | None:
    if node is None:
        return None
    node.only("matchLabels", "matchExpressions")
    labels: list[tuple[str, str]] = []
    labels_node = node.get("matchLabels")
    if labels_node is not None:
        for key, value in labels_node.mapping().items():
            plain = isinstance(value, str | int | float) and not isinstance(value, bool)
            if not isinstance(key, str) or not plain:
                raise labels_node.error(f"matchLabels entries must be strings, got {key!r}: {value!r}")
            labels.append((key, str(value)))
    expressions: list[Requirement] = []
    expressions_node = node.get("matchExpressions")
    for item in expressions_node.items() if expressions_node is not None else ():
        item.only("key", "operator", "values")
        operator = item.require("operator").string()
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            raise item.error(f"operator {operator!r} is not one of In, NotIn, Exists, DoesNotExist")
        values_node = item.get("values")
        values = tuple(v.string() for v in values_node.items()) if values_node is not None else ()
        if operator in ("In", "NotIn") and not values:
            raise item.error(f"operator {operator} needs values")
        if operator in ("Exists", "DoesNotExist") and values:
            raise item.error(f"operator {operator} takes no values")
        expressions.append(Requirement(item.require("key").string(), operator, values))
    return LabelSelector(tuple(labels), tuple(expressions))


def _target(node: Node, source: SourceType) -> MetricTarget:
    node.only("type", "value", "averageValue", "averageUtilization")
    type_node = node.require("type")
    try:
        target_type = TargetType(type_node.string())
    except ValueError:
        raise type_node.error("must be either Utilization, Value, or AverageValue") from None
    value = node.get("value")
    average_value = node.get("averageValue")
    utilization = node.get("averageUtilization")
    target = MetricTarget(
        target_type,
        value=_quantity(value) if value is not None else None,
        average_value=_quantity(average_value) if average_value is not None else None,
        average_utilization=utilization.integer(minimum=1) if utilization is not None else None,
    )
    if source is SourceType.PODS and target.average_value is None:
        raise node.error("averageValue: must specify a positive target averageValue")
    if source is SourceType.OBJECT and target.value is None and target.average_value is None:
        raise node.error("averageValue: must set either a target value or averageValue")
    if source is SourceType.EXTERNAL:
        if target.value is None and target.average_value is None:
            raise node.error("averageValue: must set either a target value for metric or a per-pod target")
        if target.value is not None and target.average_value is not None:
            raise node.error("value: may not set both a target value for metric and a per-pod target")
    if source in (SourceType.RESOURCE, SourceType.CONTAINER_RESOURCE):
        if target.average_utilization is None and target.average_value is None:
            raise node.error("averageUtilization: must set either a target raw value or a target utilization")
        if target.average_utilization is not None and target.average_value is not None:
            raise node.error("averageValue: may not set both a target raw value and a target utilization")
    return target


def _identifier(node: Node) -> tuple[str, LabelSelector | None]:
    node.only("name", "selector")
    return _path_segment(node.require("name")), _selector(node.get("selector"))


_SOURCE_FIELDS = {
    SourceType.OBJECT: "object",
    SourceType.PODS: "pods",
    SourceType.RESOURCE: "resource",
    SourceType.CONTAINER_RESOURCE: "containerResource",
    SourceType.EXTERNAL: "external",
}


def _metric(node: Node) -> MetricSpec:
    node.only("type", *_SOURCE_FIELDS.values())
    type_node = node.require("type")
    try:
        source = SourceType(type_node.string())
    except ValueError:
        known = ", ".join(t.value for t in SourceType)
        raise type_node.error(f"unsupported metric source type (known: {known})") from None
    field = _SOURCE_FIELDS[source]
    for other in _SOURCE_FIELDS.values():
        if other != field and node.get(other) is not None:
            raise node.error(f"{other}: must populate the given metric source only")
    body = node.require(field)
    if source is SourceType.OBJECT:
        body.only("describedObject", "metric", "target")
        described = _reference(body.require("describedObject"))
        name, selector = _identifier(body.require("metric"))
        return MetricSpec(source, name, _target(body.require("target"), source), selector, described)
    if source in (SourceType.PODS, SourceType.EXTERNAL):
        body.only("metric", "target")
        name, selector = _identifier(body.require("metric"))
        return MetricSpec(source, name, _target(body.require("target"), source), selector)
    container_resource = source is SourceType.CONTAINER_RESOURCE
    body.only(*(("name", "target", "container") if container_resource else ("name", "target")))
    container = body.require("container").string() if container_resource else None
    return MetricSpec(
        source, body.require("name").string(), _target(body.require("target"), source), container=container
    )


def _reference(node: Node) -> ObjectReference:
    node.only("apiVersion", "kind", "name")
    api_version = node.get("apiVersion")
    return ObjectReference(
        kind=_path_segment(node.require("kind")),
        name=_path_segment(node.require("name")),
        api_version=api_version.string() if api_version is not None else "",
    )


def _policy(node: Node) -> ScalingPolicy:
    node.only("type", "value", "periodSeconds")
    type_node = node.require("type")
    try:
        policy_type = PolicyType(type_node.string())
    except ValueError:
        raise type_node.error('supported values: "Percent", "Pods"') from None
    return ScalingPolicy(
        policy_type,
        node.require("value").integer(minimum=1, maximum=2**31 - 1),
        node.require("periodSeconds").integer(minimum=1, maximum=MAX_PERIOD_SECONDS),
    )


def _rules(node: Node | None, defaults: ScalingRules) -> ScalingRules:
    if node is None:
        return defaults
    node.only("stabilizationWindowSeconds", "selectPolicy", "policies", "tolerance")
    window = node.get("stabilizationWindowSeconds")
    select = node.get("selectPolicy")
    policies = node.get("policies")
    tolerance = node.get("tolerance")
    select_policy = defaults.select_policy
    if select is not None:
        try:
            select_policy = SelectPolicy(select.string())
        except ValueError:
            raise select.error('supported values: "Disabled", "Max", "Min"') from None
    if policies is not None:
        parsed = tuple(_policy(item) for item in policies.items())
        if not parsed:
            raise policies.error("must specify at least one Policy")
    else:
        parsed = defaults.policies
    return ScalingRules(
        select_policy=select_policy,
        policies=parsed,
        stabilization_window_seconds=(
            window.integer(minimum=0, maximum=MAX_STABILIZATION_WINDOW_SECONDS)
            if window is not None
            else defaults.stabilization_window_seconds
        ),
        tolerance=_tolerance(tolerance) if tolerance is not None else None,
    )


def _behavior(node: Node | None) -> Behavior | None:
    if node is None:
        return None
    node.only("scaleUp", "scaleDown")
    return Behavior(
        scale_up=_rules(node.get("scaleUp"), DEFAULT_SCALE_UP_RULES),
        scale_down=_rules(node.get("scaleDown"), DEFAULT_SCALE_DOWN_RULES),
    )


def hpa_from_node(root: Node) -> HorizontalPodAutoscaler:
    """Validate and default one HPA document already loaded into a ``Node``."""
    api_version = root.require("apiVersion").string()
    if api_version != "autoscaling/v2":
        raise root.require("apiVersion").error(f"expected autoscaling/v2, got {api_version!r}")
    kind = root.require("kind").string()
    if kind != "HorizontalPodAutoscaler":
        raise root.require("kind").error(f"expected HorizontalPodAutoscaler, got {kind!r}")
    metadata = root.require("metadata")
    namespace_node = metadata.get("namespace")
    spec = root.require("spec")
    spec.only("scaleTargetRef", "minReplicas", "maxReplicas", "metrics", "behavior")
    min_node = spec.get("minReplicas")
    min_replicas = min_node.integer(minimum=1) if min_node is not None else 1
    max_node = spec.require("maxReplicas")
    max_replicas = max_node.integer(minimum=1, maximum=2**31 - 1)
    if max_replicas < min_replicas:
        raise max_node.error(f"must be greater than or equal to `minReplicas` ({min_replicas})")
    metrics_node = spec.get("metrics")
    metrics = tuple(_metric(item) for item in metrics_node.items()) if metrics_node is not None else ()
    if not metrics:
        metrics = (
            MetricSpec(
                SourceType.RESOURCE,
                "cpu",
                MetricTarget(TargetType.UTILIZATION, average_utilization=DEFAULT_CPU_UTILIZATION),
            ),
        )
    return HorizontalPodAutoscaler(
        name=_path_segment(metadata.require("name")),
        namespace=_path_segment(namespace_node) if namespace_node is not None else "default",
        scale_target_ref=_reference(spec.require("scaleTargetRef")),
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        metrics=metrics,
        behavior=_behavior(spec.get("behavior")),
    )


def parse_hpa(text: str, source: str = "<hpa>") -> HorizontalPodAutoscaler:
    """The first HorizontalPodAutoscaler in a YAML stream; raises ``HpaSpecError`` naming field and line."""
    try:
        documents = [d for d in load_documents(text, source) if d is not None]
    except SourceError as exc:
        raise HpaSpecError(str(exc)) from None
    chosen = [d for d in documents if isinstance(d, dict) and d.get("kind") == "HorizontalPodAutoscaler"]
    if not chosen and len(documents) == 1:
        chosen = documents
    if chosen:
        document = chosen[0]
        return hpa_from_node(Node(document, "", getattr(document, "line", None), source, HpaSpecError))
    raise HpaSpecError(f"{source}: no HorizontalPodAutoscaler document found")


def load_hpa(path: Path) -> HorizontalPodAutoscaler:
    """Read and parse an HPA YAML file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HpaSpecError(f"{path}: cannot read: {exc}") from None
    return parse_hpa(text, str(path))

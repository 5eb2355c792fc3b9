"""Metric rules for the ``prometheus`` backend: the built-in rulesets and the ``--config`` YAML file.

A rule turns a metric name an HPA asks for into PromQL. Queries are templates with two
placeholders: ``<<matchers>>`` (inside a selector's braces; the backend puts the label matchers for
the asked objects and selectors there, every value escaped) and ``<<window>>`` (the rule's window,
reported as ``windowSeconds``). The file is checked when the adapter starts; a bad rule stops it
with an error that names the file and line and quotes the rule::

    ruleset: default          # built-in rules to start from: default | dcgm | none
    metrics:                  # custom.metrics.k8s.io; a name already in the ruleset replaces that rule
      - name: gpu_power_watts
        seriesQuery: gpu_power_watts      # served while Prometheus has such series (optional)
        window: 2m                        # default 1m
        aggregate: sum                    # workloads: mean (default) or sum of their pods' values
        labels: {namespace: namespace, pod: pod, node: node}   # result labels naming the objects
        resources:
          pods: sum by (namespace, pod) (avg_over_time(gpu_power_watts{pod!="", <<matchers>>}[<<window>>]))
    external:                 # external.metrics.k8s.io
      - name: queue_depth
        query: sum by (queue) (my_queue_depth{<<matchers>>})
        namespaced: false      # default true: the request's namespace becomes a matcher
        namespaceLabel: namespace
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from adapter.backends.promql import LABEL_NAME

RESOURCES = ("pods", "nodes", "namespaces")
AGGREGATIONS = ("mean", "sum")
RULESETS = ("default", "dcgm", "none")
MATCHERS = "<<matchers>>"
WINDOW = "<<window>>"
_PLACEHOLDER = re.compile(r"<<([^<>]*)>>")
_DURATION = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_METRIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,252}")
_CLOSING = {")": "(", "]": "[", "}": "{"}


class RuleError(ValueError):
    """A rule that cannot be used; the message names where it is and quotes it."""


@dataclass(frozen=True)
class ObjectLabels:
    """The result labels that name the objects: a pod is (namespace, pod), a node its node label."""

    namespace: str = "namespace"
    pod: str = "pod"
    node: str = "node"


@dataclass(frozen=True)
class MetricRule:
    """A custom metric: one query template per resource it is served for."""

    name: str
    queries: Mapping[str, str]
    series: str = ""
    window_seconds: int = 60
    aggregate: str = "mean"
    labels: ObjectLabels = field(default_factory=ObjectLabels)
    origin: str = "built-in"

    @property
    def resources(self) -> frozenset[str]:
        return frozenset(self.queries)


@dataclass(frozen=True)
class ExternalRule:
    """An external metric: one query template; each series of its result is one value."""

    name: str
    query: str
    series: str = ""
    window_seconds: int = 60
    namespaced: bool = True
    namespace_label: str = "namespace"
    origin: str = "built-in"


@dataclass(frozen=True)
class RuleSet:
    """The rules the backend serves."""

    metrics: tuple[MetricRule, ...] = ()
    external: tuple[ExternalRule, ...] = ()

    def metric(self, name: str) -> MetricRule | None:
        return next((rule for rule in self.metrics if rule.name == name), None)

    def external_metric(self, name: str) -> ExternalRule | None:
        return next((rule for rule in self.external if rule.name == name), None)


def render(template: str, matchers: str, window_seconds: int) -> str:
    """The query with its placeholders filled in."""
    return template.replace(MATCHERS, matchers).replace(WINDOW, f"{window_seconds}s")


def check_template(template: str) -> str | None:
    """Why ``template`` cannot be used, or ``None``: brackets must balance outside string literals,
    ``<<matchers>>`` must appear and only inside a selector's braces, and no other placeholder."""
    unknown = sorted({m for m in _PLACEHOLDER.findall(template) if f"<<{m}>>" not in (MATCHERS, WINDOW)})
    if unknown:
        return f"unknown placeholder <<{unknown[0]}>> (known: {MATCHERS}, {WINDOW})"
    if MATCHERS not in template:
        return f"the query has no {MATCHERS} placeholder, so it cannot select the objects asked for"
    return _bracket_problem(template)


def _bracket_problem(template: str) -> str | None:
    stack: list[str] = []
    quote = ""
    escaped = False
    for i, char in enumerate(template):
        if quote:
            if template.startswith(MATCHERS, i):
                return f"{MATCHERS} at character {i + 1} is inside a string literal"
            if escaped:
                escaped = False
            elif char == "\\" and quote != "`":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            stack.append(char)
        elif char in _CLOSING:
            if not stack or stack.pop() != _CLOSING[char]:
                return f"unbalanced {char!r} at character {i + 1}"
        elif template.startswith(MATCHERS, i) and (not stack or stack[-1] != "{"):
            return f"{MATCHERS} at character {i + 1} is not inside a selector's braces {{...}}"
    if quote:
        return "unterminated string literal"
    return f"unclosed {stack[-1]!r}" if stack else None


def parse_duration(text: str) -> int | None:
    """Seconds in a Prometheus-style duration (``90s``, ``2m``, ``1h30m``), or ``None``."""
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        return None
    hours, minutes, seconds = (int(group or 0) for group in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    return total or None


# Built-in rules. A pod's GPUs are those whose device series carry its namespace/pod labels: the
# exporter (and dcgm-exporter) set them when one container holds the whole GPU.


def _ours() -> RuleSet:
    def over(series: str, selector: str = 'pod!="", ') -> str:
        return f"avg_over_time({series}{{{selector}{MATCHERS}}}[{WINDOW}])"

    def node_join(series: str) -> str:
        return (
            f"avg_over_time({series}[{WINDOW}]) * on (instance, uuid) group_left (node) "
            f"max by (instance, uuid, node) (gpu_info{{{MATCHERS}}})"
        )

    pod_used = f"sum by (namespace, pod) ({over('gpu_memory_used_bytes')})"
    pod_total = f"sum by (namespace, pod) ({over('gpu_memory_total_bytes')})"
    pod_util = f"avg by (namespace, pod) ({over('gpu_utilization_ratio')})"
    metrics = (
        MetricRule(
            "gpu_utilization",
            {
                "pods": f"100 * {pod_util}",
                "nodes": f"100 * avg by (node) ({node_join('gpu_utilization_ratio')})",
                "namespaces": f"100 * avg by (namespace) ({pod_util})",
            },
            series="gpu_utilization_ratio",
        ),
        MetricRule(
            "gpu_memory_used_bytes",
            {
                "pods": pod_used,
                "nodes": f"sum by (node) ({node_join('gpu_memory_used_bytes')})",
                "namespaces": f"sum by (namespace) ({over('gpu_memory_used_bytes')})",
            },
            series="gpu_memory_used_bytes",
            aggregate="sum",
        ),
        MetricRule(
            "gpu_memory_utilization",
            {
                "pods": f"100 * {pod_used} / {pod_total}",
                "nodes": (
                    f"100 * sum by (node) ({node_join('gpu_memory_used_bytes')}) "
                    f"/ sum by (node) ({node_join('gpu_memory_total_bytes')})"
                ),
                "namespaces": f"avg by (namespace) (100 * {pod_used} / {pod_total})",
            },
            series="gpu_memory_total_bytes",
        ),
    )
    external = (
        ExternalRule(
            "namespace_gpu_utilization",
            f"100 * avg by (namespace) ({over('gpu_utilization_ratio')})",
            series="gpu_utilization_ratio",
        ),
        ExternalRule(
            "namespace_gpu_utilization_total",
            f"100 * sum by (namespace) ({over('gpu_utilization_ratio')})",
            series="gpu_utilization_ratio",
        ),
        ExternalRule(
            "namespace_gpu_memory_used_bytes",
            f"sum by (namespace) ({over('gpu_memory_used_bytes')})",
            series="gpu_memory_used_bytes",
        ),
        ExternalRule(
            "cluster_gpu_utilization",
            f"100 * avg({over('gpu_utilization_ratio', '')})",
            series="gpu_utilization_ratio",
            namespaced=False,
        ),
    )
    return RuleSet(metrics, external)


def _dcgm() -> RuleSet:
    """The same metrics over dcgm-exporter's series: percent, MiB, and ``Hostname`` naming the node."""

    def over(series: str, selector: str = 'pod!="", ') -> str:
        return f"avg_over_time({series}{{{selector}{MATCHERS}}}[{WINDOW}])"

    mib = 1024 * 1024
    pod_util = f"avg by (namespace, pod) ({over('DCGM_FI_DEV_GPU_UTIL')})"
    pod_used = f"sum by (namespace, pod) ({over('DCGM_FI_DEV_FB_USED')})"
    pod_total = f"sum by (namespace, pod) ({over('DCGM_FI_DEV_FB_USED')} + {over('DCGM_FI_DEV_FB_FREE')})"
    node_used = f"sum by (Hostname) ({over('DCGM_FI_DEV_FB_USED', '')})"
    node_total = f"sum by (Hostname) ({over('DCGM_FI_DEV_FB_USED', '')} + {over('DCGM_FI_DEV_FB_FREE', '')})"
    labels = ObjectLabels(node="Hostname")
    metrics = (
        MetricRule(
            "gpu_utilization",
            {
                "pods": pod_util,
                "nodes": f"avg by (Hostname) ({over('DCGM_FI_DEV_GPU_UTIL', '')})",
                "namespaces": f"avg by (namespace) ({pod_util})",
            },
            series="DCGM_FI_DEV_GPU_UTIL",
            labels=labels,
        ),
        MetricRule(
            "gpu_memory_used_bytes",
            {
                "pods": f"{mib} * {pod_used}",
                "nodes": f"{mib} * {node_used}",
                "namespaces": f"{mib} * sum by (namespace) ({over('DCGM_FI_DEV_FB_USED')})",
            },
            series="DCGM_FI_DEV_FB_USED",
            aggregate="sum",
            labels=labels,
        ),
        MetricRule(
            "gpu_memory_utilization",
            {
                "pods": f"100 * {pod_used} / {pod_total}",
                "nodes": f"100 * {node_used} / {node_total}",
                "namespaces": f"avg by (namespace) (100 * {pod_used} / {pod_total})",
            },
            series="DCGM_FI_DEV_FB_FREE",
            labels=labels,
        ),
    )
    external = (
        ExternalRule(
            "namespace_gpu_utilization",
            f"avg by (namespace) ({over('DCGM_FI_DEV_GPU_UTIL')})",
            series="DCGM_FI_DEV_GPU_UTIL",
        ),
        ExternalRule(
            "namespace_gpu_utilization_total",
            f"sum by (namespace) ({over('DCGM_FI_DEV_GPU_UTIL')})",
            series="DCGM_FI_DEV_GPU_UTIL",
        ),
        ExternalRule(
            "namespace_gpu_memory_used_bytes",
            f"{mib} * sum by (namespace) ({over('DCGM_FI_DEV_FB_USED')})",
            series="DCGM_FI_DEV_FB_USED",
        ),
        ExternalRule(
            "cluster_gpu_utilization",
            f"avg({over('DCGM_FI_DEV_GPU_UTIL', '')})",
            series="DCGM_FI_DEV_GPU_UTIL",
            namespaced=False,
        ),
    )
    return RuleSet(metrics, external)


def builtin(name: str) -> RuleSet:
    """A built-in ruleset: ``default`` (kube-gpu-exporter's series), ``dcgm`` (dcgm-exporter's), ``none``."""
    if name == "default":
        return _ours()
    if name == "dcgm":
        return _dcgm()
    if name == "none":
        return RuleSet()
    raise ValueError(f"unknown ruleset {name!r} (known: {', '.join(RULESETS)})")


# The rules file.


@dataclass(frozen=True)
class _Place:
    """Where a rule is in the file, for messages."""

    path: str
    line: int
    text: str

    def error(self, what: str, problem: str) -> RuleError:
        quoted = "\n".join(f"    {line}" for line in self.text.rstrip().splitlines())
        return RuleError(f"{self.path}:{self.line}: {what}: {problem}\n{quoted}")


def _place(path: str, lines: Sequence[str], node: yaml.Node) -> _Place:
    start, end = node.start_mark, node.end_mark
    # A block mapping ends where the next item starts; only text before that column is the rule's.
    ends_inside = end.line < len(lines) and lines[end.line][: end.column].strip("- \t")
    stop = max(end.line + (1 if ends_inside else 0), start.line + 1)
    text = "\n".join(lines[start.line : stop]).rstrip()
    return _Place(path, start.line + 1, text)


def _expect(place: _Place, what: str, value: Any, kind: type, key: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise place.error(what, f"{key} must be a {kind.__name__}, got {value!r}")
    return value


def _keys(place: _Place, what: str, item: Mapping[str, Any], allowed: set[str], required: set[str]) -> None:
    unknown = sorted(set(item) - allowed)
    if unknown:
        raise place.error(what, f"unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})")
    missing = sorted(required - set(item))
    if missing:
        raise place.error(what, f"missing {missing[0]!r}")


def _common(
    place: _Place, section: str, index: int, item: Any, *, keys: set[str], required: set[str]
) -> tuple[str, str, str, int]:
    """What every rule checks: a mapping of known keys, its name, seriesQuery and window.

    Returns how errors name the rule from here on, then its name, series query and window.
    """
    what = f"{section}[{index}]"
    _expect(place, what, item, dict, "a rule")
    _keys(place, what, item, {"name", "seriesQuery", "window", *keys}, {"name", *required})
    name = _expect(place, what, item["name"], str, "name")
    if not _METRIC_NAME.fullmatch(name):
        raise place.error(what, f"name {name!r} must be letters, digits, '_', '.', ':' or '-'")
    series = _expect(place, what, item.get("seriesQuery", ""), str, "seriesQuery")
    window_text = _expect(place, what, item.get("window", "1m"), str, "window")
    window = parse_duration(window_text)
    if window is None:
        raise place.error(what, f"window {window_text!r} is not a duration such as 30s, 2m or 1h")
    return f"{what} ({name})", name, series, window


def _template(place: _Place, what: str, key: str, value: Any) -> str:
    template = _expect(place, what, value, str, key).strip()
    problem = check_template(template)
    if problem:
        raise place.error(what, f"{key}: {problem}")
    return str(template)


def _metric_rule(place: _Place, item: Any, index: int) -> MetricRule:
    what, name, series, window = _common(
        place, "metrics", index, item, keys={"aggregate", "labels", "resources"}, required={"resources"}
    )
    aggregate = _expect(place, what, item.get("aggregate", "mean"), str, "aggregate")
    if aggregate not in AGGREGATIONS:
        raise place.error(what, f"aggregate must be one of {', '.join(AGGREGATIONS)}, got {aggregate!r}")
    labels_item = _expect(place, what, item.get("labels", {}), dict, "labels")
    _keys(place, what, labels_item, {"namespace", "pod", "node"}, set())
    for key, label in labels_item.items():
        if not isinstance(label, str) or not LABEL_NAME.fullmatch(label):
            raise place.error(what, f"labels.{key} must be a Prometheus label name, got {label!r}")
    resources = _expect(place, what, item["resources"], dict, "resources")
    if not resources:
        raise place.error(what, f"resources must name at least one of {', '.join(RESOURCES)}")
    queries = {}
    for resource, template in resources.items():
        if resource not in RESOURCES:
            raise place.error(what, f"unknown resource {resource!r} (known: {', '.join(RESOURCES)})")
        queries[resource] = _template(place, what, f"resources.{resource}", template)
    return MetricRule(
        name,
        queries,
        series=series,
        window_seconds=window,
        aggregate=aggregate,
        labels=replace(ObjectLabels(), **labels_item),
        origin=f"{place.path}:{place.line}",
    )


def _external_rule(place: _Place, item: Any, index: int) -> ExternalRule:
    what, name, series, window = _common(
        place, "external", index, item, keys={"query", "namespaced", "namespaceLabel"}, required={"query"}
    )
    namespaced = _expect(place, what, item.get("namespaced", True), bool, "namespaced")
    namespace_label = _expect(place, what, item.get("namespaceLabel", "namespace"), str, "namespaceLabel")
    if not LABEL_NAME.fullmatch(namespace_label):
        raise place.error(what, f"namespaceLabel must be a Prometheus label name, got {namespace_label!r}")
    return ExternalRule(
        name,
        _template(place, what, "query", item["query"]),
        series=series,
        window_seconds=window,
        namespaced=namespaced,
        namespace_label=namespace_label,
        origin=f"{place.path}:{place.line}",
    )


def _merge(base: Sequence[Any], extra: Sequence[Any]) -> tuple[Any, ...]:
    names = {rule.name for rule in extra}
    return (*(rule for rule in base if rule.name not in names), *extra)


def parse_rules(text: str, path: str = "<rules>") -> RuleSet:
    """Parse and check a rules file; raises ``RuleError`` naming the line and quoting the bad rule."""
    lines = text.splitlines()
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise RuleError(f"{where}: not valid YAML: {exc}") from None
    if data is None:
        data, root = {}, None
    whole = _Place(path, 1, text)
    _expect(whole, "rules file", data, dict, "the top level")
    _keys(whole, "rules file", data, {"ruleset", "metrics", "external"}, set())
    ruleset = _expect(whole, "rules file", data.get("ruleset", "default"), str, "ruleset")
    if ruleset not in RULESETS:
        raise whole.error("rules file", f"ruleset must be one of {', '.join(RULESETS)}, got {ruleset!r}")
    nodes: dict[str, list[yaml.Node]] = {}
    if isinstance(root, yaml.MappingNode):
        for key_node, value_node in root.value:
            if isinstance(value_node, yaml.SequenceNode):
                nodes[key_node.value] = list(value_node.value)
    parsed: dict[str, list[Any]] = {"metrics": [], "external": []}
    for section, build in (("metrics", _metric_rule), ("external", _external_rule)):
        items = _expect(whole, "rules file", data.get(section) or [], list, section)
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            place = _place(path, lines, nodes[section][index])
            rule = build(place, item, index)
            if rule.name in seen:
                raise place.error(
                    f"{section}[{index}] ({rule.name})", f"the name is also {section}[{seen[rule.name]}]"
                )
            seen[rule.name] = index
            parsed[section].append(rule)
    base = builtin(ruleset)
    return RuleSet(_merge(base.metrics, parsed["metrics"]), _merge(base.external, parsed["external"]))


def load_rules(path: Path | None, *, default: str = "default") -> RuleSet:
    """The rules in ``path``, or the ``default`` ruleset when no file is given."""
    if path is None:
        return builtin(default)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(f"{path}: cannot read the rules file: {exc.strerror or exc}") from None
    return parse_rules(text, str(path))

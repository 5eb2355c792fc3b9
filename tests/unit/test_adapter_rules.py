"""Rules for the prometheus backend: built-in rulesets, the rules file, and its error messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapter.rules import (
    ObjectLabels,
    RuleError,
    builtin,
    check_template,
    load_rules,
    parse_duration,
    parse_rules,
    render,
)

DESIGN_METRICS = {"gpu_utilization", "gpu_memory_used_bytes", "gpu_memory_utilization"}


@pytest.mark.parametrize("name", ["default", "dcgm"])
def test_builtin_rulesets_serve_the_design_metrics(name: str) -> None:
    rules = builtin(name)
    assert {rule.name for rule in rules.metrics} == DESIGN_METRICS
    for rule in rules.metrics:
        assert rule.resources == {"pods", "nodes", "namespaces"}
        for query in rule.queries.values():
            assert check_template(query) is None
    for external in rules.external:
        assert check_template(external.query) is None
    assert builtin("none").metrics == ()


def test_dcgm_ruleset_names_nodes_by_hostname_and_reads_dcgm_series() -> None:
    rule = builtin("dcgm").metric("gpu_utilization")
    assert rule is not None
    assert rule.labels == ObjectLabels(node="Hostname")
    assert "DCGM_FI_DEV_GPU_UTIL" in rule.queries["pods"]
    memory = builtin("dcgm").metric("gpu_memory_utilization")
    assert memory is not None
    assert "DCGM_FI_DEV_FB_FREE" in memory.queries["pods"]


def test_render_fills_placeholders() -> None:
    assert render('x{a="1", <<matchers>>}[<<window>>]', 'pod="p"', 90) == 'x{a="1", pod="p"}[90s]'


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("2m", 120), ("1h30m", 5400), ("1h", 3600), ("", None), ("0s", None), ("5q", None)],
)
def test_parse_duration(text: str, seconds: int | None) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("sum(x)", "no <<matchers>>"),
        ("sum(x{<<matchers>>}", "unclosed '('"),
        ("sum(x{<<matchers>>}))", "unbalanced ')'"),
        ("sum(x{<<matchers>>}[<<range>>])", "unknown placeholder <<range>>"),
        ("sum(x) + <<matchers>>", "not inside a selector's braces"),
        ('x{a="<<matchers>>"}', "inside a string literal"),
        ('x{a="}", <<matchers>>', "unclosed '{'"),
        ('x{a="\\"}", <<matchers>>}', None),
        ("x{<<matchers>>} / on (a) y{<<matchers>>}", None),
    ],
)
def test_check_template(template: str, problem: str | None) -> None:
    found = check_template(template)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found


GOOD = """\
ruleset: default
metrics:
  - name: gpu_power_watts
    seriesQuery: gpu_power_watts
    window: 2m
    aggregate: sum
    resources:
      pods: sum by (namespace, pod) (avg_over_time(gpu_power_watts{pod!="", <<matchers>>}[<<window>>]))
  - name: gpu_utilization
    labels: {pod: exported_pod, namespace: exported_namespace}
    resources:
      pods: avg by (exported_namespace, exported_pod) (DCGM_FI_DEV_GPU_UTIL{<<matchers>>})
external:
  - name: queue_depth
    namespaced: false
    query: sum by (queue) (queue_depth{<<matchers>>})
"""


def test_file_adds_and_replaces_rules() -> None:
    rules = parse_rules(GOOD, "rules.yaml")
    names = [rule.name for rule in rules.metrics]
    assert names == ["gpu_memory_used_bytes", "gpu_memory_utilization", "gpu_power_watts", "gpu_utilization"]
    power = rules.metric("gpu_power_watts")
    assert power is not None
    assert (power.window_seconds, power.aggregate, power.series, power.origin) == (
        120,
        "sum",
        "gpu_power_watts",
        "rules.yaml:3",
    )
    utilization = rules.metric("gpu_utilization")
    assert utilization is not None
    assert utilization.labels == ObjectLabels(namespace="exported_namespace", pod="exported_pod")
    assert utilization.resources == {"pods"}
    queue = rules.external_metric("queue_depth")
    assert queue is not None
    assert not queue.namespaced
    assert rules.external_metric("namespace_gpu_utilization") is not None


def test_empty_file_is_the_default_ruleset() -> None:
    assert parse_rules("", "rules.yaml") == builtin("default")
    assert parse_rules("ruleset: dcgm\n", "rules.yaml") == builtin("dcgm")


BAD_RULE = """\
ruleset: none
metrics:
  - name: fine
    resources: {pods: 'x{<<matchers>>}'}

  - name: gpu_power
    resources:
      pods: sum by (namespace, pod) (gpu_power_watts{pod!=""})
  - name: after
    resources: {pods: 'x{<<matchers>>}'}
"""


def test_error_names_the_line_and_quotes_the_rule() -> None:
    with pytest.raises(RuleError) as caught:
        parse_rules(BAD_RULE, "rules.yaml")
    message = str(caught.value)
    first, *quoted = message.splitlines()
    assert first.startswith(
        "rules.yaml:6: metrics[1] (gpu_power): resources.pods: the query has no <<matchers>>"
    )
    assert [line.strip() for line in quoted] == [
        "- name: gpu_power",
        "resources:",
        'pods: sum by (namespace, pod) (gpu_power_watts{pod!=""})',
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics: [\n", "rules.yaml:2: not valid YAML"),
        ("- a\n", "rules.yaml:1: rules file: the top level must be a dict"),
        ("rulesets: default\n", "unknown key 'rulesets'"),
        ("ruleset: prometheus-adapter\n", "ruleset must be one of default, dcgm, none"),
        ("metrics:\n  - name: x\n", "rules.yaml:2: metrics[0]: missing 'resources'"),
        ("metrics:\n  - name: x\n    resources: {}\n", "resources must name at least one"),
        (
            "metrics:\n  - name: x\n    resources: {deployments: 'x{<<matchers>>}'}\n",
            "unknown resource 'deployments'",
        ),
        ("metrics:\n  - name: 'a b'\n    resources: {pods: 'x{<<matchers>>}'}\n", "name 'a b' must be"),
        ("metrics:\n  - name: x\n    window: 5q\n    resources: {pods: 'x{<<matchers>>}'}\n", "window '5q'"),
        (
            "metrics:\n  - name: x\n    aggregate: max\n    resources: {pods: 'x{<<matchers>>}'}\n",
            "aggregate",
        ),
        (
            "metrics:\n  - name: x\n    labels: {pod: 'a-b'}\n    resources: {pods: 'x{<<matchers>>}'}\n",
            "labels.pod",
        ),
        (
            "metrics:\n  - name: x\n    resources: {pods: 'x{<<matchers>>}'}\n"
            "  - name: x\n    resources: {pods: 'x{<<matchers>>}'}\n",
            "rules.yaml:4: metrics[1] (x): the name is also metrics[0]",
        ),
        (
            "external:\n  - name: q\n    query: 'sum(q)'\n",
            "rules.yaml:2: external[0] (q): query: the query has no",
        ),
        (
            "external:\n  - name: q\n    namespaced: 'yes'\n    query: 'q{<<matchers>>}'\n",
            "namespaced must be a bool",
        ),
        (
            "external:\n  - name: q\n    namespaceLabel: 'exported-namespace'\n"
            "    query: 'q{<<matchers>>}'\n",
            "namespaceLabel",
        ),
    ],
)
def test_errors(text: str, expected: str) -> None:
    with pytest.raises(RuleError) as caught:
        parse_rules(text, "rules.yaml")
    assert expected in str(caught.value)


def test_load_rules(tmp_path: Path) -> None:
    assert load_rules(None) == builtin("default")
    assert load_rules(None, default="dcgm") == builtin("dcgm")
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD)
    assert load_rules(path) == parse_rules(GOOD, str(path))
    with pytest.raises(RuleError, match="cannot read the rules file"):
        load_rules(tmp_path / "missing.yaml")


def test_rules_files_in_the_docs_are_valid() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "prometheus.md").read_text()
    blocks = [block.split("```", 1)[0] for block in docs.split("```yaml\n")[1:]]
    rules_files = [block for block in blocks if block.startswith("ruleset:")]
    assert len(rules_files) == 2
    for text in rules_files:
        parse_rules(text, "docs/prometheus.md")

"""The Grafana dashboards: in sync with their source, importable, and querying only series that exist."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from grafana import build
from grafana.dashboards import DASHBOARDS
from grafana.panels import PanelData, QueryResult, TimeRange, legend, panels
from grafana.prometheus_api import Series
from grafana.render import render
from grafana.templating import ALL, Selection, interpolate, intervals, round_interval_ms
from grafana.units import format_value

REPO = Path(__file__).resolve().parents[2]
RECORDING_RULES = REPO / "deploy" / "prometheus" / "rules" / "recording-rules.yaml"

# What the exporter produces (README "Metrics"), host series included.
EXPORTER_SERIES = {
    "gpu_info", "gpu_utilization_ratio", "gpu_memory_utilization_ratio", "gpu_memory_used_bytes",
    "gpu_memory_free_bytes", "gpu_memory_total_bytes", "gpu_memory_reserved_bytes",
    "gpu_temperature_celsius", "gpu_power_watts", "gpu_power_limit_watts", "gpu_energy_joules_total",
    "gpu_sm_clock_hertz", "gpu_memory_clock_hertz", "gpu_throttle_reasons", "gpu_ecc_errors_total",
    "gpu_xid_errors_total", "gpu_allocation_info", "gpu_allocatable", "gpu_allocated",
    "gpu_container_memory_used_bytes", "gpu_container_utilization_ratio",
    "gpu_unattributed_memory_used_bytes", "gpu_pod_info", "kgm_exporter_scrape_duration_seconds",
    "kgm_exporter_scrape_collector_success", "kgm_exporter_collector_errors_total",
    "kgm_gpu_field_errors_total", "kgm_nvml_up", "kgm_pod_resources_up", "kgm_build_info",
    "node_cpu_seconds_total", "node_load1", "node_load5", "node_load15", "node_memory_MemTotal_bytes",
    "node_memory_MemAvailable_bytes", "node_memory_MemFree_bytes", "node_memory_Buffers_bytes",
    "node_memory_SwapTotal_bytes", "node_memory_SwapFree_bytes", "node_filesystem_avail_bytes",
    "node_filesystem_free_bytes", "node_filesystem_size_bytes", "node_filesystem_files",
    "node_filesystem_files_free", "node_filesystem_readonly", "node_filesystem_device_error",
    "node_disk_read_bytes_total", "node_disk_written_bytes_total", "node_disk_reads_completed_total",
    "node_disk_writes_completed_total", "node_disk_io_time_seconds_total",
    "node_disk_read_time_seconds_total", "node_disk_write_time_seconds_total",
    "node_network_receive_bytes_total", "node_network_transmit_bytes_total",
    "node_network_receive_packets_total", "node_network_transmit_packets_total",
    "node_network_receive_errs_total", "node_network_transmit_errs_total",
    "node_network_receive_drop_total", "node_network_transmit_drop_total", "node_boot_time_seconds",
}  # fmt: skip
# kube-state-metrics' HPA series (docs/metrics/workload/horizontalpodautoscaler-metrics.md).
KUBE_STATE_METRICS_SERIES = {
    "kube_horizontalpodautoscaler_info", "kube_horizontalpodautoscaler_metadata_generation",
    "kube_horizontalpodautoscaler_spec_max_replicas", "kube_horizontalpodautoscaler_spec_min_replicas",
    "kube_horizontalpodautoscaler_spec_target_metric", "kube_horizontalpodautoscaler_status_target_metric",
    "kube_horizontalpodautoscaler_status_condition", "kube_horizontalpodautoscaler_status_current_replicas",
    "kube_horizontalpodautoscaler_status_desired_replicas",
}  # fmt: skip
UNITS = {"percentunit", "bytes", "binBps", "watt", "celsius", "hertz", "short"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
UIDS = {
    "cluster-overview": "kgm-cluster-overview",
    "node-detail": "kgm-node-detail",
    "workloads": "kgm-workloads",
    "hpa-experiment": "kgm-hpa-experiment",
}
VARIABLES = {
    "cluster-overview": {"datasource", "node", "namespace"},
    "node-detail": {"datasource", "node", "gpu"},
    "workloads": {"datasource", "node", "namespace", "workload", "pod"},
    "hpa-experiment": {"datasource", "namespace", "hpa", "pod", "target"},
}
# Values with the characters Grafana must escape: dots (node names), hyphens, a single quote.
SAMPLE_VALUES = ("gpu-node-1.example.com", "ml-team", "o'brien.x")


def recording_rule_names() -> set[str]:
    groups = yaml.safe_load(RECORDING_RULES.read_text())["groups"]
    return {rule["record"] for group in groups for rule in group["rules"]}


def metric_names(expr: str) -> set[str]:
    """Every metric a PromQL expression reads."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                found.add(node.name)
            found.update(m.value for m in node.matchers.matchers if m.name == "__name__")
        elif isinstance(node, promql_parser.MatrixSelector):
            walk(node.vector_selector)
        elif isinstance(node, promql_parser.BinaryExpr):
            walk(node.lhs)
            walk(node.rhs)
        elif isinstance(node, promql_parser.Call):
            for argument in node.args:
                walk(argument)
        elif isinstance(node, promql_parser.AggregateExpr):
            walk(node.expr)
            if isinstance(node.param, promql_parser.Expr):
                walk(node.param)
        elif isinstance(node, promql_parser.ParenExpr | promql_parser.UnaryExpr | promql_parser.SubqueryExpr):
            walk(node.expr)

    walk(promql_parser.parse(expr))
    return found


def committed(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((REPO / "grafana" / f"{name}.json").read_text())
    return document


def sample_variables(dashboard: Mapping[str, Any], pick: int) -> dict[str, Selection]:
    """Values for every variable as Grafana would hold them: All, one value, or several."""
    chosen: dict[str, Selection] = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "datasource":
            continue
        if variable["type"] == "textbox":
            chosen[variable["name"]] = Selection(("60",) if variable["name"] == "target" else (".*",))
            continue
        multi, include_all = variable.get("multi", False), variable.get("includeAll", False)
        values = {0: (ALL,) if include_all else SAMPLE_VALUES[:1], 1: SAMPLE_VALUES[:1], 2: SAMPLE_VALUES}[
            pick
        ]
        chosen[variable["name"]] = Selection(
            values if multi or len(values) == 1 else values[:1],
            multi=multi,
            include_all=include_all,
            all_value=variable.get("allValue"),
            options=SAMPLE_VALUES,
        )
    return chosen


def targets(dashboard: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield panel, target


@pytest.mark.parametrize("name", DASHBOARDS)
def test_committed_json_is_what_the_source_builds(name: str) -> None:
    path = REPO / "grafana" / f"{name}.json"
    assert path.read_text() == build.generated()[path], "run python -m grafana.build"


def test_build_check_passes() -> None:
    assert build.main(["--check"]) == 0


def test_sidecar_configmaps_hold_the_committed_json() -> None:
    configmaps = [d for d in yaml.safe_load_all(build.CONFIGMAPS.read_text()) if d]
    assert {c["metadata"]["name"] for c in configmaps} == {
        f"kube-gpu-metrics-dashboard-{n}" for n in DASHBOARDS
    }
    for configmap in configmaps:
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        ((key, text),) = configmap["data"].items()
        assert text == (REPO / "grafana" / key).read_text()


@pytest.mark.parametrize("name", DASHBOARDS)
def test_importable(name: str) -> None:
    dashboard = committed(name)
    assert dashboard["uid"] == UIDS[name]
    assert dashboard["id"] is None
    (source,) = dashboard["__inputs"]
    assert source == {
        "name": "DS_PROMETHEUS",
        "label": "Prometheus",
        "description": source["description"],
        "type": "datasource",
        "pluginId": "prometheus",
        "pluginName": "Prometheus",
    }
    kinds = {r["id"] for r in dashboard["__requires"] if r["type"] == "panel"}
    all_panels = list(panels(dashboard))
    assert kinds == {p["type"] for p in all_panels} - {"row"}
    ids = [p["id"] for p in all_panels]
    assert len(ids) == len(set(ids)), ids
    cells: set[tuple[int, int]] = set()
    for panel in all_panels:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] < grid["x"] + grid["w"] <= 24, panel["title"]
        assert grid["h"] >= 1, panel["title"]
        mine = set(
            itertools.product(
                range(grid["x"], grid["x"] + grid["w"]), range(grid["y"], grid["y"] + grid["h"])
            )
        )
        assert not cells & mine, f"{panel['title']} overlaps another panel"
        cells |= mine
        if panel["type"] in ("row", "text"):
            continue
        assert isinstance(panel["options"], dict), panel["title"]
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["fieldConfig"]["defaults"]["unit"] in UNITS, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]
    ref_ids = [[t["refId"] for t in p.get("targets", [])] for p in all_panels]
    assert all(len(r) == len(set(r)) and all(r) for r in ref_ids)


@pytest.mark.parametrize("name", DASHBOARDS)
def test_datasource_only_through_the_input(name: str) -> None:
    dashboard = committed(name)

    def datasources(node: Any) -> Iterator[Any]:
        if isinstance(node, dict):
            if "datasource" in node:
                yield node["datasource"]
            for value in node.values():
                yield from datasources(value)
        elif isinstance(node, list):
            for value in node:
                yield from datasources(value)

    assert all(found == DATASOURCE for found in datasources(dashboard["panels"]))
    assert all(found == DATASOURCE for found in datasources(dashboard["templating"]))
    (variable,) = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["name"] == "datasource"
    assert variable["query"] == "prometheus"
    assert variable["current"]["value"] == "${DS_PROMETHEUS}"
    assert "${DS_PROMETHEUS}" not in json.dumps(dashboard["panels"])


@pytest.mark.parametrize("name", DASHBOARDS)
def test_variables(name: str) -> None:
    variables = {v["name"]: v for v in committed(name)["templating"]["list"]}
    assert set(variables) == VARIABLES[name]
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE
            assert variable["refresh"] == 2, "options follow the time range"
            assert (
                metric_names(variable["query"].split("(", 1)[1].rsplit(",", 1)[0])
                <= EXPORTER_SERIES | KUBE_STATE_METRICS_SERIES
            )
        if variable.get("multi"):
            assert variable["includeAll"]
            assert variable["allValue"] == ".*"
            assert variable["current"]["value"] == "$__all"


@pytest.mark.parametrize("pick", [0, 1, 2], ids=["all", "one", "several"])
@pytest.mark.parametrize("name", DASHBOARDS)
def test_queries_parse_and_read_known_series(name: str, pick: int) -> None:
    dashboard = committed(name)
    known = EXPORTER_SERIES | KUBE_STATE_METRICS_SERIES | recording_rule_names()
    chosen = sample_variables(dashboard, pick)
    builtins = intervals(3_600_000, 960, 15_000).builtins()
    for panel, target in targets(dashboard):
        expr = interpolate(target["expr"], chosen, builtins)
        assert "$" not in expr, (panel["title"], expr)
        try:
            names = metric_names(expr)
        except ValueError as error:
            pytest.fail(f"{panel['title']}: {error}\n{expr}")
        assert names <= known, (panel["title"], names - known)


def test_every_dashboard_uses_the_series_the_issue_names() -> None:
    used = {
        name: set().union(*(metric_names(interpolate(t["expr"], sample_variables(committed(name), 0),
                                                     intervals(60_000, 960, 1_000).builtins()))
                            for _, t in targets(committed(name))))
        for name in DASHBOARDS
    }  # fmt: skip
    assert {"gpu_container_utilization_ratio", "gpu_container_memory_used_bytes", "gpu_pod_info"} <= used[
        "workloads"
    ]
    assert {"node_cpu_seconds_total", "gpu_xid_errors_total", "gpu_ecc_errors_total"} <= used["node-detail"]
    assert {n for n in used["hpa-experiment"] if n.startswith("kube_horizontalpodautoscaler_")}
    assert {"gpu_allocation_info", "gpu_power_watts", "gpu_temperature_celsius"} <= used["cluster-overview"]


# Grafana's substitution, case by case.


def test_all_with_all_value_is_verbatim() -> None:
    selection = Selection((ALL,), multi=True, include_all=True, all_value=".*", options=("a.b",))
    assert interpolate('x{n=~"$n"}', {"n": selection}, {}) == 'x{n=~".*"}'
    assert interpolate('x{n=~"${n:regex}"}', {"n": selection}, {}) == 'x{n=~".*"}'


def test_all_without_all_value_is_every_option() -> None:
    selection = Selection((ALL,), multi=True, include_all=True, options=("a.b", "c"))
    assert interpolate('x{n=~"$n"}', {"n": selection}, {}) == r'x{n=~"(a\\.b|c)"}'


def test_multi_values_are_escaped_for_a_promql_string() -> None:
    selection = Selection(("a.b", "c"), multi=True, include_all=True, all_value=".*")
    assert interpolate('x{n=~"${n}"}', {"n": selection}, {}) == r'x{n=~"(a\\.b|c)"}'
    assert interpolate('x{n=~"[[n]]"}', {"n": selection}, {}) == r'x{n=~"(a\\.b|c)"}'
    assert interpolate('x{n=~"${n:regex}"}', {"n": selection}, {}) == r'x{n=~"(a\.b|c)"}'
    assert interpolate("${n:pipe} ${n:csv}", {"n": selection}, {}) == "a.b|c a.b,c"


def test_single_value_keeps_regex_characters() -> None:
    assert interpolate('x{n="$n"}', {"n": Selection(("a.b",))}, {}) == 'x{n="a.b"}'
    assert interpolate("$n", {"n": Selection(("it's",))}, {}) == "it\\\\'s"


def test_unknown_variables_stay() -> None:
    assert interpolate("$nope ${nope:regex}", {}, {}) == "$nope ${nope:regex}"


def test_interval_and_rate_interval() -> None:
    # One hour on a 960 px panel: 3.75 s per point, rounded to 5 s, floored at a 15 s scrape interval.
    assert intervals(3_600_000, 960, 15_000).builtins() == {
        "__interval": "15s",
        "__interval_ms": "15000",
        "__rate_interval": "60s",
        "__range": "3600s",
        "__range_s": "3600",
        "__range_ms": "3600000",
    }
    assert intervals(86_400_000, 960, 1_000).builtins()["__interval"] == "2m"
    assert intervals(86_400_000, 960, 1_000).builtins()["__rate_interval"] == "121s"
    assert intervals(300_000, 960, 1_000).builtins()["__rate_interval"] == "4s"
    assert round_interval_ms(90) == 100
    assert round_interval_ms(40_000) == 30_000


def test_units() -> None:
    assert format_value(0.425, "percentunit") == "42.5%"
    assert format_value(80 * 2**30, "bytes") == "80 GiB"
    assert format_value(1_980_000_000, "hertz") == "1.98 GHz"
    assert format_value(350, "watt") == "350 W"
    assert format_value(71, "celsius") == "71 °C"
    assert format_value(3, "short") == "3"


def test_legend() -> None:
    labels = {"__name__": "gpu_utilization_ratio", "gpu": "0", "node": "a"}
    assert legend("{{node}} GPU {{ gpu }}", labels) == "a GPU 0"
    assert legend("", labels) == 'gpu_utilization_ratio{gpu="0", node="a"}'
    assert legend("", {}) == "{}"


def test_render_draws_every_panel_type(tmp_path: Path) -> None:
    dashboard = committed("hpa-experiment")
    time = TimeRange(1_700_000_000, 1_700_000_300, 1_000)
    points = [(time.start + i, 0.5 + 0.01 * i) for i in range(300)]
    data = [
        PanelData(
            panel,
            tuple(
                QueryResult(t["refId"], t["expr"], False, (("pod-0", Series({"pod": "pod-0"}, points)),))
                for t in panel.get("targets", [])
            ),
        )
        for panel in panels(dashboard)
    ]
    data[-1] = PanelData(data[-1].panel, (QueryResult("A", "x", False, error="bad_data: parse error"),))
    out = render(dashboard, data, time, tmp_path / "hpa.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

"""Run a dashboard's queries against Prometheus as Grafana would: variables first, then every panel."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from grafana.prometheus_api import PrometheusApi, PrometheusError, Series
from grafana.templating import ALL, Intervals, Selection, interpolate, intervals, parse_duration

# Grafana lays the 24 grid columns over the browser's width; a 1920 px screen is the usual review.
SCREEN_WIDTH_PX = 1920
_LABEL_VALUES = re.compile(
    r"^\s*label_values\(\s*(?:(?P<match>.+)\s*,\s*)?(?P<label>\w+)\s*\)\s*$", re.DOTALL
)
_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@dataclass(frozen=True)
class TimeRange:
    """The dashboard's time range in unix seconds, and the datasource's scrape interval."""

    start: float
    end: float
    scrape_interval_ms: int = 15_000

    @property
    def range_ms(self) -> int:
        return round((self.end - self.start) * 1000)


@dataclass(frozen=True)
class QueryResult:
    """One target of a panel: its query as sent, the series it returned (legend, series), or an error."""

    ref_id: str
    expr: str
    instant: bool
    series: Sequence[tuple[str, Series]] = ()
    error: str = ""


@dataclass(frozen=True)
class PanelData:
    """A panel and what its queries returned."""

    panel: Mapping[str, Any]
    results: Sequence[QueryResult] = field(default_factory=tuple)

    @property
    def empty(self) -> bool:
        return not any(result.series for result in self.results)


def panels(dashboard: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """Every panel, rows included, with the panels of collapsed rows after their row."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def _variable_query(variable: Mapping[str, Any]) -> str:
    query = variable.get("query", "")
    if isinstance(query, Mapping):
        return str(query.get("query", ""))
    return str(query)


def _current_values(variable: Mapping[str, Any]) -> tuple[str, ...]:
    value = (variable.get("current") or {}).get("value", ())
    return tuple(value) if isinstance(value, list) else (str(value),) if value else ()


def _options(
    variable: Mapping[str, Any], api: PrometheusApi, resolved: Mapping[str, Selection], time: TimeRange
) -> tuple[str, ...]:
    kind = variable.get("type")
    if kind == "custom":
        return tuple(v.strip() for v in _variable_query(variable).split(",") if v.strip())
    if kind != "query":
        return ()
    builtins = intervals(time.range_ms, SCREEN_WIDTH_PX, time.scrape_interval_ms).builtins()
    query = interpolate(_variable_query(variable), resolved, builtins)
    match = _LABEL_VALUES.match(query)
    if match is None:
        raise ValueError(
            f"variable {variable.get('name')}: only label_values() queries are previewed: {query}"
        )
    values = api.label_values(match["label"], match["match"], time.start, time.end)
    if variable.get("regex"):
        pattern = re.compile(str(variable["regex"]).strip("/"))
        found = (pattern.search(v) for v in values)
        values = [m[1] if m.groups() else m[0] for m in found if m]
    return tuple(values)


def resolve_variables(
    dashboard: Mapping[str, Any],
    api: PrometheusApi,
    time: TimeRange,
    overrides: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Selection]:
    """Each variable's options from Prometheus and its value: an override (like ``var-x=`` in a URL),
    else the saved current value when it is still an option (or All), else the first option.
    """
    overrides = overrides or {}
    resolved: dict[str, Selection] = {}
    for variable in dashboard.get("templating", {}).get("list", []):
        name, kind = str(variable["name"]), variable.get("type")
        if kind == "datasource":
            continue
        if kind in ("textbox", "constant"):
            value = overrides.get(name) or _current_values(variable) or (_variable_query(variable),)
            resolved[name] = Selection(tuple(value))
            continue
        options = _options(variable, api, resolved, time)
        include_all = bool(variable.get("includeAll"))
        wanted = tuple(overrides.get(name, ())) or _current_values(variable)
        if ALL in wanted and include_all:
            values: tuple[str, ...] = (ALL,)
        elif wanted and all(v in options for v in wanted):
            values = wanted
        elif include_all:
            values = (ALL,)
        else:
            values = options[:1]
        resolved[name] = Selection(
            values,
            multi=bool(variable.get("multi")),
            include_all=include_all,
            all_value=variable.get("allValue") or None,
            options=options,
        )
    return resolved


def legend(legend_format: str, labels: Mapping[str, str]) -> str:
    """A series' name: ``legendFormat`` with ``{{label}}`` filled in, else its labels, as Grafana names it."""
    if legend_format and legend_format != "__auto":
        return _LEGEND.sub(lambda m: labels.get(m[1], ""), legend_format)
    name = labels.get("__name__", "")
    rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{name}{{{rest}}}" if rest or not name else name


def panel_intervals(panel: Mapping[str, Any], time: TimeRange) -> Intervals:
    """``$__interval`` and friends for ``panel``: its width in pixels is its default max data points."""
    width_px = panel.get("gridPos", {}).get("w", 24) * SCREEN_WIDTH_PX // 24
    max_points = int(panel.get("maxDataPoints") or width_px)
    minimum = parse_duration(panel["interval"]) if panel.get("interval") else time.scrape_interval_ms
    return intervals(time.range_ms, max_points, minimum)


def run_panel(
    panel: Mapping[str, Any], api: PrometheusApi, variables: Mapping[str, Selection], time: TimeRange
) -> PanelData:
    """Every visible target of ``panel``, interpolated and run over ``time``."""
    timing = panel_intervals(panel, time)
    builtins = timing.builtins()
    results = []
    for target in panel.get("targets", []):
        if target.get("hide") or not target.get("expr"):
            continue
        expr = interpolate(str(target["expr"]), variables, builtins)
        instant = bool(target.get("instant")) and not target.get("range")
        try:
            found = (
                api.query(expr, time.end)
                if instant
                else api.query_range(expr, time.start, time.end, timing.interval_ms / 1000)
            )
        except PrometheusError as error:
            results.append(QueryResult(str(target.get("refId", "")), expr, instant, error=str(error)))
            continue
        named = [(legend(str(target.get("legendFormat", "")), s.labels), s) for s in found]
        results.append(QueryResult(str(target.get("refId", "")), expr, instant, tuple(named)))
    return PanelData(panel, tuple(results))


def run_dashboard(
    dashboard: Mapping[str, Any],
    api: PrometheusApi,
    time: TimeRange,
    overrides: Mapping[str, Sequence[str]] | None = None,
) -> list[PanelData]:
    """Every panel of ``dashboard`` with its data (rows and text panels have none)."""
    variables = resolve_variables(dashboard, api, time, overrides)
    return [run_panel(panel, api, variables, time) for panel in panels(dashboard)]

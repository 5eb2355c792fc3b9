"""What every dashboard shares: the datasource input, variables, panel shapes, and PromQL joins.

Panels reference the datasource through the ``datasource`` variable, whose default is the
``DS_PROMETHEUS`` import input: import asks for the datasource, and a provisioned copy (where
nothing replaces inputs) falls back to Grafana's default Prometheus instead of a dangling uid.

Queries interpolate multi-value variables as plain ``$var`` inside ``=~"..."``: Grafana's Prometheus
datasource then escapes each value for a PromQL string (``\\\\.``), whereas ``${var:regex}`` emits
``\\.``, which PromQL rejects inside double quotes for names with dots (node names usually have them).
"""

from __future__ import annotations

import json
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self, TypeVar

from grafana_foundation_sdk.builders import bargauge, dashboard, prometheus, stat, text, timeseries
from grafana_foundation_sdk.builders.common import ReduceDataOptions, VizLegendOptions
from grafana_foundation_sdk.cog import variants
from grafana_foundation_sdk.cog.builder import Builder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import text as text_model

DS_INPUT = "DS_PROMETHEUS"
DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
GRAFANA_VERSION = "10.0.0"

# Grafana unit ids: our ratios are 0..1, sizes IEC like the framebuffer's, rates per second.
PERCENT = "percentunit"
BYTES = "bytes"
BYTES_PER_SECOND = "binBps"
WATTS = "watt"
CELSIUS = "celsius"
HERTZ = "hertz"
COUNT = "short"

# Host series of an exporter share its instance with its GPUs, whose gpu_info names the node.
HOST_NODE = 'max by (instance, node) (gpu_info{node=~"$node"})'


def on_node(expr: str) -> str:
    """Keep the device series of ``expr`` on the selected nodes, adding their ``node`` label.

    Device series carry no node label: it lives on gpu_info, joined by (instance, uuid).
    """
    return (
        f"({expr})\n  * on (instance, uuid) group_left (node)"
        ' max by (instance, uuid, node) (gpu_info{node=~"$node"})'
    )


def on_host(expr: str) -> str:
    """Keep the host (node_*) series of ``expr`` that the selected node's exporter serves."""
    return f"({expr})\n  * on (instance) group_left (node) {HOST_NODE}"


def target(expr: str, legend: str = "", *, instant: bool = False) -> prometheus.Dataquery:
    """One PromQL query of a panel (its refId is set when the panel is made)."""
    query = prometheus.Dataquery().expr(expr).datasource(DATASOURCE)
    if legend:
        query = query.legend_format(legend)
    return query.instant() if instant else query.range()


@dataclass(frozen=True)
class Size:
    """Where a panel sits in the 24-column grid, as a width and a height (rows of 30 px)."""

    width: int = 12
    height: int = 8


class _Queried(Protocol):
    def title(self, title: str, /) -> Self: ...
    def description(self, description: str, /) -> Self: ...
    def datasource(self, datasource: model.DataSourceRef, /) -> Self: ...
    def unit(self, unit: str, /) -> Self: ...
    def span(self, span: int, /) -> Self: ...
    def height(self, height: int, /) -> Self: ...
    def with_target(self, target: Builder[variants.Dataquery], /) -> Self: ...


class _Scaled(_Queried, Protocol):
    def min(self, min: float, /) -> Self: ...
    def max(self, max: float, /) -> Self: ...


QueriedPanel = TypeVar("QueriedPanel", bound=_Queried)
ScaledPanel = TypeVar("ScaledPanel", bound=_Scaled)


def _queried(
    panel: QueriedPanel,
    title: str,
    unit: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    description: str,
    size: Size,
) -> QueriedPanel:
    """What every panel of data has: title, description, datasource, unit, place, and its queries."""
    panel = (
        panel.title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(size.width)
        .height(size.height)
    )
    for ref_id, query in zip(string.ascii_uppercase, targets, strict=False):
        panel = panel.with_target(query.ref_id(ref_id))
    return panel


def _scaled(panel: ScaledPanel, max_value: float | None) -> ScaledPanel:
    """A value axis from 0, up to ``max_value`` when given."""
    panel = panel.min(0)
    return panel if max_value is None else panel.max(max_value)


def timeseries_panel(
    title: str,
    unit: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    description: str = "",
    size: Size = Size(),
    max_value: float | None = None,
) -> timeseries.Panel:
    """A time series panel with a table legend showing mean and last values."""
    panel = (
        timeseries.Panel()
        .line_width(1)
        .fill_opacity(10)
        .legend(
            VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .calcs(["mean", "lastNotNull"])
        )
    )
    return _queried(_scaled(panel, max_value), title, unit, targets, description=description, size=size)


def stat_panel(
    title: str,
    unit: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    description: str = "",
    size: Size = Size(4, 4),
) -> stat.Panel:
    """A big number: the last value of each series."""
    panel = (
        stat.Panel()
        .graph_mode(common.BigValueGraphMode.AREA)
        .color_mode(common.BigValueColorMode.VALUE)
        .text_mode(common.BigValueTextMode.AUTO)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    return _queried(panel, title, unit, targets, description=description, size=size)


def bar_panel(
    title: str,
    unit: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    description: str = "",
    size: Size = Size(),
    max_value: float | None = None,
) -> bargauge.Panel:
    """Horizontal bars, one per series, for rankings."""
    panel = (
        bargauge.Panel()
        .orientation(common.VizOrientation.HORIZONTAL)
        .display_mode(common.BarGaugeDisplayMode.GRADIENT)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    return _queried(_scaled(panel, max_value), title, unit, targets, description=description, size=size)


def text_panel(title: str, markdown: str, *, size: Size = Size(24, 4)) -> text.Panel:
    """Markdown that explains the panels around it."""
    return (
        text.Panel()
        .title(title)
        .mode(text_model.TextMode.MARKDOWN)
        .content(markdown.strip())
        .span(size.width)
        .height(size.height)
    )


def datasource_variable() -> dashboard.DatasourceVariable:
    """The Prometheus to query; defaults to the datasource chosen at import."""
    return (
        dashboard.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .current(model.VariableOption(selected=True, text=f"${{{DS_INPUT}}}", value=f"${{{DS_INPUT}}}"))
    )


def query_variable(
    name: str, label: str, query: str, *, multi: bool = True, hidden: bool = False
) -> dashboard.QueryVariable:
    """Values of a label, refreshed with the time range; multi-value ones offer All, meaning any (``.*``)."""
    variable = (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(multi)
    )
    if multi:
        # ".*" rather than Grafana's list of every value: short queries, and series of pods that
        # appeared after the list was loaded still show.
        variable = variable.all_value(".*").current(
            model.VariableOption(selected=True, text="All", value="$__all")
        )
    if hidden:
        variable = variable.hide(model.VariableHide.HIDE_VARIABLE)
    return variable


def textbox_variable(name: str, label: str, default: str, description: str) -> dashboard.TextBoxVariable:
    """Free text the panels use as typed."""
    return (
        dashboard.TextBoxVariable(name)
        .label(label)
        .description(description)
        .default_value(default)
        .current(model.VariableOption(selected=True, text=default, value=default))
    )


@dataclass(frozen=True)
class Section:
    """A titled row of the dashboard and its panels, laid out left to right, wrapping at 24 columns."""

    title: str
    panels: Sequence[Builder[model.Panel]]


def build_dashboard(
    uid: str,
    title: str,
    description: str,
    variables: Sequence[Builder[model.VariableModel]],
    sections: Sequence[Section],
    *,
    tags: Sequence[str] = (),
) -> dict[str, Any]:
    """The dashboard as Grafana's export writes it: ``__inputs``/``__requires``, no id, panels numbered."""
    builder = (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["kube-gpu-metrics", "gpu", *tags])
        .editable()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .time("now-1h", "now")
        .refresh("30s")
        .timezone("browser")
        .variables(list(variables))
    )
    for section in sections:
        builder = builder.with_row(dashboard.Row(section.title))
        for panel in section.panels:
            builder = builder.with_panel(panel)
    document: dict[str, Any] = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    types = set()
    for number, panel in enumerate(document["panels"], start=1):
        panel["id"] = number
        types.add(panel["type"])
    for variable in document["templating"]["list"]:
        # The SDK gives every variable the same placeholder id; Grafana keys variables by name.
        variable.pop("id", None)
    return {
        "__inputs": [
            {
                "name": DS_INPUT,
                "label": "Prometheus",
                "description": "The Prometheus that scrapes kube-gpu-exporter",
                "type": "datasource",
                "pluginId": "prometheus",
                "pluginName": "Prometheus",
            }
        ],
        "__requires": [
            {"type": "grafana", "id": "grafana", "name": "Grafana", "version": GRAFANA_VERSION},
            {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"},
            *({"type": "panel", "id": kind, "name": kind, "version": ""} for kind in sorted(types - {"row"})),
        ],
        "id": None,
        **document,
        "annotations": {"list": []},
    }

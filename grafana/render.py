"""Draw a dashboard and its data as one PNG with matplotlib, laid out on Grafana's grid."""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from matplotlib.ticker import FuncFormatter

from grafana.panels import PanelData, TimeRange
from grafana.prometheus_api import Series
from grafana.units import format_value

# Grafana's dark theme and classic palette, so previews read like the real thing.
BACKGROUND = "#111217"
PANEL = "#181b1f"
BORDER = "#2c3235"
TEXT = "#ccccdc"
MUTED = "#8e8e9e"
ERROR = "#f2495c"
PALETTE = (
    "#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9", "#705da0",
    "#37872d", "#fade2a", "#447ebc", "#c15c17", "#890f02", "#0a437c", "#6d1f62", "#584477",
)  # fmt: skip
WIDTH_PX = 1920
ROW_PX = 30  # Grafana's grid row height (GRID_CELL_HEIGHT) ...
GAP_PX = 8  # ... and the margin between panels
HEADER_PX = 56
DPI = 100
LEGEND_LINE_PX = 17


def _box(grid: Mapping[str, int], total_px: float) -> tuple[float, float, float, float]:
    """Figure coordinates (left, bottom, width, height) of a gridPos."""
    column = (WIDTH_PX - GAP_PX) / 24
    left = GAP_PX + grid["x"] * column
    top = HEADER_PX + grid["y"] * ROW_PX + GAP_PX
    width = grid["w"] * column - GAP_PX
    height = grid["h"] * ROW_PX - GAP_PX
    return left / WIDTH_PX, 1 - (top + height) / total_px, width / WIDTH_PX, height / total_px


def _unit(panel: Mapping[str, Any]) -> str:
    return str(panel.get("fieldConfig", {}).get("defaults", {}).get("unit", "") or "none")


def _limits(panel: Mapping[str, Any]) -> tuple[float | None, float | None]:
    defaults = panel.get("fieldConfig", {}).get("defaults", {})
    return defaults.get("min"), defaults.get("max")


def _ticks(unit: str, low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values for an axis in ``unit``: binary units step in whole KiB, MiB, GiB..."""
    if not math.isfinite(low) or not math.isfinite(high) or high <= low:
        return [low] if math.isfinite(low) else []
    scale = 1.0
    if unit in ("bytes", "binBps"):
        while high / scale >= 1024:
            scale *= 1024
    raw = (high - low) / scale / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw) * scale
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) / step + 1e-9) + 1)]


def _time_ticks(start: float, end: float, count: int = 8) -> list[float]:
    """Tick times on round clock values (every 10 s, 1 min, 15 min, ...), at most ``count`` of them."""
    steps = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
    step = next((s for s in steps if (end - start) / s <= count), steps[-1])
    first = math.ceil(start / step) * step
    # A label centred on the right edge would be cut off.
    last = end - (end - start) * 0.03
    return [float(t) for t in range(int(first), int(last) + 1, step)]


def _finite(series: Series) -> list[tuple[float, float]]:
    return [(t, v) for t, v in series.points if math.isfinite(v)]


def _last(series: Series) -> float:
    points = _finite(series)
    return points[-1][1] if points else math.nan


def _mean(series: Series) -> float:
    points = _finite(series)
    return sum(v for _, v in points) / len(points) if points else math.nan


def _all_series(data: PanelData) -> list[tuple[str, Series]]:
    return [named for result in data.results for named in result.series]


def _message(ax: Axes, text: str, color: str = MUTED) -> None:
    ax.text(
        0.5, 0.45, text, ha="center", va="center", color=color, fontsize=11, transform=ax.transAxes, wrap=True
    )


def _errors(data: PanelData) -> str:
    return "\n".join(textwrap.shorten(f"{r.ref_id}: {r.error}", 160) for r in data.results if r.error)


def _frame(figure: Figure, box: tuple[float, float, float, float], title: str, total_px: float) -> Axes:
    """The panel's card and title; returns an invisible axes covering the card."""
    card = figure.add_axes(box)
    card.set_axis_off()
    card.add_patch(
        FancyBboxPatch(
            (0, 0), 1, 1, boxstyle="round,pad=0,rounding_size=0.004", transform=card.transAxes,
            facecolor=PANEL, edgecolor=BORDER, linewidth=1,
        )
    )  # fmt: skip
    card.text(
        0.01, 1 - 16 / total_px / box[3], title, color=TEXT, fontsize=10.5,
        fontweight="bold", va="center", ha="left", transform=card.transAxes,
    )  # fmt: skip
    return card


def _inner(
    box: tuple[float, float, float, float],
    total_px: float,
    top_px: float,
    bottom_px: float,
    left_px: float = 12,
) -> tuple[float, float, float, float]:
    """The part of a panel's card below its title, inset by the given margins in pixels."""
    left, bottom, width, height = box
    return (
        left + left_px / WIDTH_PX,
        bottom + bottom_px / total_px,
        width - (left_px + 12) / WIDTH_PX,
        height - (top_px + bottom_px) / total_px,
    )


def _timeseries(
    figure: Figure, box: tuple[float, float, float, float], data: PanelData, time: TimeRange, total_px: float
) -> None:
    series = _all_series(data)
    unit = _unit(data.panel)
    legend_rows = min(len(series), max(1, int(box[3] * total_px * 0.35 / LEGEND_LINE_PX)))
    legend_px = LEGEND_LINE_PX * legend_rows + 8 if series else 0
    ax = figure.add_axes(_inner(box, total_px, 32, legend_px + 28, left_px=64))
    ax.set_facecolor(PANEL)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(colors=MUTED, labelsize=8, length=0)
    ax.grid(color=BORDER, linewidth=0.6)
    ax.set_xlim(time.start, time.end)
    clock = "%H:%M:%S" if time.range_ms <= 3_600_000 else "%m-%d %H:%M"
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: datetime.fromtimestamp(v, UTC).strftime(clock)))
    ax.set_xticks(_time_ticks(time.start, time.end))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: format_value(v, unit)))
    low, high = _limits(data.panel)
    error = _errors(data)
    if not series:
        ax.set_yticks([])
        _message(ax, error or "No data", ERROR if error else MUTED)
        return
    for index, (_, found) in enumerate(series):
        points = _finite(found)
        times = [t for t, _ in points]
        values = [v for _, v in points]
        color = PALETTE[index % len(PALETTE)]
        ax.plot(times, values, color=color, linewidth=1.2)
        ax.fill_between(times, values, color=color, alpha=0.08)
    # Grafana's min and max are soft here: data above max still shows, as with the axis soft limits.
    bottom, top = ax.get_ylim()
    bottom = low if low is not None else bottom
    top = max(top, high) if high is not None else top
    ax.set_ylim(bottom, top)
    ax.set_yticks(_ticks(unit, bottom, top))
    calcs = data.panel.get("options", {}).get("legend", {}).get("calcs", [])
    legend_ax = figure.add_axes(
        (box[0] + box[2] * 0.015, box[1] + 4 / total_px, box[2] * 0.97, legend_px / total_px)
    )
    legend_ax.set_axis_off()
    header = [c for c in ("mean", "lastNotNull") if c in calcs]
    column_width = 84 / (box[2] * WIDTH_PX)
    names = {"mean": "Mean", "lastNotNull": "Last *"}
    for column, calc in enumerate(reversed(header)):
        legend_ax.text(
            1 - column * column_width,
            1,
            names[calc],
            color=MUTED,
            fontsize=8,
            ha="right",
            va="top",
            transform=legend_ax.transAxes,
        )
    shown = series[: legend_rows - 1] if len(series) > legend_rows else series
    for row, (name, found) in enumerate(shown, start=1 if header else 0):
        y = 1 - row / (legend_rows + (1 if header else 0))
        color = PALETTE[(row - (1 if header else 0)) % len(PALETTE)]
        legend_ax.plot(
            [0.002, 0.014], [y - 0.04, y - 0.04], color=color, linewidth=3, transform=legend_ax.transAxes
        )
        legend_ax.text(
            0.02,
            y,
            textwrap.shorten(name, 90),
            color=TEXT,
            fontsize=8,
            va="top",
            transform=legend_ax.transAxes,
        )
        for column, calc in enumerate(reversed(header)):
            value = _mean(found) if calc == "mean" else _last(found)
            legend_ax.text(
                1 - column * column_width,
                y,
                format_value(value, unit),
                color=TEXT,
                fontsize=8,
                ha="right",
                va="top",
                transform=legend_ax.transAxes,
            )
    if len(shown) < len(series):
        legend_ax.text(
            0.02,
            0.02,
            f"+ {len(series) - len(shown)} more",
            color=MUTED,
            fontsize=8,
            transform=legend_ax.transAxes,
        )


def _stat(figure: Figure, box: tuple[float, float, float, float], data: PanelData, total_px: float) -> None:
    series = _all_series(data)
    unit = _unit(data.panel)
    ax = figure.add_axes(_inner(box, total_px, 30, 6))
    ax.set_axis_off()
    if not series:
        error = _errors(data)
        _message(ax, error or "No data", ERROR if error else MUTED)
        return
    width = 1 / len(series)
    for index, (name, found) in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        left = index * width
        points = _finite(found)
        if len(points) > 1:
            area = ax.get_position()
            spark = figure.add_axes(
                (area.x0 + left * area.width, area.y0, width * area.width, area.height * 0.45)
            )
            spark.set_axis_off()
            spark.fill_between([t for t, _ in points], [v for _, v in points], color=color, alpha=0.18)
            spark.plot([t for t, _ in points], [v for _, v in points], color=color, linewidth=1)
            spark.set_ylim(bottom=min(0.0, *(v for _, v in points)))
        size = min(34.0, 26.0 * 6 / max(len(series) * 3, 6) + 8)
        ax.text(
            left + width / 2,
            0.58,
            format_value(_last(found), unit),
            color=color,
            fontsize=size,
            fontweight="bold",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        if len(series) > 1 or data.panel.get("targets", [{}])[0].get("legendFormat"):
            ax.text(
                left + width / 2,
                0.98,
                name,
                color=TEXT,
                fontsize=9,
                ha="center",
                va="top",
                transform=ax.transAxes,
            )


def _bars(figure: Figure, box: tuple[float, float, float, float], data: PanelData, total_px: float) -> None:
    series = sorted(
        _all_series(data), key=lambda named: -_last(named[1]) if math.isfinite(_last(named[1])) else 0
    )
    unit = _unit(data.panel)
    ax = figure.add_axes(_inner(box, total_px, 32, 10))
    ax.set_axis_off()
    if not series:
        error = _errors(data)
        _message(ax, error or "No data", ERROR if error else MUTED)
        return
    low, high = _limits(data.panel)
    values = [_last(found) for _, found in series]
    top = high if high is not None else max([v for v in values if math.isfinite(v)] or [1.0]) or 1.0
    rows = len(series)
    for row, ((name, _), value) in enumerate(zip(series, values, strict=True)):
        y = 1 - (row + 0.5) / rows
        height = 0.6 / rows
        ax.text(
            0.0, y, textwrap.shorten(name, 40), color=TEXT, fontsize=9, va="center", transform=ax.transAxes
        )
        ax.add_patch(
            FancyBboxPatch(
                (0.3, y - height / 2),
                0.58,
                height,
                boxstyle="square,pad=0",
                facecolor=BORDER,
                transform=ax.transAxes,
            )
        )
        share = (
            max(0.0, min(1.0, (value - (low or 0.0)) / (top - (low or 0.0)))) if math.isfinite(value) else 0.0
        )
        ax.add_patch(
            FancyBboxPatch(
                (0.3, y - height / 2),
                0.58 * share,
                height,
                boxstyle="square,pad=0",
                facecolor=PALETTE[row % len(PALETTE)],
                transform=ax.transAxes,
            )
        )
        ax.text(
            1.0,
            y,
            format_value(value, unit),
            color=TEXT,
            fontsize=9,
            ha="right",
            va="center",
            transform=ax.transAxes,
        )


def _text(
    figure: Figure, box: tuple[float, float, float, float], panel: Mapping[str, Any], total_px: float
) -> None:
    ax = figure.add_axes(_inner(box, total_px, 30, 4))
    ax.set_axis_off()
    content = str(panel.get("options", {}).get("content", ""))
    plain = re.sub(r"\*\*|`", "", " ".join(content.split()))
    columns = max(40, int((box[2] * WIDTH_PX - 24) / 7.2))
    ax.text(
        0,
        1,
        textwrap.fill(plain, columns),
        color=TEXT,
        fontsize=9,
        va="top",
        ha="left",
        transform=ax.transAxes,
        linespacing=1.5,
    )


def render(dashboard: Mapping[str, Any], data: Sequence[PanelData], time: TimeRange, out: Path) -> Path:
    """Draw ``dashboard`` with ``data`` (from ``run_dashboard``) into the PNG ``out``."""
    bottom = max((p.panel["gridPos"]["y"] + p.panel["gridPos"]["h"] for p in data), default=1)
    total_px = HEADER_PX + bottom * ROW_PX + GAP_PX
    # A bare Figure draws on the Agg canvas: no pyplot state, no GUI backend.
    figure = Figure(figsize=(WIDTH_PX / DPI, total_px / DPI), dpi=DPI, facecolor=BACKGROUND)
    start, end = datetime.fromtimestamp(time.start, UTC), datetime.fromtimestamp(time.end, UTC)
    span = f"{start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S} UTC"
    figure.text(
        GAP_PX / WIDTH_PX,
        1 - 28 / total_px,
        str(dashboard.get("title", "")),
        color=TEXT,
        fontsize=15,
        fontweight="bold",
        va="center",
    )
    figure.text(
        1 - GAP_PX / WIDTH_PX, 1 - 28 / total_px, span, color=MUTED, fontsize=9, va="center", ha="right"
    )
    for panel_data in data:
        panel = panel_data.panel
        box = _box(panel["gridPos"], total_px)
        kind = panel.get("type")
        if kind == "row":
            figure.text(
                box[0],
                box[1] + box[3] / 2,
                str(panel.get("title", "")),
                color=TEXT,
                fontsize=12,
                fontweight="bold",
                va="center",
            )
            continue
        _frame(figure, box, str(panel.get("title", "")), total_px)
        if kind == "timeseries":
            _timeseries(figure, box, panel_data, time, total_px)
        elif kind == "stat":
            _stat(figure, box, panel_data, total_px)
        elif kind == "bargauge":
            _bars(figure, box, panel_data, total_px)
        elif kind == "text":
            _text(figure, box, panel, total_px)
        else:
            _message(figure.add_axes(_inner(box, total_px, 30, 4)), f"panel type {kind!r} is not previewed")
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=DPI, facecolor=BACKGROUND)
    return out

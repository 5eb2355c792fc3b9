"""Render dashboards as PNG from a live Prometheus, for the README and for reviews.

    python -m grafana.preview grafana/*.json --prometheus http://localhost:9090 --out docs/dashboards \\
        [--from now-1h] [--to now] [--scrape-interval 15s] [--var node=gpu-node-1]

Every panel's queries run over the time range with template variables substituted as Grafana does;
the PNG is laid out on the dashboard's grid. Panels that returned nothing are listed on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time as clock
from collections import defaultdict
from pathlib import Path

from grafana.panels import TimeRange, run_dashboard
from grafana.prometheus_api import PrometheusApi, PrometheusError
from grafana.render import render
from grafana.templating import parse_duration


def parse_time(text: str, now: float) -> float:
    """``now``, ``now-15m`` or unix seconds."""
    if text == "now":
        return now
    if text.startswith("now-"):
        return now - parse_duration(text[4:]) / 1000
    return float(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grafana.preview",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dashboards", nargs="+", type=Path, metavar="DASHBOARD.json")
    parser.add_argument("--prometheus", required=True, metavar="URL", help="Prometheus base URL")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="where the PNGs go")
    parser.add_argument("--from", dest="start", default="now-1h", help="start: now-DURATION or unix seconds")
    parser.add_argument("--to", dest="end", default="now", help="end: now, now-DURATION or unix seconds")
    parser.add_argument(
        "--scrape-interval", default="15s", help="the datasource's scrape interval (floors $__interval)"
    )
    parser.add_argument(
        "--var", action="append", default=[], metavar="NAME=VALUE", help="a variable's value (repeatable)"
    )
    args = parser.parse_args(argv)
    now = clock.time()
    time = TimeRange(
        parse_time(args.start, now), parse_time(args.end, now), parse_duration(args.scrape_interval)
    )
    overrides: dict[str, list[str]] = defaultdict(list)
    for assignment in args.var:
        name, _, value = assignment.partition("=")
        overrides[name].append(value)
    api = PrometheusApi(args.prometheus)
    for path in args.dashboards:
        dashboard = json.loads(path.read_text())
        try:
            data = run_dashboard(dashboard, api, time, overrides)
        except (PrometheusError, ValueError) as error:
            print(f"{path}: {error}", file=sys.stderr)
            return 1
        out = render(dashboard, data, time, args.out / f"{path.stem}.png")
        print(f"wrote {out}")
        for panel in data:
            if panel.panel.get("targets") and panel.empty:
                errors = "; ".join(r.error for r in panel.results if r.error)
                print(f"  no data: {panel.panel.get('title')}" + (f" ({errors})" if errors else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

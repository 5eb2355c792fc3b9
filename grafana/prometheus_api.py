"""The few Prometheus HTTP API calls a dashboard preview makes."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


class PrometheusError(Exception):
    """Prometheus refused a query (its error text), or could not be reached."""


@dataclass(frozen=True)
class Series:
    """One series of a result: its labels and (unix seconds, value) points."""

    labels: Mapping[str, str]
    points: Sequence[tuple[float, float]]


class PrometheusApi:
    """A Prometheus at ``url``: range and instant queries, label values."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        self._url = url.rstrip("/")
        self._timeout = timeout

    def _get(self, path: str, params: Sequence[tuple[str, str]]) -> Any:
        url = f"{self._url}/api/v1/{path}?{urllib.parse.urlencode(list(params))}"
        try:
            with urllib.request.urlopen(url, timeout=self._timeout) as response:  # noqa: S310 - the user's Prometheus
                body = json.load(response)
        except urllib.error.HTTPError as error:
            try:
                body = json.loads(error.read())
            except ValueError:
                raise PrometheusError(f"{error.code} from {url}") from error
        except (urllib.error.URLError, OSError) as error:
            raise PrometheusError(f"cannot reach {self._url}: {error}") from error
        if body.get("status") != "success":
            raise PrometheusError(f"{body.get('errorType', 'error')}: {body.get('error', body)}")
        return body["data"]

    def query_range(self, expr: str, start: float, end: float, step_seconds: float) -> list[Series]:
        data = self._get(
            "query_range",
            [
                ("query", expr),
                ("start", f"{start:.3f}"),
                ("end", f"{end:.3f}"),
                ("step", f"{step_seconds:g}"),
            ],
        )
        return [
            Series(item["metric"], [(float(t), float(v)) for t, v in item["values"]])
            for item in data["result"]
        ]

    def query(self, expr: str, at: float) -> list[Series]:
        data = self._get("query", [("query", expr), ("time", f"{at:.3f}")])
        if data["resultType"] == "scalar":
            time, value = data["result"]
            return [Series({}, [(float(time), float(value))])]
        return [
            Series(item["metric"], [(float(item["value"][0]), float(item["value"][1]))])
            for item in data["result"]
        ]

    def label_values(self, label: str, match: str | None, start: float, end: float) -> list[str]:
        params = [("start", f"{start:.3f}"), ("end", f"{end:.3f}")]
        if match:
            params.append(("match[]", match))
        return sorted(self._get(f"label/{urllib.parse.quote(label)}/values", params))

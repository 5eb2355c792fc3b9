"""A small client of Prometheus' HTTP API: instant queries and series listing, with timeouts and auth.

Every failure (unreachable, slower than the timeout, an HTTP error, an answer that is not the API's
JSON) is a ``BackendUnavailable`` with a message that says which. After a failure to reach
Prometheus at all, calls fail at once for ``retry_seconds`` so that a hung Prometheus costs one
timeout, not one per request; ``probe`` (the backend's periodic discovery) tries regardless.
"""

from __future__ import annotations

import json
import math
import ssl
import string
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote_plus

import aiohttp

from adapter.backends.base import BackendUnavailable

TOKEN_REFRESH_SECONDS = 60.0
FORM_TYPE = "application/x-www-form-urlencoded"


class QueryRejected(BackendUnavailable):
    """Prometheus refused the query (HTTP 400/422) or it is not an instant vector: a rule is wrong."""


@dataclass(frozen=True)
class PrometheusOptions:
    """Where Prometheus is and how to talk to it."""

    url: str
    timeout_seconds: float = 3.0
    retry_seconds: float = 2.0
    bearer_token_file: Path | None = None
    ca_file: Path | None = None
    insecure_skip_verify: bool = False


class VectorSample(NamedTuple):
    """One element of an instant-vector result."""

    labels: Mapping[str, str]
    value: float
    timestamp: float


def _ssl_context(options: PrometheusOptions) -> ssl.SSLContext | bool:
    if options.insecure_skip_verify:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if options.ca_file is not None:
        return ssl.create_default_context(cafile=str(options.ca_file))
    return True


def parse_vector(body: Any) -> list[VectorSample]:
    """Samples from an instant-query answer; non-finite values (e.g. 0/0) are left out.

    The labels are the decoded JSON object itself: Prometheus' API writes label names and values as
    strings, and copying a dict per result was a third of reading a thousand-pod answer.
    """
    try:
        data = body["data"]
        if data["resultType"] != "vector":
            raise QueryRejected(f"the query returned a {data['resultType']}, not an instant vector")
        samples = []
        for item in data["result"]:
            timestamp, text = item["value"]
            value = float(text)
            labels = item["metric"]
            if not isinstance(labels, dict):
                raise TypeError(f"a result's metric is {type(labels).__name__}, not an object")
            if math.isfinite(value):
                samples.append(VectorSample(labels, value, float(timestamp)))
    except (KeyError, TypeError, ValueError) as exc:
        raise BackendUnavailable(f"Prometheus' answer is not an instant-query result ({exc!r})") from None
    return samples


class PrometheusClient:
    """Prometheus' ``/api/v1`` over one ``aiohttp`` session; ``start`` before use, ``close`` after."""

    def __init__(self, options: PrometheusOptions, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._options = options
        self._base = options.url.rstrip("/")
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._token = ""
        self._token_read_at = -math.inf
        self._down_until = -math.inf
        self._down_reason = ""

    @property
    def url(self) -> str:
        return self._base

    async def start(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=_ssl_context(self._options))
            # Uncompressed answers: Prometheus and the adapter share a cluster network, where gzip of a
            # thousand-pod answer (~100 kB) costs both ends more CPU time than the bytes take to send.
            headers = {"Accept-Encoding": "identity"}
            self._session = aiohttp.ClientSession(connector=connector, headers=headers)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def query(self, promql: str, *, at: float | None = None) -> list[VectorSample]:
        """An instant query (sent as a POST form, so long matcher lists fit)."""
        form = {"query": promql, **({"time": f"{at:.3f}"} if at is not None else {})}
        return parse_vector(await self._call("query", form))

    async def has_series(self, selector: str, *, since: float, probe: bool = False) -> bool:
        """Whether any series matching ``selector`` had a sample since ``since`` (unix seconds)."""
        body = await self._call(
            "series", {"match[]": selector, "start": f"{since:.3f}", "end": f"{time.time():.3f}"}, probe=probe
        )
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise BackendUnavailable("Prometheus' answer to a series listing is not a list")
        return bool(data)

    def _headers(self) -> dict[str, str]:
        path = self._options.bearer_token_file
        if path is None:
            return {}
        # Projected service-account tokens rotate; re-read the file now and then.
        if self._clock() - self._token_read_at > TOKEN_REFRESH_SECONDS:
            try:
                self._token = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise BackendUnavailable(
                    f"cannot read the Prometheus bearer token {path}: {exc.strerror}"
                ) from None
            self._token_read_at = self._clock()
        return {"Authorization": f"Bearer {self._token}"}

    async def _call(self, endpoint: str, form: Mapping[str, str], *, probe: bool = False) -> Any:
        session = self._session
        if session is None:
            raise RuntimeError("PrometheusClient.start() was not called")
        if not probe and self._clock() < self._down_until:
            raise BackendUnavailable(self._down_reason)
        url = f"{self._base}/api/v1/{endpoint}"
        timeout = self._options.timeout_seconds
        body = form_encoded(form)
        headers = {"Content-Type": FORM_TYPE, **self._headers()}
        try:
            async with session.post(
                url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                # json.loads reads UTF-8 bytes itself: no decoded copy of a large answer.
                answer = await response.read()
                status = response.status
        except TimeoutError:
            raise self._down(f"Prometheus at {self._base} did not answer within {timeout:g}s") from None
        except aiohttp.ClientError as exc:
            raise self._down(
                f"cannot reach Prometheus at {self._base}: {exc or type(exc).__name__}"
            ) from None
        self._down_until = -math.inf
        return _decode(status, answer)

    def _down(self, reason: str) -> BackendUnavailable:
        self._down_until = self._clock() + self._options.retry_seconds
        self._down_reason = f"{reason} (not retried for {self._options.retry_seconds:g}s)"
        return BackendUnavailable(reason)


# Characters a form value keeps as they are (``urllib.parse.quote_plus``'s safe set).
_FORM_SAFE = frozenset(string.ascii_letters + string.digits + "_.-~")


def form_encoded(form: Mapping[str, str]) -> bytes:
    """``application/x-www-form-urlencoded`` bytes of ``form``, as Go's ``ParseForm`` reads them.

    ``urlencode`` looks every character up in Python, about a millisecond for the regex of a
    thousand pods; ``str.replace`` of each distinct unsafe character does the same in C.
    """
    return "&".join(f"{_form_escaped(key)}={_form_escaped(value)}" for key, value in form.items()).encode()


def _form_escaped(text: str) -> str:
    if not text.isascii():
        return quote_plus(text)
    # "%" first, so that no escape is escaped again; the escapes themselves are safe characters.
    for char in sorted(set(text) - _FORM_SAFE, key=lambda char: char != "%"):
        text = text.replace(char, f"%{ord(char):02X}")
    return text


def _decode(status: int, text: bytes) -> Any:
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if status in (400, 422) and error:
        raise QueryRejected(f"Prometheus rejected the query: {body.get('errorType', 'error')}: {error}")
    if status != 200:
        detail = f": {error}" if error else ""
        raise BackendUnavailable(f"Prometheus answered HTTP {status}{detail}")
    if not isinstance(body, dict) or body.get("status") != "success":
        raise BackendUnavailable("Prometheus' answer is not its API's JSON")
    return body

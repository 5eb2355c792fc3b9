"""Hostile and random input against the running exporter's HTTP surface, on loopback, with a fixed budget.

Whatever arrives (paths, methods, ``Accept`` and ``Accept-Encoding`` headers, ``name[]`` filters,
oversized and malformed requests, random bytes), the exporter answers quickly and never with a 5xx,
and is still serving afterwards; there is no file-serving path to traverse.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.processes import Server, start, survives

ANSWER_WITHIN = 5.0
FUZZ = settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
WORDS = ["metrics", "healthz", "readyz", "", "..", ".", "%2e%2e", "etc", "passwd", "proc", "self", "environ"]


@pytest.fixture(scope="module")
def exporter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory: Path = tmp_path_factory.mktemp("fuzz-exporter")
    server = start(
        "exporter",
        ["--gpu-source", "simulated", "--simulated-gpus", "2", "--host-metrics", "true",
         "--pod-resources-socket", "", "--compat", "dcgm"],
        directory / "exporter.log",
    )  # fmt: skip
    with survives(server, up="/readyz"):
        yield server


def request(server: Server, method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=ANSWER_WITHIN)
    try:
        started = time.monotonic()
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        assert time.monotonic() - started < ANSWER_WITHIN
        return response.status, body
    finally:
        connection.close()


tokens = st.text(st.sampled_from("abcdefxyz0123456789_-.:;,=*/+ "), max_size=40)


@FUZZ
@given(
    parts=st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=12)), max_size=6),
    params=st.lists(
        st.tuples(st.sampled_from(["name[]", "name", "x", ""]) | st.text(max_size=8), st.text(max_size=30)),
        max_size=4,
    ),
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "PATCH"]),
    accept=st.one_of(
        st.sampled_from(
            ["application/openmetrics-text; version=1.0.0", "application/openmetrics-text; version=9",
             "text/plain;version=0.0.4", "*/*", "", ";;;", "application/openmetrics-text;q=x"]
        ),
        tokens,
    ),
    encoding=st.one_of(st.sampled_from(["gzip", "identity", "gzip;q=0", "br, gzip", "*"]), tokens),
)  # fmt: skip
def test_random_requests(  # noqa: PLR0917 - one argument per drawn value
    exporter: Server,
    parts: list[str],
    params: list[tuple[str, str]],
    method: str,
    accept: str,
    encoding: str,
) -> None:
    path = "/" + "/".join(urllib.parse.quote(p, safe="%.") for p in parts)
    if params:
        path += "?" + urllib.parse.urlencode(params)
    status, body = request(exporter, method, path, {"Accept": accept, "Accept-Encoding": encoding})
    assert status < 500, (method, path, accept, encoding, status, body[:200])
    if method == "GET" and path.split("?")[0] == "/metrics":
        assert status == 200


MALFORMED = [
    b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\n",
    b"GET /metrics HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(200)) + b"\r\n",
    b"GET /metrics HTTP/9.9\r\n\r\n",
    b"GET\r\n\r\n",
    bytes(range(256)) * 4,
    b"POST /metrics HTTP/1.1\r\nContent-Length: 100000000\r\n\r\n" + b"z" * 65536,
    b"GET /../../etc/passwd HTTP/1.0\r\n\r\n",
    b"GET /metrics/../../../etc/passwd HTTP/1.0\r\n\r\n",
    b"GET http://evil.example/metrics HTTP/1.0\r\n\r\n",
    b"\r\n\r\n\r\n",
]


@pytest.mark.parametrize("data", MALFORMED, ids=range(len(MALFORMED)))
def test_oversized_and_malformed_requests(exporter: Server, data: bytes) -> None:
    answer = raw_exchange(exporter, data, wait=2.0)
    assert_raw_answer(answer, data[:80])
    assert b"root:" not in answer
    assert exporter.answers("/healthz")


@FUZZ
@given(data=st.binary(max_size=400))
def test_random_bytes_on_the_wire(exporter: Server, data: bytes) -> None:
    assert_raw_answer(raw_exchange(exporter, data + b"\r\n\r\n", wait=0.5), data)


def raw_exchange(server: Server, data: bytes, *, wait: float) -> bytes:
    """Send ``data`` and read until the exporter closes or goes quiet for ``wait`` seconds."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        received = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                received += chunk
        return received


def assert_raw_answer(answer: bytes, what: object) -> None:
    if answer.startswith(b"HTTP/"):
        code = int(answer.split()[1])
        assert code < 500, (what, answer[:300])

"""Hostile and random input against the running adapter over TLS, on loopback, with a fixed budget.

The adapter is the real command line with the in-memory demo cluster behind it
(``tests.fakes.adapter_doubles``) and delegated authentication from files: a client certificate in
``system:masters`` may read everything, anyone else is refused. Whatever arrives, the adapter answers
within a few seconds, never with a 5xx (the doubles never fail, so not even 503), and every error is a
``metav1.Status``; headers never make anyone someone else; TLS below 1.2 is refused; and it is still
healthy afterwards. Malformed HTTP is refused by aiohttp's parser with a plain 400 before any handler
runs, as Go's net/http does in kube-apiserver.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.processes import Server, start, survives
from tests.pki import Pki

GROUP = "/apis/custom.metrics.k8s.io"
ANSWER_WITHIN = 5.0
FUZZ = settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
WORDS = [
    "apis", "custom.metrics.k8s.io", "external.metrics.k8s.io", "v1beta1", "v1beta2", "v3", "namespaces",
    "default", "ml", "pods", "nodes", "metrics", "deployments", "deployments.apps", "jobs.batch", "*",
    "web-0", "node-a", "gpu_utilization", "gpu_memory_used_bytes", "openapi", "healthz", "readyz", "..",
    ".", "", "%2e%2e", "%2F", "etc", "passwd", "~", "\u00e9", "a" * 300,
]  # fmt: skip


@dataclass
class Target:
    server: Server
    pki: Pki
    admin: ssl.SSLContext
    nobody: ssl.SSLContext
    anonymous: ssl.SSLContext


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    directory = tmp_path_factory.mktemp("fuzz-adapter")
    pki = Pki.create(directory)
    server = start(
        "tests.fakes.adapter_doubles",
        [*pki.serving_flags(), "--client-ca-file", str(pki.client_ca_file()), "--log-format", "logfmt"],
        directory / "adapter.log",
        scheme="https",
        tls=pki.client_context(),
    )
    with survives(server, up="/healthz"):
        yield Target(
            server,
            pki,
            admin=pki.client_context("fuzzer", organization="system:masters"),
            nobody=pki.client_context("nobody"),
            anonymous=pki.client_context(),
        )


class Client:
    """One keep-alive HTTPS connection, opened again when the adapter closes it."""

    def __init__(self, target: Target, context: ssl.SSLContext) -> None:
        self._port = target.server.port
        self._context = context
        self._connection: http.client.HTTPSConnection | None = None

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None
    ) -> tuple[int, str, bytes]:
        for attempt in range(2):
            if self._connection is None:
                self._connection = http.client.HTTPSConnection(
                    "127.0.0.1", self._port, context=self._context, timeout=ANSWER_WITHIN
                )
            try:
                self._connection.request(method, path, headers=headers or {})
                response = self._connection.getresponse()
                body = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt:
                    raise
                continue
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return response.status, response.getheader("Content-Type", ""), body
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def assert_answer(status: int, content_type: str, body: bytes, what: object) -> None:
    """No 5xx; every error a Status whose code is the HTTP status."""
    assert status < 500, (what, status, body[:300])
    if status >= 400:
        assert content_type.startswith("application/json"), (what, status, content_type, body[:300])
        document = json.loads(body)
        assert (document["kind"], document["status"], document["code"]) == ("Status", "Failure", status)
        assert isinstance(document["message"], str)


def quoted(segment: str) -> str:
    return urllib.parse.quote(segment, safe="*:@!$&'()+,;=%.~")


segments = st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=20)), max_size=9)
query_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["a in (b", "==", "a=b,c!=d", "!x", "x notin (a,b)", "a>1", "gpu=0", "", "a=" * 50]),
)


@FUZZ
@given(
    parts=segments,
    params=st.dictionaries(
        st.sampled_from(["labelSelector", "metricLabelSelector", "limit", "watch", "x"])
        | st.text(max_size=10),
        query_values,
        max_size=3,
    ),
)
def test_random_paths_and_queries(target: Target, parts: list[str], params: dict[str, str]) -> None:
    client = Client(target, target.admin)
    path = "/" + "/".join(quoted(p) for p in parts)
    if params:
        path += "?" + urllib.parse.urlencode(params)
    started = time.monotonic()
    status, content_type, body = client.request("GET", path)
    assert time.monotonic() - started < ANSWER_WITHIN
    assert_answer(status, content_type, body, path)
    client.close()


metric_paths = st.builds(
    lambda version, shape, name, metric: (
        f"{GROUP}/{version}/" + shape.format(name=quoted(name), metric=quoted(metric))
    ),
    st.sampled_from(["v1beta1", "v1beta2"]),
    st.sampled_from(
        [
            "namespaces/default/pods/{name}/{metric}",
            "nodes/{name}/{metric}",
            "namespaces/{name}/metrics/{metric}",
            "namespaces/default/deployments.apps/{name}/{metric}",
            "namespaces/{name}/{metric}",
        ]
    ),
    st.one_of(st.sampled_from(["*", "web-0", "node-a", "web", "default"]), st.text(min_size=1, max_size=30)),
    st.one_of(
        st.sampled_from(["gpu_utilization", "gpu_memory_used_bytes"]), st.text(min_size=1, max_size=30)
    ),
)


@FUZZ
@given(path=metric_paths, selector=query_values, metric_selector=query_values)
def test_random_objects_metrics_and_selectors(
    target: Target, path: str, selector: str, metric_selector: str
) -> None:
    client = Client(target, target.admin)
    query = urllib.parse.urlencode({"labelSelector": selector, "metricLabelSelector": metric_selector})
    status, content_type, body = client.request("GET", f"{path}?{query}")
    assert_answer(status, content_type, body, path)
    if status == 200:
        assert json.loads(body)["kind"] in {"MetricValueList", "APIResourceList"}
    client.close()


header_names = st.one_of(
    st.sampled_from(
        ["X-Remote-User", "X-Remote-Group", "X-Remote-Extra-Scopes", "Impersonate-User", "Authorization",
         "Accept", "Accept-Encoding", "Content-Type", "Host", "X-Forwarded-For", "Content-Length"]
    ),
    st.text(st.sampled_from("abcXYZ-_0123456789"), min_size=1, max_size=20),
)  # fmt: skip
header_values = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


@FUZZ
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"]),
    headers=st.dictionaries(header_names, header_values, max_size=5),
)
def test_headers_never_authenticate_and_every_method_is_a_status(
    target: Target, method: str, headers: dict[str, str]
) -> None:
    headers = {k: v for k, v in headers.items() if k.lower() not in {"content-length", "host"}}
    pod = f"{GROUP}/v1beta1/namespaces/default/pods/web-0/gpu_utilization"
    for context, allowed in ((target.anonymous, False), (target.nobody, False), (target.admin, True)):
        client = Client(target, context)
        status, content_type, body = client.request(method, pod, headers)
        client.close()
        if method == "HEAD":
            assert status < 500
            continue
        assert_answer(status, content_type, body, (method, headers))
        if not allowed:
            # No header makes an anonymous caller or an unprivileged certificate someone else.
            assert status in {401, 403}, (method, headers, status, body)
        elif method == "GET":
            assert status in {200, 400, 406}, (headers, status, body)


MANY_HEADERS = b"".join(b"X-%d: v\r\n" % i for i in range(5000))
SMUGGLED = b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /apis HTTP/1.1\r\n\r\n"
MALFORMED = {
    "long path": b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "long header": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\n",
    "many headers": b"GET /healthz HTTP/1.1\r\n" + MANY_HEADERS + b"\r\n",
    "huge body": b"POST /apis HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n" + b"z" * 65536,
    "bad version": b"GET / HTTP/9.9\r\n\r\n",
    "no version": b"GET /\r\n\r\n",
    "binary": bytes(range(256)) * 4,
    "lf only": b"GET /healthz HTTP/1.1\nHost: x\n\n",
    "smuggling": b"POST /apis HTTP/1.1\r\nHost: x\r\n" + SMUGGLED,
    "bad chunk": b"POST /apis HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "space in header name": b"GET /healthz HTTP/1.1\r\nBad Header: x\r\n\r\n",
    "unknown method": b"FOO /apis HTTP/1.1\r\nHost: x\r\n\r\n",
    "nul in path": b"GET /he\x00althz HTTP/1.1\r\nHost: x\r\n\r\n",
    "traversal": b"GET /apis/../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    "absolute url": b"GET https://evil.example/apis HTTP/1.1\r\nHost: x\r\n\r\n",
}


@pytest.mark.parametrize("what", sorted(MALFORMED))
def test_oversized_and_malformed_requests(target: Target, what: str) -> None:
    answer = raw_exchange(target, MALFORMED[what], wait=1.0)
    assert_raw_answer(answer, what)
    assert b"root:" not in answer
    assert target.server.answers("/healthz")


@FUZZ
@given(
    data=st.one_of(
        st.binary(max_size=600),
        st.builds(
            lambda method, target_, version, lines: b"%s %s %s\r\n%s\r\n" % (method, target_, version, lines),
            st.sampled_from([b"GET", b"POST", b"", b"G\x00T", b"get"]),
            st.binary(max_size=60),
            st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b"", b"HTTP/1.1 extra"]),
            st.binary(max_size=200),
        ),
    )
)
def test_random_bytes_on_the_wire(target: Target, data: bytes) -> None:
    assert_raw_answer(raw_exchange(target, data, wait=0.5), data)


def raw_exchange(target: Target, data: bytes, *, wait: float) -> bytes:
    """Send ``data`` over TLS and read until the adapter closes or goes quiet for ``wait`` seconds."""
    with (
        socket.create_connection(("127.0.0.1", target.server.port), timeout=wait) as plain,
        target.admin.wrap_socket(plain, server_hostname="127.0.0.1") as tls,
    ):
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, ssl.SSLEOFError):
            tls.sendall(data)
        received = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError, ssl.SSLError):
            while chunk := tls.recv(65536):
                received += chunk
        return received


def assert_raw_answer(answer: bytes, what: object) -> None:
    """Silence (still waiting for the rest of a request) or closed, or answers with no 5xx."""
    for line in answer.split(b"\r\n"):
        if line.startswith(b"HTTP/1."):
            code = int(line.split()[1])
            assert code < 500, (what, answer[:300])


def test_tls_older_than_1_2_is_refused(target: Target) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    with (
        socket.create_connection(("127.0.0.1", target.server.port), timeout=5) as plain,
        pytest.raises(ssl.SSLError),
    ):
        context.wrap_socket(plain).do_handshake()
    modern = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    target.pki.server_ca.configure_trust(modern)
    modern.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", target.server.port), timeout=5) as plain,
        modern.wrap_socket(plain, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() == "TLSv1.2"


def test_a_certificate_from_another_ca_is_refused_in_the_handshake(target: Target, tmp_path: Path) -> None:
    stranger = Pki.create(tmp_path)
    context = ssl.create_default_context()
    target.pki.server_ca.configure_trust(context)
    stranger.client_ca.issue_cert(
        "x.example", common_name="admin", organization_name="system:masters"
    ).configure_cert(context)
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        Client(target, context).request("GET", "/apis")

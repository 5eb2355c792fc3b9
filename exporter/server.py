"""The exporter's HTTP surface: /metrics, /healthz, /readyz on a threaded WSGI server."""

from __future__ import annotations

import contextlib
import functools
import gzip
import logging
import queue
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, generate_latest, make_wsgi_app
from prometheus_client.exposition import choose_encoder, gzip_accepted
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import exposition as openmetrics
from prometheus_client.utils import floatToGoString

from kgm_common.addresses import ListenAddress

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
Environ = dict[str, Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]

INDEX_PAGE = b"""<html><head><title>kube-gpu-exporter</title></head><body>
<h1>kube-gpu-exporter</h1><ul>
<li><a href="/metrics">/metrics</a></li>
<li><a href="/healthz">/healthz</a></li>
<li><a href="/readyz">/readyz</a></li>
</ul></body></html>
"""


class Readiness:
    """Set once the first full collection has succeeded; /readyz reports it."""

    def __init__(self) -> None:
        self._ready = threading.Event()

    def mark_ready(self) -> None:
        self._ready.set()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()


def _plain(start_response: StartResponse, status: str, body: bytes) -> Iterable[bytes]:
    start_response(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return [body]


# client_python's encoders validate and escape every metric and label name of every sample on each
# scrape, a few microseconds a sample: most of a scrape once pods are attributed. The names here are
# plain ASCII, so the formats scrapers ask for (text 0.0.4, OpenMetrics 1.0.0, underscore escaping)
# are written directly, byte for byte as client_python writes them; whatever this does not cover
# (other versions or escapings, timestamps, exemplars, names that need escaping) goes to its encoders.
_PLAIN_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Per family type: suffix of the name on HELP/TYPE lines and the type written in the text format.
_TEXT_TYPES = {
    "counter": ("_total", "counter"),
    "gauge": ("", "gauge"),
    "info": ("_info", "gauge"),
    "unknown": ("", "untyped"),
}
_TEXT_ONLY_SUFFIXES = ("_created", "_gsum", "_gcount")
_go_float: Callable[[float], str] = floatToGoString


@functools.lru_cache(maxsize=4096)
def _plain_name(name: str) -> bool:
    """Whether both encoders write ``name`` unchanged (a legacy name without colons)."""
    return _PLAIN_NAME.fullmatch(name) is not None


def _escape_value(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


# Label sets repeat from scrape to scrape (the same GPUs, pods and CPUs), so their text is kept.
@functools.lru_cache(maxsize=16384)
def _label_text(items: tuple[tuple[str, str], ...]) -> str | None:
    """``{a="x",b="y"}`` for a sample's labels, sorted by name; ``None`` if a name needs escaping."""
    if not all(_plain_name(key) for key, _ in items):
        return None
    return "{" + ",".join(f'{key}="{_escape_value(value)}"' for key, value in sorted(items)) + "}"


def render_families(families: Sequence[Metric], *, openmetrics_format: bool) -> bytes | None:
    """The text (0.0.4) or OpenMetrics (1.0.0) exposition of ``families``, as client_python writes it.

    ``None`` when a family needs something only client_python's encoders do.
    """
    out: list[str] = []
    for metric in families:
        name = metric.name
        if metric.type not in _TEXT_TYPES or not _plain_name(name):
            return None
        if openmetrics_format:
            help_text = _escape_value(metric.documentation)
            out.append(f"# HELP {name} {help_text}\n# TYPE {name} {metric.type}\n")
            if metric.unit:
                out.append(f"# UNIT {name} {metric.unit}\n")
        else:
            suffix, kind = _TEXT_TYPES[metric.type]
            help_text = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
            out.append(f"# HELP {name}{suffix} {help_text}\n# TYPE {name}{suffix} {kind}\n")
        for sample in metric.samples:
            if (
                sample.value is None
                or sample.timestamp is not None
                or sample.exemplar is not None
                or sample.native_histogram is not None
                or not _plain_name(sample.name)
                or (not openmetrics_format and sample.name[len(name) :] in _TEXT_ONLY_SUFFIXES)
            ):
                return None
            labels = _label_text(tuple(sample.labels.items())) if sample.labels else ""
            if labels is None:
                return None
            out.append(f"{sample.name}{labels} {_go_float(sample.value)}\n")
    if openmetrics_format:
        out.append("# EOF\n")
    return "".join(out).encode("utf-8")


class _Collected:
    """Families already collected, for client_python's encoders when ``render_families`` declines."""

    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return self._families


def _fast_format(environ: Environ) -> tuple[bool, str] | None:
    """(OpenMetrics?, content type) when ``render_families`` can answer this request, else ``None``."""
    if environ.get("REQUEST_METHOD") != "GET" or "name[]" in parse_qs(environ.get("QUERY_STRING", "")):
        return None
    encoder, content_type = choose_encoder(environ.get("HTTP_ACCEPT", ""))
    if encoder is generate_latest:
        return False, content_type
    if (
        isinstance(encoder, functools.partial)
        and encoder.func is openmetrics.generate_latest
        and encoder.keywords == {"escaping": openmetrics.UNDERSCORES, "version": "1.0.0"}
    ):
        return True, content_type
    return None


def _metrics_app(registry: CollectorRegistry) -> WsgiApp:
    """/metrics negotiated as client_python does, answered by ``render_families`` where it can."""
    library_app: WsgiApp = make_wsgi_app(registry)

    def metrics(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        fast = _fast_format(environ)
        if fast is None:
            return library_app(environ, start_response)
        openmetrics_format, content_type = fast
        families = list(registry.collect())
        body = render_families(families, openmetrics_format=openmetrics_format)
        if body is None:
            encoder, _ = choose_encoder(environ.get("HTTP_ACCEPT", ""))
            body = encoder(_Collected(families))
        headers = [("Content-Type", content_type)]
        if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
            body = gzip.compress(body)
            headers.append(("Content-Encoding", "gzip"))
        start_response("200 OK", headers)
        return [body]

    return metrics


def build_app(registry: CollectorRegistry, readiness: Readiness) -> WsgiApp:
    """A WSGI app; /metrics negotiates as client_python's does (format, gzip, ``name[]`` filters)."""
    metrics_app = _metrics_app(registry)

    def healthz(_environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return _plain(start_response, "200 OK", b"ok\n")

    def readyz(_environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if readiness.ready:
            return _plain(start_response, "200 OK", b"ready\n")
        return _plain(start_response, "503 Service Unavailable", b"first collection not finished\n")

    def index(_environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [INDEX_PAGE]

    routes: dict[str, WsgiApp] = {
        "/metrics": metrics_app,
        "/healthz": healthz,
        "/readyz": readyz,
        "/": index,
    }

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") not in {"GET", "HEAD"}:
            return _plain(start_response, "405 Method Not Allowed", b"only GET and HEAD are served\n")
        handler = routes.get(environ.get("PATH_INFO", "/"))
        if handler is None:
            return _plain(start_response, "404 Not Found", b"not found: try /metrics\n")
        return handler(environ, start_response)

    return app


# A scraper sends its request at once; a client that dribbles it (or stops reading the answer) loses
# its connection after this long instead of holding a thread forever.
SOCKET_TIMEOUT_SECONDS = 10.0
# Connections served at once; more are answered 503 at once. Prometheus HA pairs and a few humans
# stay far below it.
MAX_CONNECTIONS = 64
_BUSY_BODY = b"too many connections; try again later\n"
_BUSY = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)


class _QuietHandler(WSGIRequestHandler):
    """Access lines go to debug logging instead of stderr: scrapes every few seconds are noise."""

    timeout = SOCKET_TIMEOUT_SECONDS

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("request", extra={"client": self.address_string(), "line": format % args})


class _ThreadingWSGIServer(WSGIServer):
    """Connections served by a pool of at most ``MAX_CONNECTIONS`` threads, more answered 503 at once;
    ``server_close`` (after ``shutdown``) lets in-flight requests finish, then joins the threads, so a
    SIGTERM lets scrapes complete (each bounded by the socket timeout)."""

    # socketserver.ThreadingMixIn starts a thread per connection, and Thread.start waits for the new
    # thread to run: ~45 us more a scrape than waking a worker already waiting on the queue. Workers
    # are started only when none is idle, so there are never more than connections served at once.
    allow_reuse_address = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._limit = MAX_CONNECTIONS
        self._refusing = False
        # Accepted connections, then one ``None`` per worker to stop them.
        self._accepted: queue.SimpleQueue[tuple[Any, Any] | None] = queue.SimpleQueue()
        self._workers: list[threading.Thread] = []
        # Guarded by ``_lock``: connections in progress (at most ``_limit``) and workers idle.
        self._lock = threading.Lock()
        self._busy = 0
        self._idle = 0
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            admitted = self._busy < self._limit
            if admitted:
                self._busy += 1
                start_worker = self._idle == 0
                if not start_worker:
                    self._idle -= 1
        if not admitted:
            if not self._refusing:
                log.warning("too many connections; answering 503", extra={"limit": self._limit})
            self._refusing = True
            with contextlib.suppress(OSError):
                request.settimeout(1.0)
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        self._refusing = False
        if start_worker:
            self._start_worker()
        self._accepted.put((request, client_address))

    def _start_worker(self) -> None:
        # Daemon, so a server never closed cannot keep the process alive; server_close joins them.
        worker = threading.Thread(target=self._work, name=f"http-worker-{len(self._workers)}", daemon=True)
        try:
            worker.start()
        except BaseException:
            with self._lock:
                self._busy -= 1
            raise
        self._workers.append(worker)

    def _work(self) -> None:
        """Serve connections from the queue as ``ThreadingMixIn``'s threads do, until a ``None``."""
        while (accepted := self._accepted.get()) is not None:
            request, client_address = accepted
            try:
                self.finish_request(request, client_address)
            except Exception:  # noqa: BLE001 - as socketserver: log it, close it, serve the next one
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)
                with self._lock:
                    self._busy -= 1
                    self._idle += 1

    def server_close(self) -> None:
        super().server_close()
        for _ in self._workers:
            self._accepted.put(None)  # behind the connections already queued, which are served first
        for worker in self._workers:
            worker.join()
        self._workers.clear()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (TimeoutError, ConnectionError)):
            log.debug("connection dropped", extra={"client": str(client_address), "error": str(error)})
        else:
            log.exception("request failed", extra={"client": str(client_address)})


def serve(address: ListenAddress, app: WsgiApp) -> WSGIServer:
    """Bind ``address`` (IPv4 or IPv6) and return the server; the caller runs ``serve_forever``."""
    infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family = infos[0][0]

    class Server(_ThreadingWSGIServer):
        address_family = family

    return make_server(address.host, address.port, app, server_class=Server, handler_class=_QuietHandler)

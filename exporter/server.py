"""The exporter's HTTP surface: /metrics, /healthz, /readyz on a threaded WSGI server."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

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


def build_app(registry: CollectorRegistry, readiness: Readiness) -> WsgiApp:
    """A WSGI app; /metrics is client_python's (content negotiation, gzip, ``name[]`` filters)."""
    metrics_app = make_wsgi_app(registry)

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


class _QuietHandler(WSGIRequestHandler):
    """Access lines go to debug logging instead of stderr: scrapes every few seconds are noise."""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("request", extra={"client": self.address_string(), "line": format % args})


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


def serve(address: ListenAddress, app: WsgiApp) -> WSGIServer:
    """Bind ``address`` (IPv4 or IPv6) and return the server; the caller runs ``serve_forever``."""
    infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family = infos[0][0]

    class Server(_ThreadingWSGIServer):
        address_family = family

    return make_server(address.host, address.port, app, server_class=Server, handler_class=_QuietHandler)

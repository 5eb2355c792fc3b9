"""The exporter's HTTP server: a bounded pool of reused worker threads, 503 beyond it, a graceful close."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from wsgiref.simple_server import WSGIServer

import pytest

from exporter import server as exporter_server
from exporter.server import Environ, StartResponse, WsgiApp, serve
from kgm_common.addresses import ListenAddress

LIMIT = 4
Start = Callable[[WsgiApp], WSGIServer]


@pytest.fixture
def start(monkeypatch: pytest.MonkeyPatch) -> Iterator[Start]:
    """Serves an app on a free loopback port with room for ``LIMIT`` connections; stops it afterwards."""
    monkeypatch.setattr(exporter_server, "MAX_CONNECTIONS", LIMIT)
    servers: list[WSGIServer] = []

    def start_serving(app: WsgiApp) -> WSGIServer:
        server = serve(ListenAddress("127.0.0.1", 0), app)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    yield start_serving
    for server in servers:
        server.shutdown()
        server.server_close()


def get(server: WSGIServer) -> tuple[int, bytes]:
    """Status and body of ``GET /`` on a fresh connection."""
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def answer(start_response: StartResponse, body: bytes = b"ok\n") -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def test_connections_up_to_the_limit_are_served_at_once_and_one_more_is_answered_503(start: Start) -> None:
    together = threading.Barrier(LIMIT + 1, timeout=5)  # the requests in the app, and this test

    def app(_environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        together.wait()  # all LIMIT requests are in the app at once
        together.wait()  # and stay there until the one more has been refused
        return answer(start_response)

    server = start(app)
    with ThreadPoolExecutor(LIMIT) as clients:
        answers = [clients.submit(get, server) for _ in range(LIMIT)]
        together.wait()
        status, body = get(server)
        together.wait()
        assert (status, body) == (503, b"too many connections; try again later\n")
        assert [future.result(5) for future in answers] == [(200, b"ok\n")] * LIMIT


def test_sequential_connections_reuse_the_workers(start: Start) -> None:
    served_by: set[threading.Thread] = set()

    def app(_environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        served_by.add(threading.current_thread())
        return answer(start_response)

    server = start(app)
    for _ in range(50):
        assert get(server) == (200, b"ok\n")
    assert 1 <= len(served_by) <= LIMIT


def test_server_close_lets_requests_in_flight_finish_then_joins_the_workers(start: Start) -> None:
    entered = threading.Semaphore(0)
    release = threading.Event()
    served_by: set[threading.Thread] = set()

    def app(_environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        served_by.add(threading.current_thread())
        entered.release()
        release.wait(5)
        return answer(start_response, b"done\n")

    server = start(app)
    with ThreadPoolExecutor(LIMIT) as clients:
        answers = [clients.submit(get, server) for _ in range(LIMIT)]
        assert all(entered.acquire(timeout=5) for _ in range(LIMIT))
        server.shutdown()
        closing = threading.Thread(target=server.server_close)
        closing.start()
        closing.join(0.2)
        assert closing.is_alive()  # waiting for the requests in flight
        release.set()
        closing.join(5)
        assert not closing.is_alive()
        assert [future.result(5) for future in answers] == [(200, b"done\n")] * LIMIT
    assert len(served_by) == LIMIT
    assert not any(worker.is_alive() for worker in served_by)

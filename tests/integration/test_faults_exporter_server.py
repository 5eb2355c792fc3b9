"""The exporter's HTTP server under hostile or unlucky clients, and its process across SIGTERM.

Slow clients lose their connection after the socket timeout, connections beyond the limit are
answered 503 at once, a scrape in flight when SIGTERM arrives completes, and a new process can bind
the same port straight away. The kubelet is a fake one that answers slowly, to hold a scrape open.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from exporter import server as exporter_server
from exporter.server import Readiness, build_app, serve
from kgm_common.addresses import ListenAddress
from tests.fakes.fake_kubelet import Allocation, FakeKubelet, KubeletState
from tests.integration.processes import start
from tests.support import free_port


@pytest.fixture
def small_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """The real server in this process, with a 0.5 s socket timeout and room for 4 connections."""
    monkeypatch.setattr(exporter_server._QuietHandler, "timeout", 0.5)
    monkeypatch.setattr(exporter_server, "MAX_CONNECTIONS", 4)
    readiness = Readiness()
    readiness.mark_ready()
    server = serve(ListenAddress("127.0.0.1", free_port()), build_app(CollectorRegistry(), readiness))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def test_a_client_sending_its_request_slowly_is_cut_off(small_server: int) -> None:
    slow = connect(small_server)
    slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    assert slow.recv(1024) == b""  # closed by the server, without an answer
    assert time.monotonic() - started < 3
    with connect(small_server) as fine:
        fine.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        assert fine.recv(1024).startswith(b"HTTP/1.0 200")


def test_connections_beyond_the_limit_are_answered_503_at_once(small_server: int) -> None:
    held = [connect(small_server) for _ in range(4)]
    for sock in held:
        sock.sendall(b"GET /metrics HTTP/1.1\r\n")  # never finished: each holds a thread
    time.sleep(0.1)
    with connect(small_server) as extra:
        extra.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        answer = extra.recv(1024)
    assert answer.startswith(b"HTTP/1.0 503"), answer
    assert b"too many connections" in answer
    for sock in held:
        sock.close()
    time.sleep(0.6)  # the held threads time out and give their slots back

    with connect(small_server) as again:
        again.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        assert again.recv(1024).startswith(b"HTTP/1.0 200")


def test_sigterm_completes_the_scrape_in_flight_and_the_port_is_reusable_at_once(
    socket_dir: Path, tmp_path: Path
) -> None:
    kubelet = FakeKubelet(
        str(socket_dir / "kubelet.sock"),
        KubeletState(
            [Allocation("ml", "train", "main", "nvidia.com/gpu", ["0"])],
            {"nvidia.com/gpu": ["0"]},
        ),
    )
    kubelet.start()
    flags = [
        "--gpu-source", "simulated", "--simulated-gpus", "1", "--host-metrics", "false",
        "--pod-resources-socket", kubelet.socket_path, "--pod-resources-cache-ttl", "0.01",
    ]  # fmt: skip
    try:
        exporter = start("exporter", flags, tmp_path / "exporter.log")
        exporter.wait_answers("/readyz")
        kubelet.state.delay_seconds = 1.0
        answers: list[tuple[int, bytes]] = []
        scrape = threading.Thread(target=lambda: answers.append(exporter.get("/metrics")))
        scrape.start()
        time.sleep(0.3)
        assert exporter.stop() == 0, exporter.log()
        scrape.join(10)
        status, body = answers[0]
        assert status == 200
        assert b'gpu_allocation_info{container="main"' in body
        assert b"kgm_build_info" in body  # the whole exposition, not a cut one
        assert "shutting down" in exporter.log()

        kubelet.state.delay_seconds = 0.0
        again = start("exporter", flags, tmp_path / "exporter-again.log", port=exporter.port)
        again.wait_answers("/readyz", timeout=10)
        assert again.stop() == 0
    finally:
        kubelet.stop()

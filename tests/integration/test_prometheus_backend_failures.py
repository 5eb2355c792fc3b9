"""The prometheus backend when Prometheus is slow, failing, talking nonsense or gone, and when it returns.

A stub of Prometheus' API on loopback plays each part; the backend must answer 503
(``BackendUnavailable``) within its timeout, say so through ``ready`` (``/readyz``), and recover by
itself once Prometheus answers again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapter.api.app import build_app
from adapter.backends.base import BackendUnavailable, ObjectKey
from adapter.backends.prometheus import PrometheusBackend
from adapter.backends.prometheus_api import PrometheusClient, PrometheusOptions
from adapter.objects.static import StaticResolver
from adapter.rules import builtin
from tests.fakes.stub_prometheus import StubPrometheus
from tests.support import free_port

TIMEOUT = 0.5
POD = ObjectKey("ml", "train-0")
RESULT = [{"metric": {"namespace": "ml", "pod": "train-0"}, "value": [1767323045.0, "42.5"]}]


class StubServer:
    """The stub on a fixed loopback port that can be stopped and started again."""

    def __init__(self, stub: StubPrometheus) -> None:
        self.stub = stub
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.stub.app(), shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest.fixture
async def server() -> AsyncIterator[StubServer]:
    running = StubServer(StubPrometheus(result=list(RESULT)))
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def backend(server: StubServer, tmp_path: Path) -> AsyncIterator[PrometheusBackend]:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    options = PrometheusOptions(
        server.url, timeout_seconds=TIMEOUT, retry_seconds=1.0, bearer_token_file=token
    )
    built = PrometheusBackend(
        builtin("default"), PrometheusClient(options), retry_interval=0.1, track_objects=True
    )
    await built.start()
    await wait_ready(built, True)
    yield built
    await built.close()


async def wait_ready(backend: PrometheusBackend, ready: bool, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while backend.ready != ready:
        assert time.monotonic() < deadline, f"ready stayed {backend.ready}: {backend.error}"
        await asyncio.sleep(0.02)


async def read(backend: PrometheusBackend) -> dict[ObjectKey, float]:
    return {
        key: sample.value for key, sample in (await backend.values("gpu_utilization", "pods", [POD])).items()
    }


async def test_answers_with_the_token_and_the_objects(backend: PrometheusBackend, server: StubServer) -> None:
    assert await read(backend) == {POD: 42.5}
    endpoint, form, authorization = server.stub.requests[-1]
    assert (endpoint, authorization) == ("query", "Bearer s3cret")
    assert 'namespace="ml", pod="train-0"' in form["query"]
    assert "[60s]" in form["query"]
    sample = (await backend.values("gpu_utilization", "pods", [POD]))[POD]
    assert (sample.timestamp, sample.window_seconds) == (1767323045.0, 60)


async def test_slow_prometheus_is_a_fast_503_then_recovers(
    backend: PrometheusBackend, server: StubServer
) -> None:
    server.stub.mode = "sleep"
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match=f"did not answer within {TIMEOUT:g}s"):
        await read(backend)
    assert time.monotonic() - started < TIMEOUT + 0.5
    assert not backend.ready
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="not retried"):
        await read(backend)
    assert time.monotonic() - started < 0.1

    server.stub.mode = "ok"
    await wait_ready(backend, True)
    assert await read(backend) == {POD: 42.5}


@pytest.mark.parametrize(
    ("mode", "message"),
    [("error", "HTTP 500: boom"), ("garbage", "not its API's JSON")],
)
async def test_failing_prometheus_is_a_503_then_recovers(
    backend: PrometheusBackend, server: StubServer, mode: str, message: str
) -> None:
    server.stub.mode = mode
    with pytest.raises(BackendUnavailable, match=message):
        await read(backend)
    assert not backend.ready
    server.stub.mode = "ok"
    await wait_ready(backend, True)
    assert await read(backend) == {POD: 42.5}


@pytest.mark.parametrize(
    ("mode", "message"), [("reject", "rejected the query: bad_data"), ("matrix", "not an instant")]
)
async def test_a_broken_rule_is_a_503_naming_it_but_prometheus_stays_up(
    backend: PrometheusBackend, server: StubServer, mode: str, message: str
) -> None:
    server.stub.mode = mode
    with pytest.raises(BackendUnavailable, match=f"rule gpu_utilization: .*{message}"):
        await read(backend)
    assert backend.ready


async def test_prometheus_gone_then_back(backend: PrometheusBackend, server: StubServer) -> None:
    await server.stop()
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match="cannot reach Prometheus"):
        await read(backend)
    assert time.monotonic() - started < TIMEOUT
    await wait_ready(backend, False)
    await server.start()
    await wait_ready(backend, True)
    assert await read(backend) == {POD: 42.5}


async def test_through_the_api_503_and_readyz(backend: PrometheusBackend, server: StubServer) -> None:
    app = build_app(backend, StaticResolver(backend))
    path = "/apis/custom.metrics.k8s.io/v1beta1/namespaces/ml/pods/train-0/gpu_utilization"
    async with TestClient(TestServer(app)) as client:
        ok = await client.get(path)
        assert ok.status == 200, await ok.text()
        assert (await ok.json())["items"][0]["value"] == "42500m"
        assert (await client.get("/readyz")).status == 200

        server.stub.mode = "error"
        failed = await client.get(path)
        assert failed.status == 503
        status = await failed.json()
        assert (status["kind"], status["code"]) == ("Status", 503)
        assert "HTTP 500" in status["message"]
        readyz = await client.get("/readyz")
        assert readyz.status == 503
        assert "backend not ready" in await readyz.text()

        server.stub.mode = "ok"
        await wait_ready(backend, True)
        assert (await client.get("/readyz")).status == 200
        assert (await client.get(path)).status == 200

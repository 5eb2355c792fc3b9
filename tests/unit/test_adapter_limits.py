"""The in-flight limit: requests beyond it are a 429 Status with Retry-After; probes always answer."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from adapter.api.app import build_app
from adapter.backends.base import MetricSample, ObjectKey
from adapter.selectors import Selector
from tests.fakes.adapter_doubles import FakeBackend, demo_cluster

POD = "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/web-0/gpu_utilization"


class HeldBackend(FakeBackend):
    """Reads wait until the test releases them."""

    release: asyncio.Event

    async def values(
        self,
        metric: str,
        resource: str,
        objects: Sequence[ObjectKey],
        metric_selector: Selector | None = None,
    ) -> Mapping[ObjectKey, MetricSample]:
        await self.release.wait()
        return await super().values(metric, resource, objects, metric_selector)


async def test_requests_beyond_the_limit_are_429_and_probes_still_answer() -> None:
    demo, resolver = demo_cluster()
    backend = HeldBackend(samples=demo.samples)
    backend.release = asyncio.Event()
    async with TestClient(TestServer(build_app(backend, resolver, max_in_flight=2))) as client:
        held: list[asyncio.Task[Any]] = [asyncio.create_task(client.get(POD)) for _ in range(2)]
        await asyncio.sleep(0.1)
        refused = await client.get(POD)
        assert refused.status == 429
        assert refused.headers["Retry-After"] == "1"
        status = await refused.json()
        assert (status["kind"], status["reason"], status["code"]) == ("Status", "TooManyRequests", 429)
        assert status["details"] == {"retryAfterSeconds": 1}
        assert (await client.get("/healthz")).status == 200
        assert (await client.get("/readyz")).status == 200

        backend.release.set()
        assert [(await task).status for task in held] == [200, 200]
        assert (await client.get(POD)).status == 200

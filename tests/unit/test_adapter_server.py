"""The adapter's HTTPS server: idle and half-sent connections are closed, requests in progress are not."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from adapter.server import serve
from adapter.tls import self_signed_pair, server_context
from kgm_common.addresses import ListenAddress
from tests.support import free_port

IDLE = 0.5


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(IDLE * 3)
    return web.Response(text="done")


@pytest.fixture
async def port(tmp_path: Path) -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_get("/slow", slow)
    chosen = free_port()
    context = server_context(self_signed_pair(tmp_path))
    task = asyncio.create_task(serve(app, ListenAddress("127.0.0.1", chosen), context, idle_seconds=IDLE))
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", chosen)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        break
    yield chosen
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return await asyncio.open_connection("127.0.0.1", port, ssl=context)


async def test_a_request_sent_a_byte_at_a_time_is_cut_off(port: int) -> None:
    reader, writer = await connect(port)
    writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await asyncio.wait_for(reader.read(), timeout=IDLE * 6) == b""
    assert loop.time() - started < IDLE * 4
    writer.close()


async def test_a_request_in_progress_outlives_the_idle_limit(port: int) -> None:
    reader, writer = await connect(port)
    writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), timeout=IDLE * 8)
    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.endswith(b"done")
    # Kept alive afterwards, then idle: closed.
    assert await asyncio.wait_for(reader.read(), timeout=IDLE * 6) == b""
    writer.close()

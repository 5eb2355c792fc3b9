"""Serving the application over HTTPS until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import ssl
import time
from collections.abc import Callable, Sequence

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler

from kgm_common.addresses import ListenAddress

log = logging.getLogger(__name__)

# A connection with no request in progress for this long is closed: aiohttp waits for a request's
# headers without a deadline, so a client sending them a byte at a time (slowloris) would otherwise
# hold its connection for good. Kept-alive connections between requests count as idle too.
IDLE_SECONDS = 60.0
# In-flight requests finish within this after SIGTERM; the kubelet's default grace period is 30 s.
SHUTDOWN_SECONDS = 20.0


class _MalformedRequests(logging.Filter):
    """aiohttp logs a traceback at ERROR for each request its parser refuses, although it has answered
    400 already; one debug line is enough, and a client cannot flood the log with tracebacks."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            log.debug("malformed request refused", extra={"error": str(error).strip()})
            return False
        return True


_http_log = logging.getLogger(f"{__name__}.http")
_http_log.addFilter(_MalformedRequests())


class IdleConnections:
    """Tracks which connections have a request in progress and closes those idle too long."""

    def __init__(self, limit: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self._clock = clock
        self._busy: dict[object, int] = {}
        self._idle_since: dict[object, float] = {}

        @web.middleware
        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            protocol = request.protocol
            self._busy[protocol] = self._busy.get(protocol, 0) + 1
            try:
                return await handler(request)
            finally:
                self._busy[protocol] -= 1
                if not self._busy[protocol]:
                    del self._busy[protocol]
                    self._idle_since[protocol] = self._clock()

        self.middleware = middleware

    def sweep(self, connections: Sequence[web.RequestHandler]) -> int:
        """Close the idle ones among ``connections`` (all open now); returns how many were closed."""
        now = self._clock()
        open_now = set(connections)
        for gone in self._idle_since.keys() - open_now:
            del self._idle_since[gone]
        closed = 0
        for connection in connections:
            if connection in self._busy:
                continue
            if now - self._idle_since.setdefault(connection, now) >= self.limit:
                connection.force_close()
                del self._idle_since[connection]
                closed += 1
        return closed


async def _sweep_forever(idle: IdleConnections, server: web.Server) -> None:
    while True:
        await asyncio.sleep(idle.limit / 4)
        closed = idle.sweep(server.connections)
        if closed:
            log.debug("closed idle connections", extra={"count": closed, "idle_seconds": idle.limit})


async def serve(
    app: web.Application,
    listen: ListenAddress,
    context: ssl.SSLContext,
    *,
    idle_seconds: float = IDLE_SECONDS,
) -> None:
    """Start the app (its startup hooks), serve, and on a signal stop accepting, let requests in flight
    finish, and run its cleanup."""
    idle = IdleConnections(idle_seconds)
    # Outermost, so a request refused early (401, 429) still counts as activity on its connection.
    app.middlewares.insert(0, idle.middleware)
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        logger=_http_log,
        keepalive_timeout=idle_seconds,
        shutdown_timeout=SHUTDOWN_SECONDS,
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    sweeper: asyncio.Task[None] | None = None
    try:
        # A TLS handshake left unfinished is dropped by asyncio after its own 60 s.
        site = web.TCPSite(runner, listen.host, listen.port, ssl_context=context, reuse_address=True)
        await site.start()
        # What exists now (the modules, the app, the clients) lives as long as the process. Left to
        # the collector, every full collection would walk its ~70 000 objects again, 15-20 ms that
        # land on whichever request is running: the answers' tail.
        gc.freeze()
        assert runner.server is not None
        sweeper = asyncio.create_task(_sweep_forever(idle, runner.server), name="idle-connections")
        log.info("serving", extra={"listen": str(listen), "tls": True})
        await stop.wait()
        log.info("shutting down")
    finally:
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        await runner.cleanup()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    log.info("stopped")

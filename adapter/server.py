"""Serving the application over HTTPS until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl

from aiohttp import web

from kgm_common.addresses import ListenAddress

log = logging.getLogger(__name__)


async def serve(app: web.Application, listen: ListenAddress, context: ssl.SSLContext) -> None:
    """Start the app (its startup hooks), serve, and on a signal stop accepting and run its cleanup."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        site = web.TCPSite(runner, listen.host, listen.port, ssl_context=context)
        await site.start()
        log.info("serving", extra={"listen": str(listen), "tls": True})
        await stop.wait()
        log.info("shutting down")
    finally:
        await runner.cleanup()
    log.info("stopped")

"""Starting the real exporter and adapter (or their test launchers) as processes, and reading them back.

For the fault, fuzz, shutdown and soak tests: each process gets a free loopback port and a log file,
and ``stop`` (SIGTERM, then SIGKILL) always reaps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.pki import Pki
from tests.support import RunningProcess, free_port

REPO = Path(__file__).resolve().parents[2]


# ``start``'s processes and the adapter's certificates, by the names bench/soak.py imports.
Server = RunningProcess
AdapterPki = Pki


def spawn(
    module: str, args: list[str], log_path: Path, *, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``python -m module args`` from the repository, its stderr appended to ``log_path``."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )


def start(
    module: str,
    args: list[str],
    log_path: Path,
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    scheme: str = "http",
    tls: ssl.SSLContext | None = None,
) -> RunningProcess:
    """``python -m module --listen 127.0.0.1:PORT args``, its stderr in ``log_path``."""
    port = port or free_port()
    process = spawn(module, ["--listen", f"127.0.0.1:{port}", *args], log_path, env=env)
    return RunningProcess(process, port, log_path, scheme, tls)


@contextlib.contextmanager
def survives(server: RunningProcess, *, up: str) -> Iterator[RunningProcess]:
    """``server`` once ``up`` answers 200; at the end it must still be ready, have logged no traceback,
    and exit 0 on SIGTERM."""
    try:
        server.wait_answers(up)
        yield server
        assert server.answers("/readyz")
        assert "Traceback" not in server.log(), server.log()
    finally:
        assert server.stop() == 0, server.log()


def metrics(server: RunningProcess) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The exporter's /metrics as family name (without ``_total``) -> [(labels, value)]."""
    status, body = server.get("/metrics")
    assert status == 200, body
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(body.decode()):
        found[family.name] = [(s.labels, s.value) for s in family.samples if not s.name.endswith("_created")]
    return found


def value(found: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float | None:
    """The one sample of ``name`` whose labels include ``labels``, or ``None``."""
    matching = [v for got, v in found.get(name, []) if labels.items() <= got.items()]
    assert len(matching) <= 1, (name, labels, matching)
    return matching[0] if matching else None


def write_json(path: Path, document: Any) -> None:
    """Replace ``path`` atomically, so a reader never sees half a file."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(document))
    partial.replace(path)


class ThreadedApp:
    """An aiohttp application served on loopback from a thread of its own; stop and start it at will."""

    def __init__(self, app: web.Application, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ThreadedApp:
        async def start() -> None:
            self._runner = web.AppRunner(self.app, shutdown_timeout=0.1)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

        asyncio.run_coroutine_threadsafe(start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        async def stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
                self._runner = None
            pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

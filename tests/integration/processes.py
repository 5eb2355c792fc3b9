"""Starting the real exporter and adapter (or their test launchers) as processes, and reading them back.

For the fault, fuzz, shutdown and soak tests: each process gets a free loopback port and a log file,
and ``stop`` (SIGTERM, then SIGKILL) always reaps it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.support import free_port, wait_until

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Server:
    """A server process on loopback: its URL, its log, and how to reach it over TLS when it is the adapter."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    scheme: str = "http"
    tls: ssl.SSLContext | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(
        self, path: str, *, timeout: float = 5.0, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """Status and body of ``GET path``; HTTP errors are answers too."""
        request = urllib.request.Request(self.url + path, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self.tls) as response:
                return int(response.status), response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def answers(self, path: str, code: int = 200) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"{self.process.args!r} exited with {self.process.returncode}:\n{self.log()}")
        try:
            return self.get(path, timeout=2)[0] == code
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def wait_answers(self, path: str, code: int = 200, timeout: float = 30) -> None:
        def answering() -> bool:
            return self.answers(path, code)

        answering.__name__ = f"{path} answers {code}"
        wait_until(answering, timeout=timeout)

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, wait, SIGKILL if it hangs; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return int(self.process.returncode)


def start(
    module: str,
    args: list[str],
    log_path: Path,
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    scheme: str = "http",
    tls: ssl.SSLContext | None = None,
) -> Server:
    """``python -m module --listen 127.0.0.1:PORT args``, its stderr in ``log_path``."""
    port = port or free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module, "--listen", f"127.0.0.1:{port}", *args],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    return Server(process, port, log_path, scheme, tls)


def metrics(server: Server) -> dict[str, list[tuple[dict[str, str], float]]]:
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


@dataclass
class AdapterPki:
    """A serving certificate for 127.0.0.1 and a client CA with one user certificate."""

    directory: Path
    server_ca: trustme.CA
    client_ca: trustme.CA

    @classmethod
    def create(cls, directory: Path) -> AdapterPki:
        return cls(directory, trustme.CA(), trustme.CA())

    def serving_flags(self) -> list[str]:
        leaf = self.server_ca.issue_cert("127.0.0.1", "localhost")
        cert, key = self.directory / "adapter.crt", self.directory / "adapter.key"
        cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(key))
        return ["--tls-cert-file", str(cert), "--tls-private-key-file", str(key)]

    def client_ca_file(self) -> Path:
        path = self.directory / "client-ca.pem"
        self.client_ca.cert_pem.write_to_path(str(path))
        return path

    def client_context(self, user: str | None = None, *, organization: str | None = None) -> ssl.SSLContext:
        """Trusts the serving CA; presents a certificate for ``user`` when given."""
        context = ssl.create_default_context()
        self.server_ca.configure_trust(context)
        if user is not None:
            self.client_ca.issue_cert(
                f"{user}.example", common_name=user, organization_name=organization
            ).configure_cert(context)
        return context


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

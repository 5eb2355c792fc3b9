"""Helpers shared by the test suites: free ports, required programs, waiting for servers, server processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_program(name: str, *candidates: str) -> str:
    """Path of a program the test needs; missing is a failure in CI (setup broke) and a skip elsewhere."""
    for candidate in (name, *candidates):
        found = shutil.which(candidate) or (candidate if os.access(candidate, os.X_OK) else None)
        if found:
            return found
    message = f"{name} is not installed; scripts/test installs it"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def stop_process(process: subprocess.Popen[Any], timeout: float = 10) -> int:
    """SIGTERM, wait up to ``timeout``, SIGKILL if it hangs; returns the exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return int(process.returncode)


def wait_until(predicate: Callable[[], bool], *, timeout: float = 20.0, interval: float = 0.05) -> None:
    """Poll ``predicate`` until it is true; fail the test with a clear message after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s: {getattr(predicate, '__name__', predicate)}")


def http_ok(url: str) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@dataclass
class RunningProcess:
    """A server process a test started on a loopback port, with the file its output goes to.

    ``tls`` is how to reach it when it serves HTTPS (the adapter).
    """

    name: ClassVar[str] = "process"

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
        """Whether ``path`` answers ``code`` now; the process having exited fails the test with its log."""
        if self.process.poll() is not None:
            pytest.fail(
                f"{self.name} {self.process.args!r} exited with {self.process.returncode}:\n{self.log()}"
            )
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
        return stop_process(self.process, timeout)

    def kill(self) -> None:
        """Kill the process if it still runs, and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)

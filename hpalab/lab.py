"""Live lab: a whole experiment on one machine, exporter -> adapter -> HPA decisions -> replicas.

``kube-gpu-hpa lab`` starts two real processes on free loopback ports: the exporter, whose simulated
GPUs and pods follow the scenario (``--scenario``), and the adapter (``--backend direct``,
``--insecure-local``) reading it. Every sync the lab makes the HPA controller's requests to the adapter
(``hpalab.watch.observe``), decides with ``hpalab.algorithm`` in the same loop as ``simulate``
(``hpalab.simulate.replay``), and writes the replicas it decides to the exporter's control file, where
the exporter picks them up: new pods appear, Pending for the scenario's startup time, and the load is
shared by more GPUs at the next scrapes.

Time is scenario time, ``speed`` scenario seconds per real second; the control file's ``start`` gives
the exporter the same clock. The adapter's averaging window and scrape interval are given in scenario
seconds too and scaled: the window, a whole number of real seconds, is what lags behind the load, as
the adapter's 60 s window does in a cluster.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import IO

from hpalab.algorithm import ControllerConfig, Observation
from hpalab.hpa_spec import HorizontalPodAutoscaler, MetricSpec, SourceType
from hpalab.simulate import Step, manual_changes, replay, scenario_initial_replicas
from hpalab.watch import CUSTOM, AdapterClient, observe, tls_context
from kgm_common.scenario import Scenario, ScenarioPod

log = logging.getLogger("hpalab.lab")

CONTROL_FILE = "control"
STOP_TIMEOUT_SECONDS = 10.0


class LabError(Exception):
    """The lab cannot run: an unsupported HPA, or the exporter or adapter did not start."""


@dataclass(frozen=True)
class LabOptions:
    """How the lab runs; windows and intervals in scenario seconds."""

    out: Path
    speed: float = 10.0
    adapter_window: float = 60.0
    scrape_interval: float = 5.0
    startup_timeout: float = 60.0
    python: str = sys.executable

    @property
    def window_real(self) -> int:
        """The adapter's ``--direct-window``: whole real seconds, at least one."""
        return max(1, round(self.adapter_window / self.speed))

    @property
    def scrape_real(self) -> float:
        """The adapter's ``--direct-scrape-interval`` in real seconds, within the window."""
        return min(self.scrape_interval / self.speed, float(self.window_real))


def write_control(path: Path, replicas: int, start: float | None = None) -> None:
    """Write the exporter's control file atomically, so it never reads half a file."""
    lines = [f"replicas={replicas}"]
    if start is not None:
        lines.append(f"start={start:.6f}")
    partial = path.with_name(path.name + ".partial")
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(partial, path)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _child_environment() -> dict[str, str]:
    """The children run exactly as the lab configures them: no ``KGM_*`` twins, no in-cluster API."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("KGM_") and not key.startswith("KUBERNETES_SERVICE_")
    } | {"PYTHONUNBUFFERED": "1"}


def check_supported(hpa: HorizontalPodAutoscaler) -> None:
    """The lab's adapter has no Kubernetes API: it resolves pods, not workloads or external series."""
    unsupported = [spec for spec in hpa.metrics if spec.type is not SourceType.PODS]
    if unsupported:
        names = ", ".join(f"{spec.type.value} {spec.name}" for spec in unsupported)
        raise LabError(f"the lab serves Pods metrics only (its adapter runs without a cluster): {names}")


class LabStack:
    """The exporter and adapter processes of one lab run; leaving the context stops both."""

    def __init__(
        self, hpa: HorizontalPodAutoscaler, scenario_file: Path, scenario: Scenario, options: LabOptions
    ):
        self.hpa = hpa
        self.scenario = scenario
        self.options = options
        self.control = options.out / CONTROL_FILE
        self._scenario_file = scenario_file
        self._processes: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        self._logs: list[IO[bytes]] = []
        self.adapter_url = ""

    def __enter__(self) -> LabStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def _spawn(self, name: str, args: Sequence[str]) -> None:
        log_path = self.options.out / f"{name}.log"
        handle = log_path.open("wb")
        self._logs.append(handle)
        process = subprocess.Popen(
            [self.options.python, "-m", name, *args],
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=_child_environment(),
        )
        self._processes.append((name, process, log_path))

    def _start(self) -> None:
        options, hpa = self.options, self.hpa
        options.out.mkdir(parents=True, exist_ok=True)
        write_control(self.control, scenario_initial_replicas(hpa, self.scenario))
        exporter_port, adapter_port = _free_port(), _free_port()
        self._spawn(
            "exporter",
            [
                "--listen", f"127.0.0.1:{exporter_port}",
                "--scenario", str(self._scenario_file),
                "--scenario-control-file", str(self.control),
                "--scenario-speed", repr(options.speed),
                "--scenario-deployment", f"{hpa.namespace}/{hpa.scale_target_ref.name}",
                "--simulated-gpus", str(max(1, hpa.max_replicas) * self.scenario.gpus_per_pod),
                "--host-metrics", "false",
                "--pod-resources-socket", "",
                "--node-name", "lab",
                "--log-format", "logfmt",
            ],
        )  # fmt: skip
        self._spawn(
            "adapter",
            [
                "--listen", f"127.0.0.1:{adapter_port}",
                "--backend", "direct",
                "--exporter-url", f"http://127.0.0.1:{exporter_port}/metrics",
                "--insecure-local",
                "--direct-window", str(options.window_real),
                "--direct-scrape-interval", repr(options.scrape_real),
                "--log-format", "logfmt",
            ],
        )  # fmt: skip
        self.adapter_url = f"https://127.0.0.1:{adapter_port}"
        self._wait_serving()

    @property
    def processes(self) -> tuple[subprocess.Popen[bytes], ...]:
        """The exporter and adapter processes, while the stack runs."""
        return tuple(process for _, process, _ in self._processes)

    def client(self) -> AdapterClient:
        """A client of this stack's adapter (self-signed certificate, no authentication)."""
        return AdapterClient(self.adapter_url, tls_context(insecure=True))

    def _wait_serving(self) -> None:
        """Until the adapter serves the first metric for every initial pod."""
        spec = self.hpa.metrics[0]
        client = self.client()
        wanted = scenario_initial_replicas(self.hpa, self.scenario)
        path = f"{CUSTOM}/namespaces/{self.hpa.namespace}/pods/*/{spec.name}"
        deadline = time.monotonic() + self.options.startup_timeout
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            self.check_running()
            try:
                if len(client.get(path).get("items", [])) >= wanted:
                    return
                last_error = "not every pod has a value yet"
            except RuntimeError as exc:
                last_error = str(exc)
            time.sleep(0.1)
        raise LabError(
            f"the adapter did not serve {spec.name} for {wanted} pods within "
            f"{self.options.startup_timeout:g}s ({last_error}); logs in {self.options.out}"
        )

    def check_running(self) -> None:
        """Raise ``LabError`` with the end of its log if the exporter or adapter has exited."""
        for name, process, log_path in self._processes:
            if process.poll() is not None:
                tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
                raise LabError(f"the {name} exited with status {process.returncode}:\n{tail}")

    def stop(self) -> None:
        """SIGTERM both processes, SIGKILL what is still running after a grace period."""
        for _, process, _ in self._processes:
            if process.poll() is None:
                process.terminate()
        for _, process, _ in self._processes:
            try:
                process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for handle in self._logs:
            handle.close()
        self._processes.clear()
        self._logs.clear()


class AdapterWorld:
    """Metric values as the adapter serves them, read with the controller's requests."""

    def __init__(self, client: AdapterClient, hpa: HorizontalPodAutoscaler) -> None:
        self.client = client
        self.hpa = hpa

    def observe(self, spec: MetricSpec, now: float, running: Sequence[ScenarioPod]) -> Observation:
        """The Pods metric for every pod; timestamps moved to scenario time, the clock decisions use."""
        found = observe(self.client, self.hpa, spec, "", now)
        return replace(
            found,
            pod_values={name: replace(value, timestamp=now) for name, value in found.pod_values.items()},
        )


def run_lab(
    stack: LabStack,
    *,
    config: ControllerConfig | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Step]:
    """Start the scenario clock and run the controller's loop live until the scenario's end."""
    hpa, scenario, speed = stack.hpa, stack.scenario, stack.options.speed
    config = config or ControllerConfig()
    replicas = scenario_initial_replicas(hpa, scenario)
    start = clock()
    write_control(stack.control, replicas, start)
    behind = False

    def before_sync(now: float) -> None:
        nonlocal behind
        stack.check_running()
        delay = start + now / speed - clock()
        if delay > 0:
            sleep(delay)
        elif -delay * speed > config.sync_period and not behind:
            behind = True
            log.warning(
                "the lab runs behind the scenario clock; lower --speed",
                extra={"scenario_seconds_late": round(-delay * speed, 1)},
            )

    def on_scale(count: int, _now: float) -> None:
        nonlocal replicas
        replicas = count
        write_control(stack.control, replicas, start)

    yield from replay(
        hpa,
        AdapterWorld(stack.client(), hpa),
        duration=scenario.duration,
        initial_replicas=replicas,
        startup=scenario.pod_startup_seconds,
        config=config,
        manual=manual_changes(scenario),
        before_sync=before_sync,
        on_scale=on_scale,
    )


def window_note(options: LabOptions) -> str | None:
    """A note when whole real seconds change the requested adapter window, else ``None``."""
    effective = options.window_real * options.speed
    if math.isclose(effective, options.adapter_window):
        return None
    return (
        f"the adapter window is {effective:g}s of scenario time, not {options.adapter_window:g}s: "
        f"at speed {options.speed:g} it must be whole real seconds"
    )

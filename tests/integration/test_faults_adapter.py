"""Faults around the running adapter process: Prometheus slow, failing, talking nonsense and gone; the
Kubernetes API down at start, dropping its watches (410 Gone) and going away mid-run; SIGTERM with a
request in flight; a full or read-only scratch directory.

Each fault must leave the process up (or, at start, stop it with a clear line), answer within a
bounded time as a ``metav1.Status``, say so on ``/readyz`` and recover without a restart.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.fake_apiserver import FakeApiServer
from tests.fakes.stub_prometheus import StubPrometheus
from tests.integration.processes import REPO, Server, ThreadedApp, start
from tests.pki import Pki
from tests.support import wait_until

V1 = "/apis/custom.metrics.k8s.io/v1beta1"
POD_PATH = f"{V1}/namespaces/ml/pods/train-0/gpu_utilization"
RESULT = [{"metric": {"namespace": "ml", "pod": "train-0"}, "value": [1767323045.0, "42.5"]}]
PROMETHEUS_TIMEOUT = 1.0


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki.create(tmp_path)


@pytest.fixture
def prometheus() -> Iterator[tuple[StubPrometheus, ThreadedApp]]:
    stub = StubPrometheus(result=list(RESULT), sleep_seconds=PROMETHEUS_TIMEOUT * 3)
    served = ThreadedApp(stub.app()).start()
    yield stub, served
    served.close()


def start_adapter(pki: Pki, tmp_path: Path, *flags: str, port: int | None = None) -> Server:
    return start(
        "adapter",
        ["--insecure-local", *pki.serving_flags(), "--log-format", "logfmt", *flags],
        tmp_path / f"adapter-{time.monotonic_ns()}.log",
        port=port,
        scheme="https",
        tls=pki.client_context(),
    )


def status_of(server: Server, path: str, *, within: float) -> tuple[int, dict[str, object]]:
    """``GET path`` answered within ``within`` seconds, as a Status when it is an error."""
    started = time.monotonic()
    code, body = server.get(path, timeout=within + 5)
    assert time.monotonic() - started < within, f"{path} took {time.monotonic() - started:.1f}s"
    document = json.loads(body)
    if code >= 400:
        assert (document["kind"], document["code"]) == ("Status", code), document
    return code, document


def test_prometheus_slow_failing_garbage_and_gone_then_back(
    pki: Pki, tmp_path: Path, prometheus: tuple[StubPrometheus, ThreadedApp]
) -> None:
    stub, served = prometheus
    adapter = start_adapter(
        pki, tmp_path, "--backend", "prometheus", "--prometheus-url", served.url,
        "--prometheus-timeout", str(PROMETHEUS_TIMEOUT),
    )  # fmt: skip
    try:
        adapter.wait_answers("/readyz")
        adapter.wait_answers(POD_PATH)
        budget = PROMETHEUS_TIMEOUT + 1.5
        for mode in ("sleep", "error", "garbage", "down"):
            if mode == "down":
                served.stop()
            else:
                stub.mode = mode
            code, document = status_of(adapter, POD_PATH, within=budget)
            assert code == 503, (mode, document)
            adapter.wait_answers("/readyz", 503, timeout=budget + 5)
            assert adapter.answers("/healthz")
            if mode == "down":
                served.start()
            stub.mode = "ok"
            adapter.wait_answers("/readyz", timeout=15)
            assert status_of(adapter, POD_PATH, within=budget)[0] == 200
        log = adapter.log()
        assert "prometheus unavailable" in log
        assert "prometheus answering" in log
    finally:
        assert adapter.stop() == 0, adapter.log()


def test_sigterm_completes_the_request_in_flight_and_the_port_is_reusable_at_once(
    pki: Pki, tmp_path: Path, prometheus: tuple[StubPrometheus, ThreadedApp]
) -> None:
    stub, served = prometheus
    flags = ["--backend", "prometheus", "--prometheus-url", served.url, "--prometheus-timeout", "5"]
    adapter = start_adapter(pki, tmp_path, *flags)
    adapter.wait_answers(POD_PATH)
    stub.sleep_seconds, stub.mode = 1.0, "sleep"
    answers: list[tuple[int, bytes]] = []
    request = threading.Thread(target=lambda: answers.append(adapter.get(POD_PATH, timeout=10)))
    request.start()
    time.sleep(0.3)
    assert adapter.stop() == 0, adapter.log()
    request.join(10)
    assert answers, "the request in flight got no answer"
    code, body = answers[0]
    assert code == 200, body
    assert json.loads(body)["items"][0]["value"] == "42500m"

    stub.mode = "ok"
    again = start_adapter(pki, tmp_path, *flags, port=adapter.port)
    try:
        again.wait_answers("/readyz", timeout=15)
    finally:
        assert again.stop() == 0, again.log()


def kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    return path


def test_kubernetes_api_down_at_start_watches_dropped_and_gone_mid_run(pki: Pki, tmp_path: Path) -> None:
    exporter = start(
        "exporter",
        ["--gpu-source", "simulated", "--simulated-gpus", "1", "--simulated-profile", "constant:0.5",
         "--node-name", "gpu-node-1", "--host-metrics", "false"],
        tmp_path / "exporter.log",
    )  # fmt: skip
    api = FakeApiServer()
    node = f"{V1}/nodes/gpu-node-1/gpu_utilization"
    adapter = start_adapter(
        pki, tmp_path, "--exporter-url", exporter.url,
        "--kubeconfig", str(kubeconfig(tmp_path / "kubeconfig", api.url)),
    )  # fmt: skip
    replacement: FakeApiServer | None = None
    try:
        exporter.wait_answers("/readyz")
        adapter.wait_answers("/readyz", 503)
        assert b"[-]resolver not ready" in adapter.get("/readyz")[1]
        wait_until(lambda: "list/watch failed; retrying" in adapter.log(), timeout=10)

        api.apply("nodes", "gpu-node-1")
        api.start()
        adapter.wait_answers("/readyz", timeout=20)
        adapter.wait_answers(node, timeout=15)

        # A watch from a compacted version gets 410 Gone: the adapter lists again and follows on.
        api.expire("nodes")
        wait_until(lambda: "watch expired; listing again" in adapter.log(), timeout=10)
        api.delete("nodes", "gpu-node-1")
        adapter.wait_answers(node, 404, timeout=10)
        api.apply("nodes", "gpu-node-1")
        adapter.wait_answers(node, timeout=10)

        # The API going away keeps what was listed (as an informer does) and is retried.
        lists = api.lists["nodes"]
        api.stop()
        assert status_of(adapter, node, within=2)[0] == 200
        assert adapter.answers("/readyz")
        replacement = FakeApiServer()
        replacement.port = api.port
        replacement.apply("nodes", "gpu-node-1")
        replacement.apply("nodes", "gpu-node-2")
        replacement.start()
        wait_until(lambda: replacement is not None and replacement.lists["nodes"] > 0, timeout=70)
        assert lists > 0
        assert adapter.process.poll() is None
    finally:
        if replacement is not None:
            replacement.stop()
        assert adapter.stop() == 0, adapter.log()
        exporter.stop()


def _with_tiny_tmp(options: str, fill_bytes: int, command: list[str]) -> list[str]:
    """``command`` with /tmp and /var/tmp on a tiny tmpfs of its own (a user and mount namespace, so no
    privileges needed), holding ``fill_bytes`` already. Python falls back from TMPDIR to those and to
    the working directory, so all of them are the tiny one."""
    script = (
        'for dir in /tmp /var/tmp; do mount -t tmpfs -o "$0" tmpfs "$dir" || exit 97; done; '
        'if [ "$1" -gt 0 ]; then head -c "$1" /dev/zero > /tmp/filler; fi; '
        'cd /tmp; shift; exec env -u TMPDIR "$@"'
    )
    return [
        "unshare",
        "--user",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        script,
        options,
        str(fill_bytes),
        *command,
    ]


@pytest.fixture
def private_mounts() -> None:
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    hidden = [Path(d).resolve() for d in ("/tmp", "/var/tmp")]
    for needed in (Path(sys.executable).resolve(), REPO.resolve()):
        if any(needed.is_relative_to(d) for d in hidden):
            pytest.skip(f"the test hides /tmp and /var/tmp, and with them {needed}")
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", "mount -t tmpfs tmpfs /tmp"],
        capture_output=True,
        timeout=10,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespaces here: {probe.stderr.decode().strip()}")


@pytest.mark.usefixtures("private_mounts")
@pytest.mark.parametrize(
    ("options", "fill_bytes", "message"),
    [
        # Room for one page: the certificate fits, its key does not.
        (
            "size=8k",
            4096,
            "cannot write the self-signed serving certificate in /tmp/kube-gpu-adapter-",
        ),
        ("ro", 0, "cannot create a scratch directory for generated files: No usable temporary directory"),
    ],
)
def test_a_full_or_read_only_scratch_directory_is_a_clear_start_error(
    options: str, fill_bytes: int, message: str
) -> None:
    command = [sys.executable, "-m", "adapter", "--insecure-local", "--exporter-url", "http://127.0.0.1:9"]
    result = subprocess.run(
        _with_tiny_tmp(options, fill_bytes, command),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    if fill_bytes:
        assert "No space left on device" in result.stderr

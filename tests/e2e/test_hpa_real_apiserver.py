"""A real HorizontalPodAutoscaler scales a Deployment on ``gpu_utilization`` served by the adapter.

Everything but the workload's containers is real: kube-apiserver 1.20 with the aggregation layer,
kube-controller-manager's HPA, Deployment and ReplicaSet controllers, deploy/'s RBAC and APIServices
(from overlays/serving-cert, with a certificate from scripts/gen-adapter-certs), the adapter reading
the API with its service account's token, and the exporter attributing simulated GPUs to the pods
through the kubelet's pod-resources API (a fake server speaking the real proto). No kubelet runs: a
stand-in binds the ReplicaSet's pods to the node, marks them Running and Ready through the status
subresource, gives each a GPU, and finishes their deletion. The GPU load is changed by restarting
the exporter with another constant profile.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.control_plane import ADDRESS, ControlPlane, Process
from tests.fakes.fake_kubelet import Allocation, FakeKubelet, KubeletState
from tests.integration.processes import REPO
from tests.support import require_program

# With a cold cache the session fixture builds kube-apiserver and kube-controller-manager first.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

NAMESPACE = "gpu-e2e"
NODE = "gpu-node-1"
GPUS = 4
WORKLOAD = "gpu-workload"
TARGET_PERCENT = 50
ADAPTER_PORT = 8443
EXPORTER_PORT = 9402
HPA_USER = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
ADAPTER_USER = "system:serviceaccount:kube-gpu-metrics:kube-gpu-adapter"
GPU_RESOURCE = "nvidia.com/gpu"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _wait_for(what: str, probe: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"{what}: not within {timeout} s (last seen: {last!r})")


class KubeletStandIn:
    """What a kubelet would do for the workload's pods, as API calls, and the GPUs it would hand out."""

    def __init__(self, control_plane: ControlPlane, kubelet: FakeKubelet) -> None:
        self._cp = control_plane
        self._kubelet = kubelet
        self._gpu_of: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kubelet-stand-in", daemon=True)
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self._sync()
            except (subprocess.SubprocessError, ValueError, KeyError) as exc:
                self.errors.append(repr(exc))

    def _call(self, *args: str, stdin: str | None = None) -> None:
        result = self._cp.kubectl(*args, stdin=stdin, check=False)
        if result.returncode != 0 and "NotFound" not in result.stderr:
            self.errors.append(f"kubectl {' '.join(args)}: {result.stderr.strip()}")

    def _sync(self) -> None:
        result = self._cp.kubectl("get", "pods", f"--namespace={NAMESPACE}", "-o", "json", check=False)
        if result.returncode != 0:
            return
        live = []
        for pod in json.loads(result.stdout)["items"]:
            name = pod["metadata"]["name"]
            if pod["metadata"].get("deletionTimestamp"):
                # The kubelet confirms a bound pod's deletion once its containers are gone.
                self._call("delete", "pod", name, f"--namespace={NAMESPACE}", "--grace-period=0", "--force")
                continue
            if not pod["spec"].get("nodeName"):
                self._bind(name)
            if pod.get("status", {}).get("phase") != "Running":
                self._mark_running(pod)
            live.append(name)
        for gone in set(self._gpu_of) - set(live):
            del self._gpu_of[gone]
        for name in sorted(live):
            if name not in self._gpu_of:
                free = sorted(set(range(GPUS)) - set(self._gpu_of.values()))
                if free:
                    self._gpu_of[name] = free[0]
        # One assignment, not a mutation: the gRPC server's threads read the list concurrently.
        self._kubelet.state.allocations = [
            Allocation(NAMESPACE, pod, "server", GPU_RESOURCE, [str(gpu)])
            for pod, gpu in self._gpu_of.items()
        ]

    def _bind(self, name: str) -> None:
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "target": {"apiVersion": "v1", "kind": "Node", "name": NODE},
        }
        self._call(
            "create",
            "--raw",
            f"/api/v1/namespaces/{NAMESPACE}/pods/{name}/binding",
            "-f",
            "-",
            stdin=json.dumps(binding),
        )

    def _mark_running(self, pod: dict[str, Any]) -> None:
        now = _now()
        containers = pod["spec"]["containers"]
        status = {
            "phase": "Running",
            "hostIP": ADDRESS,
            "podIP": ADDRESS,
            "startTime": now,
            "conditions": [
                {"type": kind, "status": "True", "lastTransitionTime": now}
                for kind in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
            ],
            "containerStatuses": [
                {
                    "name": c["name"],
                    "image": c["image"],
                    "imageID": "",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                }
                for c in containers
            ],
        }
        self._call(
            "patch",
            "pod",
            pod["metadata"]["name"],
            f"--namespace={NAMESPACE}",
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": status}),
        )


@dataclass
class Stack:
    """The product installed on the control plane, and handles to change the GPU load."""

    control_plane: ControlPlane
    adapter: Process
    adapter_ca: Path
    exporter_command: list[str]
    exporter: Process | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def set_load(self, ratio: float) -> None:
        """Run the exporter with every simulated GPU at ``ratio`` from now on."""
        if self.exporter is not None:
            self.exporter.stop()
        self.exporter = self.control_plane.start(
            f"exporter-{ratio}", [*self.exporter_command, f"--simulated-profile=constant:{ratio}"]
        )

    def replicas(self) -> int:
        deployment = self.control_plane.get_json("get", "deployment", WORKLOAD, f"--namespace={NAMESPACE}")
        return int(deployment["spec"]["replicas"])

    def hpa(self) -> dict[str, Any]:
        return dict(
            self.control_plane.get_json(
                "get", "horizontalpodautoscalers.v2beta2.autoscaling", WORKLOAD, f"--namespace={NAMESPACE}"
            )
        )


def _render(kustomization: str) -> list[dict[str, Any]]:
    kubectl = require_program("kubectl")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(REPO / "deploy" / kustomization)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [o for o in yaml.safe_load_all(rendered) if o]


def _install_objects() -> list[dict[str, Any]]:
    """deploy/overlays/serving-cert as docs/install.md applies it, with the adapter outside the cluster.

    The adapter and exporter run as processes here, so their Deployment and DaemonSet are left out
    and the adapter's Service routes to the process through Endpoints instead of a selector.
    """
    objects = []
    for obj in _render("overlays/serving-cert"):
        if obj["kind"] in ("Deployment", "DaemonSet"):
            continue
        if (obj["kind"], obj["metadata"]["name"]) == ("Service", "kube-gpu-adapter"):
            del obj["spec"]["selector"]
            [port] = obj["spec"]["ports"]
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "Endpoints",
                    "metadata": {"name": "kube-gpu-adapter", "namespace": "kube-gpu-metrics"},
                    "subsets": [
                        {
                            "addresses": [{"ip": ADDRESS}],
                            "ports": [{"name": port["name"], "port": ADAPTER_PORT}],
                        }
                    ],
                }
            )
        objects.append(obj)
    return objects


def _workload_objects() -> list[dict[str, Any]]:
    """The example workload from deploy/examples and an HPA on gpu_utilization with short windows."""
    [deployment] = [o for o in _render("examples") if o["kind"] == "Deployment"]
    deployment["metadata"]["namespace"] = NAMESPACE
    hpa = {
        # autoscaling/v2 arrived in Kubernetes 1.23; 1.20 serves the same fields as v2beta2.
        "apiVersion": "autoscaling/v2beta2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": WORKLOAD, "namespace": NAMESPACE},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": WORKLOAD},
            "minReplicas": 1,
            "maxReplicas": GPUS,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": "gpu_utilization"},
                        "target": {"type": "AverageValue", "averageValue": str(TARGET_PERCENT)},
                    },
                }
            ],
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": 0,
                    "policies": [{"type": "Pods", "value": GPUS, "periodSeconds": 5}],
                },
                "scaleDown": {
                    "stabilizationWindowSeconds": 5,
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 5}],
                },
            },
        },
    }
    return [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}, deployment, hpa]


def _service_account_token(control_plane: ControlPlane, namespace: str, name: str) -> str:
    """The token the token controller made for a service account (Kubernetes 1.20 still makes them)."""

    def secret_name() -> str:
        account = control_plane.get_json("get", "serviceaccount", name, f"--namespace={namespace}")
        return next((s["name"] for s in account.get("secrets") or []), "")

    secret = control_plane.get_json(
        "get", "secret", _wait_for("service account token", secret_name, 60), f"--namespace={namespace}"
    )
    return base64.b64decode(secret["data"]["token"]).decode()


def _api_service_available(control_plane: ControlPlane, version: str) -> bool:
    api_service = control_plane.get_json("get", "apiservice", f"{version}.custom.metrics.k8s.io")
    conditions = api_service.get("status", {}).get("conditions", [])
    return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)


@pytest.fixture(scope="module")
def stack(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    started = time.monotonic()
    workdir = tmp_path_factory.mktemp("hpa")
    cp = control_plane
    cp.apply(_install_objects())

    certs = workdir / "certs"
    subprocess.run(
        [str(REPO / "scripts" / "gen-adapter-certs"), str(certs)], capture_output=True, check=True, timeout=60
    )
    secret = cp.kubectl(
        "create",
        "secret",
        "tls",
        "kube-gpu-adapter-serving",
        "--namespace=kube-gpu-metrics",
        f"--cert={certs / 'tls.crt'}",
        f"--key={certs / 'tls.key'}",
        "--dry-run=client",
        "-o",
        "yaml",
    ).stdout
    cp.kubectl("apply", "-f", "-", stdin=secret)
    ca_bundle = base64.b64encode((certs / "ca.crt").read_bytes()).decode()
    for version in ("v1beta1", "v1beta2"):
        cp.kubectl(
            "patch",
            "apiservice",
            f"{version}.custom.metrics.k8s.io",
            "--type=merge",
            "-p",
            json.dumps({"spec": {"caBundle": ca_bundle}}),
        )

    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": NODE, "labels": {"nvidia.com/gpu.present": "true"}},
    }
    cp.apply([node])
    capacity = {"cpu": "16", "memory": "64Gi", "pods": "110", GPU_RESOURCE: str(GPUS)}
    node_status = {
        "capacity": capacity,
        "allocatable": capacity,
        "conditions": [
            {"type": "Ready", "status": "True", "lastHeartbeatTime": _now(), "reason": "KubeletReady"}
        ],
    }
    cp.kubectl(
        "patch",
        "node",
        NODE,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": node_status}),
    )

    kubelet = FakeKubelet(
        str(workdir / "pod-resources.sock"),
        KubeletState(allocatable={GPU_RESOURCE: [str(i) for i in range(GPUS)]}),
    )
    kubelet.start()
    stand_in = KubeletStandIn(cp, kubelet)
    stand_in.start()
    running: Stack | None = None
    try:
        token = _service_account_token(cp, "kube-gpu-metrics", "kube-gpu-adapter")
        exporter_url = f"http://{ADDRESS}:{EXPORTER_PORT}/metrics"
        adapter = cp.start(
            "adapter",
            [
                sys.executable,
                "-m",
                "adapter",
                f"--listen={ADDRESS}:{ADAPTER_PORT}",
                f"--kubeconfig={cp.kubeconfig_for('kube-gpu-adapter', token)}",
                f"--exporter-url={exporter_url}",
                f"--tls-cert-file={certs / 'tls.crt'}",
                f"--tls-private-key-file={certs / 'tls.key'}",
            ],
            env={"PYTHONUNBUFFERED": "1"},
        )
        exporter_command = [
            sys.executable,
            "-m",
            "exporter",
            f"--listen={ADDRESS}:{EXPORTER_PORT}",
            "--gpu-source=simulated",
            f"--simulated-gpus={GPUS}",
            "--host-metrics=false",
            f"--pod-resources-socket={kubelet.socket_path}",
            f"--node-name={NODE}",
        ]
        running = Stack(cp, adapter, certs / "ca.crt", exporter_command)
        running.set_load(0.2)
        for version in ("v1beta1", "v1beta2"):

            def available(version: str = version) -> bool:
                if adapter.popen.poll() is not None:
                    pytest.fail(f"adapter exited with {adapter.popen.returncode}:\n{adapter.tail()}")
                return _api_service_available(cp, version)

            _wait_for(f"APIService {version}.custom.metrics.k8s.io Available", available, 90)
        cp.apply(_workload_objects())
        running.timings["install"] = time.monotonic() - started
        yield running
    finally:
        stand_in.stop()
        kubelet.stop()
        if running is not None:
            for process in (running.exporter, running.adapter):
                if process is not None:
                    process.stop()
            print("e2e timings (s):", {k: round(v, 1) for k, v in running.timings.items()})
        assert not stand_in.errors, "kubelet stand-in failed:\n" + "\n".join(stand_in.errors[:20])


def test_custom_metrics_api_is_served_through_the_apiserver(stack: Stack) -> None:
    cp = stack.control_plane
    for version in ("v1beta1", "v1beta2"):
        resources = cp.get_json("get", "--raw", f"/apis/custom.metrics.k8s.io/{version}")["resources"]
        assert {"pods/gpu_utilization", "pods/gpu_memory_utilization"} <= {r["name"] for r in resources}
    group = cp.get_json("get", "--raw", "/apis/custom.metrics.k8s.io")
    assert group["preferredVersion"]["version"] == "v1beta2"


def test_hpa_scales_the_deployment_up_and_down_on_gpu_utilization(stack: Stack) -> None:
    cp = stack.control_plane
    path = f"/apis/custom.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/pods/*/gpu_utilization"

    def metric_served() -> list[dict[str, Any]]:
        result = cp.kubectl(
            "get", "--raw", f"{path}?labelSelector=app.kubernetes.io%2Fname%3D{WORKLOAD}", check=False
        )
        return json.loads(result.stdout)["items"] if result.returncode == 0 else []

    phase = time.monotonic()
    [item] = _wait_for("the workload pod's gpu_utilization through the apiserver", metric_served, 120)
    assert item["describedObject"]["kind"] == "Pod"

    def hpa_reads_metric() -> list[dict[str, Any]]:
        return list(stack.hpa().get("status", {}).get("currentMetrics") or [])

    [current] = _wait_for("the HPA reading gpu_utilization", hpa_reads_metric, 120)
    assert current["pods"]["metric"]["name"] == "gpu_utilization"
    assert stack.replicas() == 1
    stack.timings["first metric"] = time.monotonic() - phase

    phase = time.monotonic()
    stack.set_load(0.9)
    _wait_for(f"scale up to {GPUS} replicas", lambda: stack.replicas() == GPUS, 300, interval=2)
    stack.timings["scale up"] = time.monotonic() - phase

    phase = time.monotonic()
    stack.set_load(0.1)
    _wait_for("scale down to 1 replica", lambda: stack.replicas() == 1, 300, interval=2)
    stack.timings["scale down"] = time.monotonic() - phase

    # The HPA controller read the metrics as its own service account, through the aggregation layer.
    events = cp.audit_events()
    reads = [
        e
        for e in events
        if e.get("objectRef", {}).get("apiGroup") == "custom.metrics.k8s.io"
        and e["user"]["username"] == HPA_USER
    ]
    assert reads, "no custom.metrics.k8s.io request from the HPA controller in the audit log"
    assert {e["responseStatus"]["code"] for e in reads if e["stage"] == "ResponseComplete"} == {200}
    # The adapter authenticated those requests from the front proxy's headers and asked the apiserver
    # whether that user may read them: a SubjectAccessReview for the controller, sent by the adapter.
    reviews = [
        e
        for e in events
        if e.get("objectRef", {}).get("resource") == "subjectaccessreviews"
        and e["user"]["username"] == ADAPTER_USER
        and (e.get("requestObject") or {}).get("spec", {}).get("user") == HPA_USER
    ]
    assert reviews, "the adapter never authorized the HPA controller's identity"
    assert any((e.get("responseObject") or {}).get("status", {}).get("allowed") for e in reviews)


def test_adapter_refuses_identity_headers_without_the_front_proxy_certificate(stack: Stack) -> None:
    probe = (
        "import ssl, sys, urllib.error, urllib.request\n"
        "context = ssl.create_default_context(cafile=sys.argv[2])\n"
        "context.check_hostname = False\n"
        "request = urllib.request.Request(sys.argv[1], headers={'X-Remote-User': sys.argv[3]})\n"
        "try:\n"
        "    print(urllib.request.urlopen(request, context=context, timeout=10).status)\n"
        "except urllib.error.HTTPError as exc:\n"
        "    print(exc.code)\n"
    )
    url = f"https://{ADDRESS}:{ADAPTER_PORT}/apis/custom.metrics.k8s.io/v1beta1/namespaces/{NAMESPACE}/pods/*/gpu_utilization"
    result = subprocess.run(
        stack.control_plane.netns.wrap([sys.executable, "-c", probe, url, str(stack.adapter_ca), HPA_USER]),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "401"

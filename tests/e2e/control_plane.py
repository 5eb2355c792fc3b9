"""A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager) in a network namespace.

Endpoints may not point at loopback, so the aggregation layer can only reach an extension API server
at a routable address: every process runs inside a namespace made for the test, on a dummy interface
with a private address, and no traffic leaves it. kube-apiserver and kube-controller-manager 1.20 come
from scripts/build-control-plane (Debian's source package, built once and cached), etcd from Debian's
etcd-server.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.integration.processes import REPO
from tests.support import IN_CI, require_program

# A private address on the namespace's dummy interface; nothing outside the namespace sees it.
ADDRESS = "172.31.250.1"
APISERVER_PORT = 6443
SERVICE_CIDR = "10.96.0.0/24"
FRONT_PROXY_USER = "front-proxy-client"
# How often the HPA controller reconciles; the default 15 s would stretch the test for nothing.
HPA_SYNC_PERIOD = "2s"
# The audit log shows who called what through the apiserver: the HPA controller's metric reads, and
# the SubjectAccessReviews an extension server sends to authorize the users the front proxy vouches for.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {
            "level": "RequestResponse",
            "resources": [{"group": "authorization.k8s.io", "resources": ["subjectaccessreviews"]}],
        },
        {"level": "Metadata", "resources": [{"group": "custom.metrics.k8s.io"}]},
        {"level": "None"},
    ],
}


def unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)


def control_plane_binaries() -> tuple[str, str]:
    """kube-apiserver and kube-controller-manager from the cached build (building them if needed)."""
    result = subprocess.run(
        [str(REPO / "scripts" / "build-control-plane")],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    if result.returncode != 0:
        unavailable(f"scripts/build-control-plane exited {result.returncode}:\n{result.stderr[-4000:]}")
    paths = {Path(line).name: line for line in result.stdout.split()}
    return paths["kube-apiserver"], paths["kube-controller-manager"]


@dataclass
class NetworkNamespace:
    """``ip netns`` namespace with loopback and a veth pair, one end holding ``ADDRESS``.

    A veth pair with both ends inside rather than a dummy interface: some kernels (these VMs') lack
    the dummy driver. Nothing is connected to the host either way.
    """

    name: str
    ip: str

    @classmethod
    def create(cls, name: str) -> NetworkNamespace:
        ip = require_program("ip")
        if os.geteuid() != 0:
            unavailable("network namespaces need root")
        created = subprocess.run([ip, "netns", "add", name], capture_output=True, text=True, check=False)
        if created.returncode != 0:
            unavailable(f"ip netns add {name} failed: {created.stderr.strip()}")
        namespace = cls(name, ip)
        for command in (
            ["link", "set", "lo", "up"],
            ["link", "add", "kgm0", "type", "veth", "peer", "name", "kgm1"],
            ["addr", "add", f"{ADDRESS}/24", "dev", "kgm0"],
            ["link", "set", "kgm1", "up"],
            ["link", "set", "kgm0", "up"],
        ):
            done = subprocess.run(namespace.wrap([ip, *command]), capture_output=True, text=True, check=False)
            if done.returncode != 0:
                namespace.delete()
                pytest.fail(f"ip {' '.join(command)} in namespace {name}: {done.stderr.strip()}")
        return namespace

    def wrap(self, command: Sequence[str]) -> list[str]:
        """``command`` as run inside the namespace (``ip netns exec`` execs it: same PID)."""
        return [self.ip, "netns", "exec", self.name, *command]

    def delete(self) -> None:
        subprocess.run([self.ip, "netns", "delete", self.name], capture_output=True, check=False)


@dataclass
class Process:
    """A process started in the namespace, with its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, chars: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


@dataclass
class ControlPlane:
    """The running control plane: start processes in its namespace and talk to it with kubectl."""

    netns: NetworkNamespace
    workdir: Path
    kubeconfig: Path
    ca_file: Path
    front_proxy_ca_file: Path
    kubectl_path: str
    audit_log: Path
    processes: list[Process] = field(default_factory=list)

    @property
    def server(self) -> str:
        return f"https://{ADDRESS}:{APISERVER_PORT}"

    def start(self, name: str, command: Sequence[str], env: dict[str, str] | None = None) -> Process:
        """Start ``command`` inside the namespace; it is stopped with the control plane."""
        log = self.workdir / f"{name}.log"
        popen = subprocess.Popen(
            self.netns.wrap(command),
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
            env={**os.environ, **(env or {})},
            cwd=REPO,
        )
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            self.netns.wrap([self.kubectl_path, "--kubeconfig", str(self.kubeconfig), *args]),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(f"kubectl {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
        return result

    def get_json(self, *args: str) -> Any:
        """``kubectl ARGS`` parsed as JSON (``get --raw`` answers JSON without ``-o``)."""
        output = [] if "--raw" in args else ["-o", "json"]
        return json.loads(self.kubectl(*args, *output).stdout)

    def apply(self, objects: Sequence[dict[str, Any]]) -> None:
        self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(objects))

    def audit_events(self) -> list[dict[str, Any]]:
        """Audit events so far (see ``AUDIT_POLICY`` for which)."""
        if not self.audit_log.exists():
            return []
        return [json.loads(line) for line in self.audit_log.read_text().splitlines() if line.strip()]

    def kubeconfig_for(self, name: str, token: str) -> Path:
        """A kubeconfig that authenticates with ``token``."""
        path = self.workdir / f"{name}.kubeconfig"
        write_kubeconfig(path, self.server, self.ca_file, token)
        return path

    def stop(self) -> None:
        """Stop every process started in the namespace, then delete the namespace."""
        for process in reversed(self.processes):
            process.stop()
        self.netns.delete()


def write_kubeconfig(path: Path, server: str, ca_file: Path, token: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "e2e", "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
        "users": [{"name": "e2e", "user": {"token": token}}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "e2e"}}],
        "current-context": "e2e",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)


def _write_certificates(workdir: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    cluster_ca = trustme.CA()
    serving = cluster_ca.issue_cert(ADDRESS, "10.96.0.1", "kubernetes.default.svc", "localhost")
    front_proxy_ca = trustme.CA()
    front_proxy = front_proxy_ca.issue_cert(FRONT_PROXY_USER, common_name=FRONT_PROXY_USER)
    for name, blob in {
        "ca.crt": cluster_ca.cert_pem,
        "apiserver.crt": serving.cert_chain_pems[0],
        "apiserver.key": serving.private_key_pem,
        "front-proxy-ca.crt": front_proxy_ca.cert_pem,
        "front-proxy-client.crt": front_proxy.cert_chain_pems[0],
        "front-proxy-client.key": front_proxy.private_key_pem,
    }.items():
        files[name] = workdir / name
        blob.write_to_path(str(files[name]))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    files["sa.key"] = workdir / "sa.key"
    files["sa.key"].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    files["sa.pub"] = workdir / "sa.pub"
    files["sa.pub"].write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return files


def _wait(
    control_plane: ControlPlane, process: Process, what: str, check: Sequence[str], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.popen.poll() is not None:
            pytest.fail(f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}")
        if control_plane.kubectl(*check, check=False, timeout=10).returncode == 0:
            return
        time.sleep(0.5)
    pytest.fail(f"{what} not within {timeout} s:\n{process.tail()}")


def start_control_plane(workdir: Path) -> ControlPlane:
    """etcd, kube-apiserver (aggregation layer on) and kube-controller-manager, ready for use.

    The caller must ``stop`` it; on failure here everything started is stopped before raising.
    """
    apiserver, controller_manager = control_plane_binaries()
    etcd = require_program("etcd")
    kubectl = require_program("kubectl")
    files = _write_certificates(workdir)
    admin_token, controller_token = secrets.token_hex(16), secrets.token_hex(16)
    tokens = workdir / "tokens.csv"
    tokens.write_text(
        f'{admin_token},e2e-admin,e2e-admin,"system:masters"\n'
        f"{controller_token},system:kube-controller-manager,system:kube-controller-manager\n"
    )
    audit_policy = workdir / "audit-policy.yaml"
    audit_policy.write_text(yaml.safe_dump(AUDIT_POLICY))
    control_plane = ControlPlane(
        netns=NetworkNamespace.create(f"kgm-e2e-{os.getpid()}"),
        workdir=workdir,
        kubeconfig=workdir / "admin.kubeconfig",
        ca_file=files["ca.crt"],
        front_proxy_ca_file=files["front-proxy-ca.crt"],
        kubectl_path=kubectl,
        audit_log=workdir / "audit.log",
    )
    try:
        write_kubeconfig(control_plane.kubeconfig, control_plane.server, files["ca.crt"], admin_token)
        # The namespace has its own loopback: fixed ports cannot collide with anything on the host.
        control_plane.start(
            "etcd",
            [
                etcd,
                f"--data-dir={workdir / 'etcd'}",
                "--listen-client-urls=http://127.0.0.1:2379",
                "--advertise-client-urls=http://127.0.0.1:2379",
                "--listen-peer-urls=http://127.0.0.1:2380",
                "--log-level=warn",
            ],
        )
        api = control_plane.start(
            "kube-apiserver",
            [
                apiserver,
                "--etcd-servers=http://127.0.0.1:2379",
                f"--bind-address={ADDRESS}",
                f"--advertise-address={ADDRESS}",
                f"--secure-port={APISERVER_PORT}",
                f"--tls-cert-file={files['apiserver.crt']}",
                f"--tls-private-key-file={files['apiserver.key']}",
                f"--client-ca-file={files['ca.crt']}",
                f"--token-auth-file={tokens}",
                "--authorization-mode=RBAC",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--service-account-issuer=https://kubernetes.default.svc",
                f"--service-account-key-file={files['sa.pub']}",
                f"--service-account-signing-key-file={files['sa.key']}",
                # The aggregation layer: the apiserver proxies custom.metrics.k8s.io to the adapter with
                # this client certificate and the caller's identity in X-Remote-* headers.
                f"--requestheader-client-ca-file={files['front-proxy-ca.crt']}",
                f"--requestheader-allowed-names={FRONT_PROXY_USER}",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={files['front-proxy-client.crt']}",
                f"--proxy-client-key-file={files['front-proxy-client.key']}",
                # Route to the Endpoints' address rather than the Service's cluster IP: there is no
                # kube-proxy here.
                "--enable-aggregator-routing=true",
                f"--audit-policy-file={audit_policy}",
                f"--audit-log-path={control_plane.audit_log}",
                f"--cert-dir={workdir / 'apiserver-certs'}",
                "--profiling=false",
                "--v=1",
            ],
        )
        _wait(control_plane, api, "kube-apiserver ready", ["get", "--raw", "/readyz"], timeout=90)
        controller_kubeconfig = control_plane.kubeconfig_for("kube-controller-manager", controller_token)
        controllers = control_plane.start(
            "kube-controller-manager",
            [
                controller_manager,
                f"--kubeconfig={controller_kubeconfig}",
                f"--authentication-kubeconfig={controller_kubeconfig}",
                f"--authorization-kubeconfig={controller_kubeconfig}",
                "--bind-address=127.0.0.1",
                "--port=0",
                "--leader-elect=false",
                # No kubelet or scheduler exists: the node lifecycle controller would mark the test's
                # pods not ready, so only what the test needs runs.
                "--controllers=serviceaccount-token,serviceaccount,deployment,replicaset,horizontalpodautoscaling",
                # Each controller calls the API as its own service account, so the HPA controller
                # reaches the adapter as system:serviceaccount:kube-system:horizontal-pod-autoscaler,
                # the identity deploy/base grants the custom metrics to.
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={files['sa.key']}",
                f"--root-ca-file={files['ca.crt']}",
                f"--horizontal-pod-autoscaler-sync-period={HPA_SYNC_PERIOD}",
                "--v=2",
            ],
        )
        _wait(
            control_plane,
            controllers,
            "the default service account",
            ["get", "serviceaccount", "default", "--namespace=default"],
            timeout=60,
        )
    except BaseException:
        control_plane.stop()
        raise
    return control_plane

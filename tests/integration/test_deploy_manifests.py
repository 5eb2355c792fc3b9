"""deploy/ renders with kustomize and keeps the promises the README makes about it."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from tests.integration.processes import REPO
from tests.support import require_program


@pytest.fixture(scope="module")
def base_objects() -> dict[tuple[str, str], dict[str, Any]]:
    kubectl = require_program("kubectl")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(REPO / "deploy" / "base")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(rendered) if o}


def test_exporter_daemonset_has_what_attribution_needs(
    base_objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    pod = base_objects[("DaemonSet", "kube-gpu-exporter")]["spec"]["template"]["spec"]
    assert pod["hostPID"] is True
    container = pod["containers"][0]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/var/lib/kubelet/pod-resources"]["readOnly"] is True
    assert {"--proc-root=/host/proc", "--rootfs=/host/root", "--kube-api=true"} <= set(container["args"])
    assert mounts["/host/root"]["readOnly"] is True
    assert pod["hostNetwork"] is True
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["ports"][0]["containerPort"] == 9402


def test_adapter_runs_unprivileged_behind_both_api_versions(
    base_objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    pod = base_objects[("Deployment", "kube-gpu-adapter")]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    for version in ("v1beta1", "v1beta2"):
        service = base_objects[("APIService", f"{version}.custom.metrics.k8s.io")]["spec"]
        assert (service["group"], service["version"]) == ("custom.metrics.k8s.io", version)
        assert service["service"] == {
            "name": "kube-gpu-adapter",
            "namespace": "kube-gpu-metrics",
            "port": 443,
        }


def test_namespaced_objects_name_their_namespace(base_objects: dict[tuple[str, str], dict[str, Any]]) -> None:
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding", "APIService"}
    for (kind, name), obj in base_objects.items():
        if kind not in cluster_scoped:
            assert obj["metadata"].get("namespace"), f"{kind}/{name} has no namespace"


def test_delegated_auth_and_hpa_access_are_granted(
    base_objects: dict[tuple[str, str], dict[str, Any]],
) -> None:
    delegator = base_objects[("ClusterRoleBinding", "kube-gpu-adapter:system:auth-delegator")]
    assert delegator["roleRef"]["name"] == "system:auth-delegator"
    reader = base_objects[("RoleBinding", "kube-gpu-adapter-auth-reader")]
    assert (reader["metadata"]["namespace"], reader["roleRef"]["name"]) == (
        "kube-system",
        "extension-apiserver-authentication-reader",
    )
    hpa = base_objects[("ClusterRoleBinding", "kube-gpu-metrics:hpa-custom-metrics-reader")]
    assert hpa["subjects"] == [
        {"kind": "ServiceAccount", "name": "horizontal-pod-autoscaler", "namespace": "kube-system"}
    ]

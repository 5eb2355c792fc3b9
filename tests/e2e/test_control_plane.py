"""The control plane fixture itself: a real kube-apiserver 1.20 with the APIs the HPA test relies on."""

from __future__ import annotations

import pytest

from tests.e2e.control_plane import ControlPlane

# With a cold cache the session fixture builds kube-apiserver and kube-controller-manager first.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def test_apiserver_serves_autoscaling_and_aggregation(control_plane: ControlPlane) -> None:
    groups = {g["name"]: g for g in control_plane.get_json("get", "--raw", "/apis")["groups"]}
    assert "v2beta2" in {v["version"] for v in groups["autoscaling"]["versions"]}
    assert "v1" in {v["version"] for v in groups["apiregistration.k8s.io"]["versions"]}
    version = control_plane.get_json("get", "--raw", "/version")
    assert (version["major"], version["minor"]) == ("1", "20")


def test_front_proxy_ca_is_published_for_extension_servers(control_plane: ControlPlane) -> None:
    config = control_plane.get_json(
        "get", "configmap", "extension-apiserver-authentication", "--namespace=kube-system"
    )["data"]
    assert (
        config["requestheader-client-ca-file"].strip()
        == control_plane.front_proxy_ca_file.read_text().strip()
    )
    assert config["requestheader-allowed-names"] == '["front-proxy-client"]'


def test_controller_manager_runs_controllers_as_their_service_accounts(control_plane: ControlPlane) -> None:
    accounts = control_plane.get_json("get", "serviceaccounts", "--namespace=kube-system")["items"]
    assert "horizontal-pod-autoscaler" in {a["metadata"]["name"] for a in accounts}

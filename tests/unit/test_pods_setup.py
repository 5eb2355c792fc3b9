"""Wiring pod attribution from options: off, pod-resources only, and with the Kubernetes API."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.config.config_exception import ConfigException

from exporter.collectors.errors import ErrorCounts
from exporter.collectors.pods import PodsCollector
from exporter.gpu.source import NoGpuSource
from exporter.pods.allocations import PodResourcesHolders
from exporter.pods.kube_pods import KubeApis, connect
from exporter.pods.model import NoHolders
from exporter.pods.setup import AttributionOptions, build_attribution


def test_empty_socket_switches_attribution_off() -> None:
    attribution = build_attribution(AttributionOptions(socket_path=""), NoGpuSource(), ErrorCounts())
    assert isinstance(attribution.holders, NoHolders)
    assert attribution.collectors == ()
    attribution.close()


def test_pod_resources_only(tmp_path: Any) -> None:
    options = AttributionOptions(
        socket_path=str(tmp_path / "absent.sock"), resource_patterns=("example.com/gpu",)
    )
    attribution = build_attribution(options, NoGpuSource(), ErrorCounts())
    assert isinstance(attribution.holders, PodResourcesHolders)
    assert attribution.holders.resource_patterns == ("example.com/gpu",)
    assert [(name, type(c)) for name, c in attribution.collectors] == [("pods", PodsCollector)]
    assert not attribution.holders.up
    list(attribution.collectors[0][1].collect())  # a missing kubelet is no failure
    attribution.close()


def test_unreachable_api_falls_back_to_pod_resources(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    def no_cluster(kubeconfig: str) -> KubeApis:
        raise ConfigException("Service host/port is not set.")

    errors = ErrorCounts()
    options = AttributionOptions(socket_path=str(tmp_path / "k.sock"), kube_api=True, node_name="n1")
    attribution = build_attribution(options, NoGpuSource(), errors, connect_kube=no_cluster)
    assert [name for name, _ in attribution.collectors] == ["pods"]
    assert errors.snapshot() == {("pods",): 1}
    assert "Kubernetes API enrichment unavailable" in caplog.text
    attribution.close()


class _EmptyCore:
    def list_pod_for_all_namespaces(self, **_: Any) -> k8s.V1PodList:
        return k8s.V1PodList(items=[], metadata=k8s.V1ListMeta(resource_version="1"))


class _IdleWatch:
    resource_version: str | None = None

    def stream(self, *_: Any, **__: Any) -> Any:
        return iter(())

    def stop(self) -> None:
        """Nothing to stop."""


def test_with_the_api_the_watch_starts_and_stops(tmp_path: Any) -> None:
    apis = KubeApis(core=_EmptyCore(), apps=None, batch=None, new_watch=_IdleWatch)
    options = AttributionOptions(socket_path=str(tmp_path / "k.sock"), kube_api=True, node_name="n1")
    attribution = build_attribution(options, NoGpuSource(), ErrorCounts(), connect_kube=lambda _: apis)
    attribution.close()


def test_connect_reads_a_kubeconfig(tmp_path: Any) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u}}]\n"
    )
    apis = connect(str(kubeconfig))
    assert apis.core.api_client.configuration.host == "https://127.0.0.1:6443"

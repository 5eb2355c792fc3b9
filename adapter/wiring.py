"""Which backend and object resolver the options select, and the Kubernetes API client they share."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from kubernetes import client as kube_client
from kubernetes import config as kube_config

from adapter.backends.base import MetricsBackend
from adapter.backends.direct import DirectBackend
from adapter.backends.discovery import EndpointSliceDiscovery, StaticTargets, TargetDiscovery
from adapter.backends.prometheus import PrometheusBackend
from adapter.backends.prometheus_api import PrometheusClient, PrometheusOptions
from adapter.config import AdapterConfig
from adapter.objects.base import ObjectResolver
from adapter.objects.kube import KubeResolver
from adapter.objects.static import SeenObjects, StaticResolver
from adapter.rules import RuleError, load_rules

Components = tuple[MetricsBackend, ObjectResolver]
ComponentFactory = Callable[[AdapterConfig, Any], Components]


class WiringError(Exception):
    """Options that select something this build cannot provide; the message says what to do instead."""


def kubernetes_api_client(config: AdapterConfig) -> Any:
    """An ``ApiClient`` from ``--kubeconfig``, else the in-cluster service account, else ``None``."""
    if config.kubeconfig is not None:
        return kube_config.new_client_from_config(config_file=str(config.kubeconfig))  # type: ignore[no-untyped-call]
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        configuration = kube_client.Configuration()
        kube_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        return kube_client.ApiClient(configuration)
    return None


def build_components(config: AdapterConfig, api_client: Any) -> Components:
    """The backend and resolver for ``config``; ``api_client`` is ``None`` outside a cluster.

    Without a Kubernetes API, objects are whatever the exporters report (no labels, no workloads).
    """
    if config.backend == "prometheus":
        return _prometheus_components(config, api_client)
    if config.config_file is not None:
        raise WiringError("--config holds Prometheus rules: it applies to --backend prometheus only")
    discovery: TargetDiscovery
    if config.exporter_urls:
        discovery = StaticTargets(config.exporter_urls)
    elif api_client is not None:
        namespace, service = config.exporter_service
        discovery = EndpointSliceDiscovery(
            kube_client.DiscoveryV1Api(api_client), namespace=namespace, service=service, port_name="metrics"
        )
    else:
        raise WiringError(
            "no exporters to read: pass --exporter-url, or run in a cluster (or with --kubeconfig) "
            "so they are found through the --exporter-service EndpointSlices"
        )
    backend = DirectBackend(
        discovery,
        scrape_interval=config.direct_scrape_interval_seconds,
        window_seconds=config.direct_window_seconds,
    )
    return backend, _resolver(backend, api_client)


def _resolver(seen: SeenObjects, api_client: Any) -> ObjectResolver:
    """Objects from the Kubernetes API when there is one, else whatever the backend has seen."""
    if api_client is None:
        return StaticResolver(seen)
    return KubeResolver(
        kube_client.CoreV1Api(api_client),
        kube_client.AppsV1Api(api_client),
        kube_client.BatchV1Api(api_client),
    )


def _prometheus_components(config: AdapterConfig, api_client: Any) -> Components:
    if not config.prometheus_url:
        raise WiringError("--backend prometheus needs --prometheus-url")
    try:
        rules = load_rules(config.config_file)
    except RuleError as exc:
        raise WiringError(str(exc)) from None
    client = PrometheusClient(
        PrometheusOptions(
            config.prometheus_url,
            timeout_seconds=config.prometheus_timeout_seconds,
            bearer_token_file=config.prometheus_bearer_token_file,
            ca_file=config.prometheus_ca_file,
            insecure_skip_verify=config.prometheus_insecure_skip_verify,
        )
    )
    backend = PrometheusBackend(rules, client, track_objects=api_client is None)
    return backend, _resolver(backend, api_client)

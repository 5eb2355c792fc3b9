"""Live mode: ask the adapter what the HPA controller would ask, and log what the HPA would decide.

Requests are the ones the controller's REST metrics client makes (kubernetes
``pkg/controller/podautoscaler/metrics/client.go``: ``customMetricsClient.GetRawMetric`` and
``GetObjectMetric``, ``externalMetricsClient.GetExternalMetric``):

- Pods metrics: ``GET /apis/custom.metrics.k8s.io/v1beta2/namespaces/{ns}/pods/*/{metric}``
  with ``labelSelector`` (plus ``metricLabelSelector`` when the metric has a selector);
- Object metrics: ``GET /apis/custom.metrics.k8s.io/v1beta2/namespaces/{ns}/{resource}/{name}/{metric}``,
  the resource qualified by its group as a RESTMapper names it (``deployments.apps``);
- External metrics: ``GET /apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/{metric}?labelSelector=...``.

Resource metrics come from ``metrics.k8s.io`` (metrics-server), not from our adapter; they are reported as
unavailable. The pods and replica counts come from the cluster with ``--kubeconfig``; without it the pods
are the ones the Pods metric answered for, all taken as Running and Ready, and the replica count is their
number. The watcher never scales anything: its decisions are a shadow of the real controller's.
"""

from __future__ import annotations

import json
import logging
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from hpalab import algorithm as alg
from hpalab.algorithm import ControllerConfig, ControllerState, Observation, Pod, PodMetric
from hpalab.hpa_spec import HorizontalPodAutoscaler, MetricSpec, ObjectReference, SourceType
from hpalab.quantity import QuantityError, parse_milli

CUSTOM = "/apis/custom.metrics.k8s.io/v1beta2"
EXTERNAL = "/apis/external.metrics.k8s.io/v1beta1"
REQUEST_TIMEOUT_SECONDS = 10.0

log = logging.getLogger("hpalab.watch")


class WatchError(Exception):
    """The watcher cannot start (bad TLS files, unreadable token, no cluster access)."""


def tls_context(
    *,
    insecure: bool = False,
    ca_file: str | None = None,
    client_cert: str | None = None,
    client_key: str | None = None,
) -> ssl.SSLContext:
    """The client TLS context: verify with ``ca_file`` (or the system CAs) unless ``insecure``."""
    try:
        context = ssl.create_default_context(cafile=ca_file)
        if insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if client_cert is not None:
            context.load_cert_chain(client_cert, client_key)
        elif client_key is not None:
            raise WatchError("--client-key needs --client-cert")
    except (OSError, ssl.SSLError) as exc:
        raise WatchError(f"TLS setup failed: {exc}") from None
    return context


def resource_path(reference: ObjectReference) -> str:
    """The GroupResource a RESTMapper gives a kind: ``Deployment`` in ``apps/v1`` -> ``deployments.apps``."""
    kind = reference.kind.lower()
    if kind.endswith("s"):
        plural = f"{kind}es"
    elif kind.endswith("y") and not kind.endswith(("ay", "ey", "oy", "uy")):
        plural = f"{kind[:-1]}ies"
    else:
        plural = f"{kind}s"
    group = reference.api_version.split("/", 1)[0] if "/" in reference.api_version else ""
    return f"{plural}.{group}" if group else plural


class AdapterClient:
    """GETs JSON from the adapter over HTTPS, as an aggregated API client would."""

    def __init__(self, base_url: str, context: ssl.SSLContext | None, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.context = context
        self.token = token

    def get(self, path: str, query: Mapping[str, str] | None = None) -> dict[str, Any]:
        """GET ``path``; raises ``RuntimeError`` with the Status message on HTTP or transport errors."""
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        if not url.startswith(("https://", "http://")):
            raise RuntimeError(f"{url}: only http(s) URLs are supported")
        request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - scheme checked
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(  # noqa: S310 - scheme checked above
                request, timeout=REQUEST_TIMEOUT_SECONDS, context=self.context
            ) as response:
                document = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"GET {path}: {exc.code} {_status_message(exc)}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RuntimeError(f"GET {path}: {reason}") from None
        if not isinstance(document, dict):
            raise RuntimeError(f"GET {path}: expected a JSON object")
        return document


def _status_message(error: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(error.read())
    except (ValueError, OSError):
        return str(error.reason)
    return str(body.get("message", error.reason)) if isinstance(body, dict) else str(error.reason)


def _timestamp(item: Mapping[str, Any], fallback: float) -> float:
    text = item.get("timestamp")
    if isinstance(text, str):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return fallback


def _items(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = document.get("items")
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise RuntimeError("response is not a MetricValueList")
    return items


def pod_metrics(document: Mapping[str, Any], now: float) -> dict[str, PodMetric]:
    """A ``MetricValueList`` of pods as the controller's ``PodMetricsInfo`` (v1beta1 or v1beta2 keys)."""
    result: dict[str, PodMetric] = {}
    for item in _items(document):
        described = item.get("describedObject")
        name = described.get("name") if isinstance(described, dict) else None
        value = item.get("value")
        if not isinstance(name, str) or not isinstance(value, str):
            raise RuntimeError("MetricValue without describedObject.name or value")
        window = item.get("windowSeconds", item.get("window", 60))
        try:
            result[name] = PodMetric(
                parse_milli(value),
                _timestamp(item, now),
                float(window) if isinstance(window, int | float) else 60.0,
            )
        except QuantityError as exc:
            raise RuntimeError(f"bad value for {name}: {exc}") from None
    return result


def _query(selector: str | None, metric_selector: str | None) -> dict[str, str]:
    query = {}
    if selector:
        query["labelSelector"] = selector
    if metric_selector:
        query["metricLabelSelector"] = metric_selector
    return query


def observe(
    client: AdapterClient, hpa: HorizontalPodAutoscaler, spec: MetricSpec, selector: str, now: float
) -> Observation:
    """One metric's observation, from the request the controller would make for it."""
    metric_selector = spec.selector.query() if spec.selector is not None else None
    quoted = urllib.parse.quote(spec.name, safe="")
    namespace = urllib.parse.quote(hpa.namespace, safe="")
    try:
        if spec.type is SourceType.PODS:
            document = client.get(
                f"{CUSTOM}/namespaces/{namespace}/pods/*/{quoted}", _query(selector, metric_selector)
            )
            return Observation(pod_values=pod_metrics(document, now))
        if spec.type is SourceType.OBJECT:
            assert spec.described_object is not None
            obj = urllib.parse.quote(spec.described_object.name, safe="")
            path = f"{CUSTOM}/namespaces/{namespace}/{resource_path(spec.described_object)}/{obj}/{quoted}"
            values = pod_metrics(client.get(path, _query(None, metric_selector)), now)
            if not values:
                raise RuntimeError(f"GET {path}: no value")
            return Observation(value=next(iter(values.values())).value)
        if spec.type is SourceType.EXTERNAL:
            document = client.get(
                f"{EXTERNAL}/namespaces/{namespace}/{quoted}", _query(metric_selector, None)
            )
            values_list = []
            for item in _items(document):
                value = item.get("value")
                if not isinstance(value, str):
                    raise RuntimeError("ExternalMetricValue without value")
                values_list.append(parse_milli(value))
            return Observation(values=tuple(values_list))
    except (RuntimeError, QuantityError) as exc:
        return Observation(error=str(exc))
    return Observation(
        error=f"{spec.type.value} metric {spec.name} comes from metrics.k8s.io, not the adapter"
    )


@dataclass(frozen=True)
class ClusterView:
    """What the cluster says at one sync: the scale's replicas, the target's pods, the real HPA's status."""

    spec_replicas: int
    status_replicas: int
    pods: tuple[Pod, ...]
    selector: str
    real_desired: int | None = None


def view_from_metrics(
    hpa: HorizontalPodAutoscaler,
    observations: Sequence[Observation],
    selector: str,
    replicas: int | None,
    previous: ClusterView | None,
) -> ClusterView:
    """Without cluster access: the pods the Pods metrics answered for, all Running and Ready.

    The replica count is ``replicas`` when given, else the number of those pods, else the last count seen
    (a failing metric must not look like a Deployment at zero), else ``minReplicas``.
    """
    names = sorted({name for o in observations for name in o.pod_values})
    if replicas is not None:
        count = replicas
    elif names:
        count = len(names)
    else:
        count = previous.spec_replicas if previous is not None else hpa.min_replicas
    if not names:
        names = [f"{hpa.scale_target_ref.name}-{i}" for i in range(count)]
    return ClusterView(count, count, tuple(Pod(name) for name in names), selector)


class KubeCluster:
    """Reads the scale subresource, the pods and the real HPA with the official client (``--kubeconfig``)."""

    def __init__(self, hpa: HorizontalPodAutoscaler, kubeconfig: str) -> None:
        try:
            from kubernetes import client, config  # noqa: PLC0415 - needed only with --kubeconfig

            load: Any = config.load_kube_config
            load(config_file=kubeconfig)
        except Exception as exc:  # noqa: BLE001 - the client raises many kinds for a bad kubeconfig
            raise WatchError(f"cannot load kubeconfig {kubeconfig}: {exc}") from None
        self.hpa = hpa
        self.core: Any = client.CoreV1Api()
        self.apps: Any = client.AppsV1Api()
        self.autoscaling: Any = client.AutoscalingV2Api()

    def view(self, now: float) -> ClusterView:
        """The scale, the pods matching its selector and the real HPA's desired replicas."""
        ref = self.hpa.scale_target_ref
        readers = {
            "Deployment": self.apps.read_namespaced_deployment_scale,
            "StatefulSet": self.apps.read_namespaced_stateful_set_scale,
            "ReplicaSet": self.apps.read_namespaced_replica_set_scale,
        }
        if ref.kind not in readers:
            raise WatchError(
                f"watch reads the scale of Deployment, StatefulSet or ReplicaSet, not {ref.kind}"
            )
        scale = readers[ref.kind](ref.name, self.hpa.namespace)
        selector = scale.status.selector or ""
        listed = self.core.list_namespaced_pod(self.hpa.namespace, label_selector=selector)
        pods = tuple(_pod_from_api(item) for item in listed.items)
        real: int | None = None
        try:
            status = self.autoscaling.read_namespaced_horizontal_pod_autoscaler_status(
                self.hpa.name, self.hpa.namespace
            )
            real = status.status.desired_replicas
        except Exception:  # noqa: BLE001 - a missing HPA just means no comparison
            real = None
        return ClusterView(scale.spec.replicas or 0, scale.status.replicas or 0, pods, selector, real)


def _pod_from_api(item: Any) -> Pod:
    status = item.status
    ready: bool | None = None
    transition = 0.0
    for condition in status.conditions or ():
        if condition.type == "Ready":
            ready = condition.status == "True"
            if condition.last_transition_time is not None:
                transition = condition.last_transition_time.timestamp()
    return Pod(
        name=item.metadata.name,
        phase=alg.PodPhase(status.phase)
        if status.phase in alg.PodPhase.__members__.values()
        else alg.PodPhase.UNKNOWN,
        ready=ready,
        deleted=item.metadata.deletion_timestamp is not None,
        start_time=status.start_time.timestamp() if status.start_time is not None else None,
        ready_transition_time=transition,
    )


def sync_once(
    client: AdapterClient,
    hpa: HorizontalPodAutoscaler,
    state: ControllerState,
    *,
    selector: str,
    now: float,
    config: ControllerConfig,
    cluster: KubeCluster | None = None,
    replicas: int | None = None,
    previous: ClusterView | None = None,
) -> tuple[alg.Decision, ClusterView]:
    """One sync: fetch every metric as the controller would and decide.

    The watcher scales nothing, so the scale events its policies count are the replica changes it sees
    between syncs (made by the real HPA or anyone else), not the ones it would have made.
    """
    view = cluster.view(now) if cluster is not None else None
    use_selector = view.selector if view is not None and not selector else selector
    observations = [observe(client, hpa, spec, use_selector, now) for spec in hpa.metrics]
    if view is None:
        view = view_from_metrics(hpa, observations, use_selector, replicas, previous)
    if previous is not None and view.spec_replicas != previous.spec_replicas:
        state = alg.store_scale_event(state, hpa.behavior, previous.spec_replicas, view.spec_replicas, now)
    decision = alg.reconcile(
        hpa,
        state,
        spec_replicas=view.spec_replicas,
        status_replicas=view.status_replicas,
        pods=view.pods,
        observations=observations,
        now=now,
        config=config,
    )
    seen = replace(
        decision.state, scale_up_events=state.scale_up_events, scale_down_events=state.scale_down_events
    )
    return replace(decision, state=seen), view


def _log_decision(hpa: HorizontalPodAutoscaler, decision: alg.Decision, view: ClusterView) -> None:
    fields: dict[str, Any] = {
        "hpa": f"{hpa.namespace}/{hpa.name}",
        "current": decision.current_replicas,
        "desired": decision.desired_replicas,
        "stabilized": decision.stabilized,
        "proposal": decision.proposal,
        "pods": len(view.pods),
    }
    if decision.metrics is not None:
        for proposal in decision.metrics.proposals:
            fields[f"metric_{proposal.spec.name}"] = (
                proposal.usage / 1000 if proposal.usage is not None else None
            )
            fields[f"proposal_{proposal.spec.name}"] = proposal.replicas
            if proposal.error:
                fields[f"error_{proposal.spec.name}"] = proposal.error
    if view.real_desired is not None:
        fields["real_hpa_desired"] = view.real_desired
    if decision.reason:
        fields["reason"] = decision.reason
    log.info("would scale" if decision.rescale else "would keep", extra=fields)


def run_watch(
    hpa: HorizontalPodAutoscaler,
    *,
    adapter: str,
    context: ssl.SSLContext | None,
    selector: str | None = None,
    kubeconfig: str | None = None,
    token_file: str | None = None,
    config: ControllerConfig | None = None,
    syncs: int = 0,
    replicas: int | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    on_decision: Callable[[alg.Decision, ClusterView], None] | None = None,
) -> int:
    """Sync every ``config.sync_period`` seconds (``syncs`` times, or forever) and log each decision."""
    config = config or ControllerConfig()
    token = None
    if token_file is not None:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise WatchError(f"cannot read token file {token_file}: {exc}") from None
    cluster = KubeCluster(hpa, kubeconfig) if kubeconfig is not None else None
    if cluster is None and selector is None and any(spec.type is SourceType.PODS for spec in hpa.metrics):
        raise WatchError(
            "Pods metrics need the pods' selector: give --selector (empty for every pod) or --kubeconfig"
        )
    client = AdapterClient(adapter, context, token)
    state = ControllerState()
    view: ClusterView | None = None
    done = 0
    while syncs == 0 or done < syncs:
        started = clock()
        decision, view = sync_once(
            client,
            hpa,
            state,
            selector=selector or "",
            now=started,
            config=config,
            cluster=cluster,
            replicas=replicas,
            previous=view,
        )
        state = decision.state
        _log_decision(hpa, decision, view)
        if on_decision is not None:
            on_decision(decision, view)
        done += 1
        if syncs == 0 or done < syncs:
            sleep(max(0.0, config.sync_period - (clock() - started)))
    return 0

"""The Kubernetes resources metrics describe, as the API names them in paths and discovery."""

from __future__ import annotations

from dataclasses import dataclass

GROUP = "custom.metrics.k8s.io"
VERSIONS = ("v1beta1", "v1beta2")
# k8s.io/metrics install.go: SetVersionPriority(v1beta1, v1beta2).
PREFERRED_VERSION = "v1beta1"


@dataclass(frozen=True)
class ResourceKind:
    """A resource metrics can describe: ``pods`` (core) or ``deployments`` (group ``apps``)."""

    resource: str
    group: str
    version: str
    kind: str
    namespaced: bool
    workload: bool = False

    @property
    def qualified(self) -> str:
        """The GroupResource string clients put in paths and discovery: ``pods``, ``deployments.apps``."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def api_version(self) -> str:
        """``describedObject.apiVersion``: group/version, so core objects read ``/v1``."""
        return f"{self.group}/{self.version}"


POD = ResourceKind("pods", "", "v1", "Pod", namespaced=True)
NODE = ResourceKind("nodes", "", "v1", "Node", namespaced=False)
NAMESPACE = ResourceKind("namespaces", "", "v1", "Namespace", namespaced=False)
WORKLOADS = (
    ResourceKind("deployments", "apps", "v1", "Deployment", namespaced=True, workload=True),
    ResourceKind("statefulsets", "apps", "v1", "StatefulSet", namespaced=True, workload=True),
    ResourceKind("replicasets", "apps", "v1", "ReplicaSet", namespaced=True, workload=True),
    ResourceKind("daemonsets", "apps", "v1", "DaemonSet", namespaced=True, workload=True),
    ResourceKind("jobs", "batch", "v1", "Job", namespaced=True, workload=True),
)
ALL_KINDS = (POD, NODE, NAMESPACE, *WORKLOADS)

# Clients send the qualified name (the HPA's RESTMapper gives "deployments.apps"); people type the short one.
_BY_NAME = {name: kind for kind in ALL_KINDS for name in {kind.resource, kind.qualified}}


def lookup_resource(name: str) -> ResourceKind | None:
    """The resource a path segment names, or ``None`` when the adapter serves no metrics for it."""
    return _BY_NAME.get(name)


def serves(kind: ResourceKind, resources: frozenset[str]) -> bool:
    """Whether a metric served for ``resources`` is offered on ``kind``.

    Workload values are aggregated over the workload's pods, so a pod metric is a workload metric too.
    """
    return kind.resource in resources or (kind.workload and POD.resource in resources)

"""Workload and pod GPU usage: per pod, per container on shared GPUs (measured shares), per owner."""

from __future__ import annotations

from typing import Any

from grafana.dashboards.common import (
    BYTES,
    COUNT,
    PERCENT,
    Section,
    Size,
    build_dashboard,
    datasource_variable,
    on_node,
    query_variable,
    target,
    text_panel,
    timeseries_panel,
)

UID = "kgm-workloads"
POD = "{{namespace}}/{{pod}}"
CONTAINER = "{{namespace}}/{{pod}}/{{container}}"
SELECTED = 'namespace=~"$namespace", pod=~"$pod"'

# Device series name their pod only when one container holds the device (a whole GPU).
EXCLUSIVE = f'{{{SELECTED}, pod!=""}}'
# Devices that more than one container holds (time-slicing, MPS).
SHARED_DEVICES = "(count by (instance, uuid) (gpu_allocation_info) > 1)"
# gpu_pod_info's owner, for the pods of the selected workloads.
OWNER = (
    "max by (namespace, pod, owner_kind, owner_name) "
    '(gpu_pod_info{namespace=~"$namespace", owner_name=~"$workload"})'
)


def per_workload(pod_expr: str, aggregate: str) -> str:
    """``pod_expr`` (one series per namespace/pod) aggregated over each owning workload."""
    return (
        f"{aggregate} by (namespace, owner_kind, owner_name) (\n"
        f"  {pod_expr}\n"
        f"  * on (namespace, pod) group_left (owner_kind, owner_name) {OWNER}\n)"
    )


def build() -> dict[str, Any]:
    """The workload / pod usage dashboard."""
    pod_utilization = f"avg by (namespace, pod) ({on_node(f'gpu_utilization_ratio{EXCLUSIVE}')})"
    pod_memory = f"sum by (namespace, pod) ({on_node(f'gpu_memory_used_bytes{EXCLUSIVE}')})"
    pods = Section(
        "Pods on whole GPUs",
        [
            timeseries_panel(
                "GPU utilization per pod",
                PERCENT,
                [target(pod_utilization, POD)],
                description="Mean over the pod's GPUs of the fraction of time a kernel ran, for GPUs the pod "
                "holds alone (shared GPUs are below). This is the adapter's gpu_utilization for the pod.",
                size=Size(8),
                max_value=1,
            ),
            timeseries_panel(
                "GPU memory per pod",
                BYTES,
                [target(pod_memory, POD)],
                description="Framebuffer in use on the GPUs the pod holds alone.",
                size=Size(8),
            ),
            timeseries_panel(
                "GPUs held per pod",
                COUNT,
                [target(f"count by (namespace, pod) ({on_node(f'gpu_allocation_info{{{SELECTED}}}')})", POD)],
                description="Devices allocated to the pod's containers, shared ones included.",
                size=Size(8),
            ),
        ],
    )
    shared = Section(
        "Shared GPUs: measured shares",
        [
            text_panel(
                "What these panels need",
                """
On a GPU several containers share (time-slicing, MPS), device series carry no pod. The exporter
measures each container's part from the processes NVML reports on the device
(`gpu_container_utilization_ratio`, `gpu_container_memory_used_bytes`): that needs real GPUs with
NVML, the DaemonSet's `hostPID: true`, and `--kube-api=true` to tell containers on one device apart.
Without them these panels stay empty; 'Holders of shared GPUs' still lists who shares what.
""",
                size=Size(24, 3),
            ),
            timeseries_panel(
                "SM time per container",
                PERCENT,
                [
                    target(
                        "sum by (namespace, pod, container) ("
                        + on_node(f"gpu_container_utilization_ratio{{{SELECTED}}}")
                        + ")",
                        CONTAINER,
                    )
                ],
                description="Share of the devices' SM time the container's processes used (100% = one GPU).",
                size=Size(8),
            ),
            timeseries_panel(
                "GPU memory per container",
                BYTES,
                [
                    target(
                        "sum by (namespace, pod, container) ("
                        + on_node(f"gpu_container_memory_used_bytes{{{SELECTED}}}")
                        + ")",
                        CONTAINER,
                    )
                ],
                size=Size(8),
            ),
            timeseries_panel(
                "Holders of shared GPUs",
                COUNT,
                [
                    target(
                        on_node(
                            f"gpu_allocation_info{{{SELECTED}}}\n  and on (instance, uuid) {SHARED_DEVICES}"
                        ),
                        "{{node}} GPU {{gpu}}: " + CONTAINER,
                    )
                ],
                description="One line per container holding a device that other containers hold too.",
                size=Size(8),
            ),
        ],
    )
    workloads = Section(
        "Workloads",
        [
            text_panel(
                "What these panels need",
                """
Pods are grouped by their owner from `gpu_pod_info` (ReplicaSets resolved to Deployments, Jobs to
CronJobs), which the exporter publishes with `--kube-api=true`. Values cover GPUs the pods hold alone.
""",
                size=Size(24, 2),
            ),
            timeseries_panel(
                "GPU utilization per workload",
                PERCENT,
                [target(per_workload(pod_utilization, "avg"), "{{namespace}}/{{owner_kind}}/{{owner_name}}")],
                description="Mean over the workload's pods: what an HPA on gpu_utilization averages.",
                size=Size(8),
                max_value=1,
            ),
            timeseries_panel(
                "GPU memory per workload",
                BYTES,
                [target(per_workload(pod_memory, "sum"), "{{namespace}}/{{owner_kind}}/{{owner_name}}")],
                size=Size(8),
            ),
            timeseries_panel(
                "Pods per workload",
                COUNT,
                [
                    target(
                        per_workload(
                            f"count by (namespace, pod) (gpu_allocation_info{{{SELECTED}}})", "count"
                        ),
                        "{{namespace}}/{{owner_kind}}/{{owner_name}}",
                    )
                ],
                description="Pods of the workload holding a GPU.",
                size=Size(8),
            ),
        ],
    )
    return build_dashboard(
        UID,
        "GPU workloads and pods",
        "kube-gpu-metrics: GPU use per pod, per container on shared GPUs and per owning workload.",
        [
            datasource_variable(),
            query_variable("node", "Node", "label_values(gpu_info, node)"),
            query_variable("namespace", "Namespace", "label_values(gpu_allocation_info, namespace)"),
            query_variable(
                "workload", "Workload", 'label_values(gpu_pod_info{namespace=~"$namespace"}, owner_name)'
            ),
            query_variable("pod", "Pod", 'label_values(gpu_allocation_info{namespace=~"$namespace"}, pod)'),
        ],
        [pods, shared, workloads],
    )

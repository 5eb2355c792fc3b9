"""Cluster GPU overview: capacity, allocation, utilization and memory by node, top pods, power, heat."""

from __future__ import annotations

from typing import Any

from grafana.dashboards.common import (
    BYTES,
    CELSIUS,
    COUNT,
    PERCENT,
    WATTS,
    Section,
    Size,
    bar_panel,
    build_dashboard,
    datasource_variable,
    on_host,
    on_node,
    query_variable,
    stat_panel,
    target,
    timeseries_panel,
)

UID = "kgm-cluster-overview"

# Busy time of each device divided equally among the containers holding it, summed per pod: a pod
# holding two busy GPUs counts 2 (200%), two pods time-slicing one busy GPU count 0.5 each.
POD_GPU_USE = f"""sum by (namespace, pod) (
  {on_node('gpu_allocation_info{namespace=~"$namespace"}')}
  * on (instance, uuid) group_left ()
  (max by (instance, uuid) (gpu_utilization_ratio)
    / on (instance, uuid) count by (instance, uuid) (gpu_allocation_info))
)"""


def build() -> dict[str, Any]:
    """The cluster overview dashboard."""
    capacity = Section(
        "Capacity",
        [
            stat_panel(
                "GPUs",
                COUNT,
                [target('count(gpu_info{node=~"$node"})')],
                description="GPU devices (MIG instances count as devices) the exporters see.",
            ),
            stat_panel(
                "GPUs allocated",
                COUNT,
                [target(f"count({on_node('count by (instance, uuid) (gpu_allocation_info)')})")],
                description="Devices the kubelet has allocated to at least one container.",
            ),
            stat_panel(
                "Idle while allocated",
                COUNT,
                [
                    target(
                        "count(\n"
                        + on_node(
                            "max by (instance, uuid) (max_over_time(gpu_utilization_ratio[$__range]))"
                            " < 0.01\n"
                            "  and on (instance, uuid) gpu_allocation_info"
                        )
                        + "\n) or vector(0)"
                    )
                ],
                description="Allocated devices that stayed below 1% utilization over the whole time range: "
                "held by a pod, of no use to anyone.",
            ),
            stat_panel(
                "Allocation slots in use",
                PERCENT,
                [
                    target(
                        f"sum({on_host('gpu_allocated')})\n/ sum({on_host('gpu_allocatable')})",
                    )
                ],
                description="Allocated over allocatable devices as the kubelet counts them "
                "(each time-slicing replica is a slot).",
            ),
            stat_panel(
                "Mean GPU utilization",
                PERCENT,
                [target(f"avg({on_node('gpu_utilization_ratio')})")],
            ),
            stat_panel(
                "Power draw",
                WATTS,
                [target(f"sum({on_node('gpu_power_watts')})")],
            ),
        ],
    )
    by_node = Section(
        "By node",
        [
            timeseries_panel(
                "GPU utilization by node",
                PERCENT,
                [target(f"avg by (node) ({on_node('gpu_utilization_ratio')})", "{{node}}")],
                description="Mean over the node's GPUs of the fraction of time a kernel ran.",
                size=Size(8),
                max_value=1,
            ),
            timeseries_panel(
                "GPU memory in use by node",
                PERCENT,
                [
                    target(
                        f"sum by (node) ({on_node('gpu_memory_used_bytes')})\n"
                        f"/ sum by (node) ({on_node('gpu_memory_total_bytes')})",
                        "{{node}}",
                    )
                ],
                description="Framebuffer used over framebuffer total, all GPUs of the node.",
                size=Size(8),
                max_value=1,
            ),
            timeseries_panel(
                "GPU memory used by node",
                BYTES,
                [target(f"sum by (node) ({on_node('gpu_memory_used_bytes')})", "{{node}}")],
                size=Size(8),
            ),
        ],
    )
    pods = Section(
        "Pods",
        [
            bar_panel(
                "Top pods by GPU use",
                PERCENT,
                [target(f"topk(10, {POD_GPU_USE})", "{{namespace}}/{{pod}}", instant=True)],
                description="Busy GPU time each pod holds, now: 100% is one whole GPU busy. A GPU several "
                "pods share is split equally among them; the workload dashboard shows measured shares.",
            ),
            timeseries_panel(
                "GPU use by pod",
                PERCENT,
                [target(POD_GPU_USE, "{{namespace}}/{{pod}}")],
                description="As 'Top pods', over time: 100% is one whole GPU busy.",
            ),
        ],
    )
    heat = Section(
        "Power and temperature",
        [
            timeseries_panel(
                "Power by node",
                WATTS,
                [
                    target(f"sum by (node) ({on_node('gpu_power_watts')})", "{{node}}"),
                    target(f"sum by (node) ({on_node('gpu_power_limit_watts')})", "{{node}} limit"),
                ],
            ),
            timeseries_panel(
                "Hottest GPU by node",
                CELSIUS,
                [target(f"max by (node) ({on_node('gpu_temperature_celsius')})", "{{node}}")],
                description="Data-centre GPUs slow their clocks near 85-90 °C; the node detail "
                "dashboard shows throttle reasons.",
            ),
        ],
    )
    return build_dashboard(
        UID,
        "GPU cluster overview",
        "kube-gpu-metrics: GPUs, allocation, utilization, memory, power and temperature across the cluster.",
        [
            datasource_variable(),
            query_variable("node", "Node", "label_values(gpu_info, node)"),
            query_variable("namespace", "Namespace", "label_values(gpu_allocation_info, namespace)"),
        ],
        [capacity, by_node, pods, heat],
    )

"""Node detail: every GPU of one node, field by field, and the host from the node_* series."""

from __future__ import annotations

from typing import Any

from grafana.dashboards.common import (
    BYTES,
    BYTES_PER_SECOND,
    CELSIUS,
    COUNT,
    HERTZ,
    PERCENT,
    WATTS,
    Section,
    Size,
    build_dashboard,
    datasource_variable,
    on_host,
    on_node,
    query_variable,
    target,
    timeseries_panel,
)

UID = "kgm-node-detail"
GPU = "GPU {{gpu}}"


def device(metric: str) -> str:
    """A device series of the selected GPUs on the selected node."""
    return on_node(f'{metric}{{gpu=~"$gpu"}}')


def increase(counter: str) -> str:
    """A device counter's increase per interval, for the selected GPUs on the selected node."""
    return on_node(f'increase({counter}{{gpu=~"$gpu"}}[$__rate_interval])')


def gpu_panel(title: str, unit: str, metric: str, description: str = "", **kwargs: Any) -> Any:
    """One device field, one line per GPU."""
    return device_panel(title, unit, {metric: GPU}, description, **kwargs)


def device_panel(title: str, unit: str, series: dict[str, str], description: str = "", **kwargs: Any) -> Any:
    """Device fields of the selected GPUs; ``series`` maps each metric to its legend."""
    targets = [target(device(metric), legend) for metric, legend in series.items()]
    return timeseries_panel(title, unit, targets, description=description, size=Size(8), **kwargs)


def host_panel(title: str, unit: str, series: dict[str, str], **kwargs: Any) -> Any:
    """Host series of the selected node; ``series`` maps each expression to its legend."""
    targets = [target(on_host(expr), legend) for expr, legend in series.items()]
    return timeseries_panel(title, unit, targets, size=Size(8), **kwargs)


def summed_rate(counter: str) -> str:
    """A host counter's rate per second, summed over the node's devices."""
    return f"sum by (instance) (rate({counter}[$__rate_interval]))"


def build() -> dict[str, Any]:
    """The node detail dashboard."""
    gpus = Section(
        "GPUs",
        [
            gpu_panel(
                "Utilization", PERCENT, "gpu_utilization_ratio", "Fraction of time a kernel ran.", max_value=1
            ),
            gpu_panel(
                "Memory controller busy",
                PERCENT,
                "gpu_memory_utilization_ratio",
                "Fraction of time device memory was read or written.",
                max_value=1,
            ),
            device_panel(
                "Memory used and free",
                BYTES,
                {"gpu_memory_used_bytes": "GPU {{gpu}} used", "gpu_memory_free_bytes": "GPU {{gpu}} free"},
            ),
            gpu_panel("Temperature", CELSIUS, "gpu_temperature_celsius"),
            device_panel(
                "Power", WATTS, {"gpu_power_watts": GPU, "gpu_power_limit_watts": "GPU {{gpu}} limit"}
            ),
            device_panel(
                "Clocks",
                HERTZ,
                {"gpu_sm_clock_hertz": "GPU {{gpu}} SM", "gpu_memory_clock_hertz": "GPU {{gpu}} memory"},
            ),
            device_panel(
                "Throttle reasons",
                COUNT,
                {"gpu_throttle_reasons": "GPU {{gpu}} {{reason}}"},
                "1 while the GPU's clocks are held down for that reason; gpu_idle is normal "
                "on an idle GPU, thermal and power reasons slow jobs down.",
                max_value=1,
            ),
            timeseries_panel(
                "XID errors",
                COUNT,
                [
                    target(
                        f"sum by (gpu, xid) ({increase('gpu_xid_errors_total')})",
                        "GPU {{gpu}} XID {{xid}}",
                    )
                ],
                description="XID errors the driver reported, per interval (needs NVML on real GPUs). "
                "13, 31, 43 are usually application faults; 48, 63, 64, 74, 79, 92, 94, 95 point at the GPU.",
                size=Size(8),
            ),
            timeseries_panel(
                "ECC errors",
                COUNT,
                [
                    target(
                        f"sum by (gpu, type) ({increase('gpu_ecc_errors_total')})",
                        "GPU {{gpu}} {{type}}",
                    )
                ],
                description="Volatile ECC errors per interval; an uncorrected one kills the job using "
                "the memory.",
                size=Size(8),
            ),
        ],
    )
    host = Section(
        "Host",
        [
            timeseries_panel(
                "CPU busy",
                PERCENT,
                [
                    target(
                        "1 - avg by (node) ("
                        + on_host('rate(node_cpu_seconds_total{mode="idle"}[$__rate_interval])')
                        + ")",
                        "{{node}}",
                    )
                ],
                description="Host series come from the exporter (--host-metrics=true), on the same "
                "instance as the node's GPUs.",
                size=Size(8),
                max_value=1,
            ),
            host_panel(
                "Load", COUNT, {"node_load1": "1 min", "node_load5": "5 min", "node_load15": "15 min"}
            ),
            host_panel(
                "Memory",
                BYTES,
                {
                    "node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes": "used",
                    "node_memory_MemTotal_bytes": "total",
                },
            ),
            host_panel(
                "Filesystem space used",
                PERCENT,
                {
                    '1 - node_filesystem_avail_bytes{fstype!~"tmpfs|overlay|squashfs"}\n'
                    '  / node_filesystem_size_bytes{fstype!~"tmpfs|overlay|squashfs"}': "{{mountpoint}}"
                },
                max_value=1,
            ),
            host_panel(
                "Disk throughput",
                BYTES_PER_SECOND,
                {
                    summed_rate("node_disk_read_bytes_total"): "read",
                    summed_rate("node_disk_written_bytes_total"): "written",
                },
            ),
            host_panel(
                "Network throughput",
                BYTES_PER_SECOND,
                {
                    summed_rate('node_network_receive_bytes_total{device!="lo"}'): "received",
                    summed_rate('node_network_transmit_bytes_total{device!="lo"}'): "sent",
                },
            ),
        ],
    )
    return build_dashboard(
        UID,
        "GPU node detail",
        "kube-gpu-metrics: every GPU of one node (utilization, memory, heat, power, clocks, throttling, "
        "errors) and its host.",
        [
            datasource_variable(),
            query_variable("node", "Node", "label_values(gpu_info, node)", multi=False),
            query_variable("gpu", "GPU", 'label_values(gpu_info{node=~"$node"}, gpu)'),
        ],
        [gpus, host],
    )

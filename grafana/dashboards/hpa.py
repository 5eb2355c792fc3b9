"""HPA experiment: the GPU metric an HPA scales on against its target, and the replicas over time.

Our series give the metric and what the HPA formula asks for; kube-state-metrics'
``kube_horizontalpodautoscaler_*`` series give the HPA's own target and replica counts where it runs.
"""

from __future__ import annotations

from typing import Any

from grafana.dashboards.common import (
    COUNT,
    PERCENT,
    Section,
    Size,
    build_dashboard,
    datasource_variable,
    query_variable,
    stat_panel,
    target,
    text_panel,
    textbox_variable,
    timeseries_panel,
)

UID = "kgm-hpa-experiment"
HPA = 'namespace="$namespace", horizontalpodautoscaler="$hpa"'
PODS = 'namespace="$namespace", pod=~"$pod"'
# Per pod as the adapter serves gpu_utilization (mean over the pod's whole GPUs), as a 0..1 ratio.
POD_UTILIZATION = f'avg by (namespace, pod) (gpu_utilization_ratio{{{PODS}, pod!=""}})'
METRIC = f"avg({POD_UTILIZATION})"
PODS_RUNNING = f"count(count by (pod) (gpu_allocation_info{{{PODS}}}))"
# The HPA's target for gpu_utilization is in percent, like the adapter's metric.
SPEC_TARGET = (
    f'max(kube_horizontalpodautoscaler_spec_target_metric{{{HPA}, metric_name="gpu_utilization"}}) / 100'
)


def build() -> dict[str, Any]:
    """The HPA experiment dashboard."""
    overview = Section(
        "Metric against target",
        [
            text_panel(
                "What this dashboard needs",
                """
**Pods** is a regular expression for the pods of the HPA's scale target (e.g. `gpu-infer-.*`), and
**Target** the `averageValue` of its `gpu_utilization` metric in percent: with those, the metric and
the replicas the HPA formula asks for come from kube-gpu-exporter's series alone. The HPA's own
target, replica counts and conditions (lines and numbers marked *HPA*) come from kube-state-metrics'
`kube_horizontalpodautoscaler_*` series and stay empty where it does not run; pick the HPA in **HPA**.
""",
                size=Size(24, 3),
            ),
            stat_panel(
                "gpu_utilization now",
                PERCENT,
                [target(METRIC)],
                description="Mean over the selected pods of their GPU utilization: the HPA's metric.",
                size=Size(6, 4),
            ),
            stat_panel(
                "Pods holding GPUs",
                COUNT,
                [target(PODS_RUNNING)],
                size=Size(6, 4),
            ),
            stat_panel(
                "Replicas (HPA)",
                COUNT,
                [
                    target(f"max(kube_horizontalpodautoscaler_status_current_replicas{{{HPA}}})", "current"),
                    target(f"max(kube_horizontalpodautoscaler_status_desired_replicas{{{HPA}}})", "desired"),
                ],
                description="From kube-state-metrics.",
                size=Size(6, 4),
            ),
            stat_panel(
                "Scaling limited (HPA)",
                COUNT,
                [
                    target(
                        "max(kube_horizontalpodautoscaler_status_condition"
                        f'{{{HPA}, condition="ScalingLimited", status="true"}})'
                    )
                ],
                description="1 while the HPA wants more or fewer replicas than min/max allow "
                "(kube-state-metrics).",
                size=Size(6, 4),
            ),
            timeseries_panel(
                "gpu_utilization against target",
                PERCENT,
                [
                    target(METRIC, "gpu_utilization (mean over pods)"),
                    target("vector($target / 100)", "target (typed)"),
                    target(SPEC_TARGET, "target (HPA)"),
                ],
                description="The HPA scales up while the metric stays above target by more than its "
                "tolerance (10%), and down after its stabilization window.",
                size=Size(12, 9),
            ),
            timeseries_panel(
                "Replicas",
                COUNT,
                [
                    target(PODS_RUNNING, "pods holding GPUs"),
                    target(
                        f"ceil({PODS_RUNNING} * {METRIC} * 100 / $target)",
                        "formula: ceil(pods * metric / target)",
                    ),
                    target(
                        f"max(kube_horizontalpodautoscaler_status_desired_replicas{{{HPA}}})", "desired (HPA)"
                    ),
                    target(
                        f"max(kube_horizontalpodautoscaler_status_current_replicas{{{HPA}}})", "current (HPA)"
                    ),
                    target(f"max(kube_horizontalpodautoscaler_spec_min_replicas{{{HPA}}})", "min (HPA)"),
                    target(f"max(kube_horizontalpodautoscaler_spec_max_replicas{{{HPA}}})", "max (HPA)"),
                ],
                description="The formula line is the HPA algorithm before tolerance, stabilization and "
                "behavior policies; 'kube-gpu-hpa simulate' replays those exactly.",
                size=Size(12, 9),
            ),
        ],
    )
    pods = Section(
        "Pods",
        [
            timeseries_panel(
                "GPU utilization per pod",
                PERCENT,
                [target(POD_UTILIZATION, "{{pod}}")],
                description="What the HPA averages: each selected pod's mean over its GPUs.",
                size=Size(12),
                max_value=1,
            ),
            timeseries_panel(
                "Metric as the HPA read it (HPA)",
                PERCENT,
                [
                    target(
                        "max by (metric_name) (kube_horizontalpodautoscaler_status_target_metric"
                        f'{{{HPA}, metric_name="gpu_utilization"}}) / 100',
                        "{{metric_name}}",
                    )
                ],
                description="The value the HPA controller last saw, from kube-state-metrics 2.9 or newer.",
                size=Size(12),
            ),
        ],
    )
    return build_dashboard(
        UID,
        "GPU HPA experiment",
        "kube-gpu-metrics: an HPA's GPU metric against its target, and the replicas it asks for.",
        [
            datasource_variable(),
            query_variable(
                "namespace", "Namespace", "label_values(gpu_allocation_info, namespace)", multi=False
            ),
            query_variable(
                "hpa",
                "HPA",
                'label_values(kube_horizontalpodautoscaler_info{namespace="$namespace"}, '
                "horizontalpodautoscaler)",
                multi=False,
            ),
            textbox_variable(
                "pod", "Pods", ".*", "Regular expression for the pods of the HPA's scale target"
            ),
            textbox_variable(
                "target", "Target", "60", "The HPA's averageValue for gpu_utilization, in percent"
            ),
        ],
        [overview, pods],
    )

"""``timeline.png``: each metric against its target, and the replica count as a step line with scale events.

matplotlib is imported here only, with the Agg backend, so the rest of the lab runs without it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from hpalab.algorithm import Tolerances
from hpalab.hpa_spec import HorizontalPodAutoscaler
from hpalab.simulate import Step, target_value

MAX_ANNOTATIONS = 30


def plot_timeline(
    path: Path,
    hpa: HorizontalPodAutoscaler,
    steps: Sequence[Step],
    tolerances: Tolerances,
    title: str = "",
) -> None:
    """Draw the replay: one panel per metric (value, target, tolerance band), then replicas."""
    import matplotlib  # noqa: PLC0415 - optional dependency, loaded only when plotting

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    times = [step.time for step in steps]
    rows = len(hpa.metrics) + 1
    figure, axes = plt.subplots(rows, 1, sharex=True, figsize=(11, 2.4 * rows + 1), squeeze=False)
    for i, spec in enumerate(hpa.metrics):
        ax = axes[i][0]
        values = [step.shown[i] if step.shown[i] is not None else math.nan for step in steps]
        target = target_value(spec)
        # The HPA reads a metric once per sync, so the value holds until the next one.
        ax.step(
            times,
            values,
            where="post",
            color="tab:blue",
            linewidth=1.4,
            label=f"{spec.label} ({spec.type.value})",
        )
        ax.axhline(target, color="tab:red", linestyle="--", linewidth=1, label=f"target {target:g}")
        ax.axhspan(
            target * (1 - tolerances.scale_down),
            target * (1 + tolerances.scale_up),
            color="tab:red",
            alpha=0.08,
            label=f"tolerance -{tolerances.scale_down:.0%}/+{tolerances.scale_up:.0%}",
        )
        ax.set_ylabel(spec.label)
        ax.legend(loc="upper right", fontsize="small")
        ax.grid(alpha=0.3)
    ax = axes[-1][0]
    replicas = [step.replicas for step in steps]
    recommendation = [
        step.decision.proposal if step.decision.proposal is not None else math.nan for step in steps
    ]
    stabilized = [
        step.decision.stabilized if step.decision.stabilized is not None else math.nan for step in steps
    ]
    ax.step(times, replicas, where="post", color="black", linewidth=1.8, label="replicas")
    ax.plot(times, recommendation, ".", color="tab:orange", markersize=4, label="metric proposal")
    ax.step(
        times, stabilized, where="post", color="tab:green", linestyle=":", linewidth=1.2, label="stabilized"
    )
    ax.axhline(hpa.min_replicas, color="grey", linestyle=":", linewidth=0.8)
    ax.axhline(hpa.max_replicas, color="grey", linestyle=":", linewidth=0.8)
    events = [step for step in steps if step.decision.rescale]
    for step in events[:MAX_ANNOTATIONS]:
        ax.annotate(
            f"{step.replicas_before}→{step.replicas}",
            xy=(step.time, step.replicas),
            xytext=(0, 8 if step.replicas > step.replicas_before else -14),
            textcoords="offset points",
            fontsize="x-small",
            ha="center",
            color="tab:purple",
        )
        ax.axvline(step.time, color="tab:purple", alpha=0.15, linewidth=1)
    ax.set_ylabel("replicas")
    ax.set_xlabel("time (s)")
    ax.set_ylim(
        bottom=0, top=max([hpa.min_replicas, *replicas, *[s for s in stabilized if not math.isnan(s)]]) + 1.5
    )
    ax.legend(loc="upper right", fontsize="small")
    ax.grid(alpha=0.3)
    figure.suptitle(
        title or f"HPA {hpa.namespace}/{hpa.name} on {hpa.scale_target_ref.kind}/{hpa.scale_target_ref.name}"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)

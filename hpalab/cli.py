"""``kube-gpu-hpa``: replay metrics through the HPA algorithm offline, or watch what an HPA would decide live.

Every flag has a ``KGM_*`` environment twin (``--sync-period`` <-> ``KGM_SYNC_PERIOD``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from hpalab.algorithm import (
    DEFAULT_CPU_INITIALIZATION_PERIOD,
    DEFAULT_DOWNSCALE_STABILIZATION,
    DEFAULT_INITIAL_READINESS_DELAY,
    DEFAULT_SYNC_PERIOD,
    DEFAULT_TOLERANCE,
    ControllerConfig,
    tolerances_for_hpa,
)
from hpalab.hpa_spec import load_hpa
from hpalab.progress import Progress
from hpalab.scenario import load_scenario
from hpalab.series import load_series
from hpalab.simulate import Step, replay_scenario, replay_series, write_timeline
from hpalab.yamlsource import SourceError
from kgm_common.flags import EnvTwinParser, parse_bool
from kgm_common.logs import LOG_FORMATS, LOG_LEVELS, configure_logging

PROG = "kube-gpu-hpa"


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _controller_flags(flags: EnvTwinParser) -> None:
    flags.add(
        "--sync-period",
        help="seconds between HPA syncs (--horizontal-pod-autoscaler-sync-period)",
        default=DEFAULT_SYNC_PERIOD,
        type=_positive,
    )
    flags.add(
        "--tolerance",
        help="cluster-wide tolerance (--horizontal-pod-autoscaler-tolerance)",
        default=DEFAULT_TOLERANCE,
        type=_non_negative,
    )
    flags.add(
        "--downscale-stabilization",
        help="seconds, scale-down window for HPAs without behavior.scaleDown.stabilizationWindowSeconds",
        default=DEFAULT_DOWNSCALE_STABILIZATION,
        type=_non_negative,
    )
    flags.add(
        "--configurable-tolerance",
        help="honour behavior.*.tolerance (the HPAConfigurableTolerance feature gate)",
        default=True,
        type=parse_bool,
        metavar="BOOL",
    )


def _config(args: argparse.Namespace) -> ControllerConfig:
    return ControllerConfig(
        tolerance=args.tolerance,
        sync_period=args.sync_period,
        downscale_stabilization=args.downscale_stabilization,
        cpu_initialization_period=DEFAULT_CPU_INITIALIZATION_PERIOD,
        initial_readiness_delay=DEFAULT_INITIAL_READINESS_DELAY,
        configurable_tolerance=args.configurable_tolerance,
    )


def _simulate_parser() -> EnvTwinParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} simulate",
        description="Replay a metric series or a closed-loop scenario through the HPA algorithm; "
        "writes timeline.csv and timeline.png into --out.",
    )
    flags = EnvTwinParser(parser)
    flags.add("--hpa", help="autoscaling/v2 HorizontalPodAutoscaler YAML", type=Path, metavar="FILE")
    flags.add("--series", help="CSV of metric values over time (docs/hpa-lab.md)", type=Path, metavar="FILE")
    flags.add("--scenario", help="scenario YAML: load over time, closed loop", type=Path, metavar="FILE")
    flags.add("--out", help="directory for timeline.csv and timeline.png", type=Path, metavar="DIR")
    flags.add(
        "--initial-replicas",
        help="replicas at t=0 (series mode; scenarios set initialReplicas); default the HPA's minReplicas",
        type=int,
        metavar="N",
    )
    flags.add(
        "--pod-startup-seconds",
        help="series mode: seconds a new pod stays Pending before it reports metrics",
        default=0.0,
        type=_non_negative,
    )
    flags.add(
        "--plot", help="write timeline.png (needs matplotlib)", default=True, type=parse_bool, metavar="BOOL"
    )
    flags.add(
        "--progress",
        help="progress bar on stderr",
        default="auto",
        choices=("auto", "always", "never"),
    )
    _controller_flags(flags)
    return flags


def simulate(argv: Sequence[str]) -> int:
    """``kube-gpu-hpa simulate``."""
    flags = _simulate_parser()
    args = flags.parse(argv)
    parser = flags.parser
    if args.hpa is None or args.out is None:
        parser.error("--hpa and --out are required")
    if (args.series is None) == (args.scenario is None):
        parser.error("give exactly one of --series and --scenario")
    config = _config(args)
    try:
        hpa = load_hpa(args.hpa)
        if args.series is not None:
            series = load_series(args.series)
            duration = series.duration
            unknown = {spec.name for spec in hpa.metrics} - series.metrics()
            if unknown:
                parser.error(f"{args.series}: no column for metric(s) {', '.join(sorted(unknown))}")
            steps_iter = replay_series(
                hpa,
                series,
                initial_replicas=args.initial_replicas,
                pod_startup_seconds=args.pod_startup_seconds,
                config=config,
            )
        else:
            scenario = load_scenario(args.scenario)
            duration = scenario.duration
            steps_iter = replay_scenario(hpa, scenario, config=config)
    except SourceError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    enabled = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    progress = Progress(duration, enabled=enabled)
    steps: list[Step] = []
    for step in steps_iter:
        steps.append(step)
        progress.update(step.time, f"t={step.time:.0f}s replicas={step.replicas}")
    progress.close()
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        csv_path = args.out / "timeline.csv"
        write_timeline(csv_path, hpa, steps)
        written = [str(csv_path)]
        if args.plot:
            try:
                from hpalab.plot import plot_timeline  # noqa: PLC0415 - matplotlib is an optional extra

                png_path = args.out / "timeline.png"
                plot_timeline(png_path, hpa, steps, tolerances_for_hpa(hpa, config))
                written.append(str(png_path))
            except ImportError:
                print(
                    f"{PROG}: error: wrote {csv_path}, but timeline.png needs matplotlib: "
                    "pip install 'kube-gpu-metrics[lab]' (or --plot false)",
                    file=sys.stderr,
                )
                return 1
    except OSError as exc:
        print(f"{PROG}: error: cannot write to {args.out}: {exc}", file=sys.stderr)
        return 1
    scale_events = sum(1 for step in steps if step.decision.rescale)
    final = steps[-1].replicas if steps else 0
    print(
        f"{len(steps)} syncs, {scale_events} scale events, final replicas {final}; wrote {', '.join(written)}"
    )
    return 0


def _watch_parser() -> EnvTwinParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} watch",
        description="Poll the custom metrics adapter with the requests the HPA controller makes and log "
        "what the HPA would decide at each sync.",
    )
    flags = EnvTwinParser(parser)
    flags.add("--adapter", help="adapter base URL, e.g. https://127.0.0.1:6443", metavar="URL")
    flags.add("--hpa", help="autoscaling/v2 HorizontalPodAutoscaler YAML", type=Path, metavar="FILE")
    flags.add(
        "--selector",
        help="label selector of the scale target's pods; '' for every pod, as the local demo adapter "
        "(which knows no labels) needs (default: the scale subresource's, with --kubeconfig)",
        metavar="SELECTOR",
    )
    flags.add(
        "--kubeconfig", help="kubeconfig to read pods, the scale and the real HPA's status", metavar="PATH"
    )
    flags.add(
        "--replicas",
        help="without --kubeconfig: the target's replicas (default: the pods the Pods metric answers for)",
        type=int,
        metavar="N",
    )
    flags.add(
        "--insecure-skip-tls-verify",
        help="do not verify the adapter's certificate",
        default=False,
        type=parse_bool,
        metavar="BOOL",
    )
    flags.add("--ca-file", help="CA bundle that signed the adapter's certificate", metavar="FILE")
    flags.add("--client-cert", help="client certificate for the adapter", metavar="FILE")
    flags.add("--client-key", help="client key for --client-cert", metavar="FILE")
    flags.add("--token-file", help="file holding a bearer token for the adapter", metavar="FILE")
    flags.add(
        "--syncs", help="stop after N syncs (0: run until interrupted)", default=0, type=int, metavar="N"
    )
    flags.add("--log-level", help="log level", default="info", choices=LOG_LEVELS)
    flags.add("--log-format", help="log format", default="logfmt", choices=LOG_FORMATS)
    _controller_flags(flags)
    return flags


def watch(argv: Sequence[str]) -> int:
    """``kube-gpu-hpa watch``."""
    from hpalab.watch import WatchError, run_watch, tls_context  # noqa: PLC0415 - only this command needs it

    flags = _watch_parser()
    args = flags.parse(argv)
    if args.adapter is None or args.hpa is None:
        flags.parser.error("--adapter and --hpa are required")
    configure_logging(args.log_level, args.log_format)
    try:
        hpa = load_hpa(args.hpa)
        context = tls_context(
            insecure=args.insecure_skip_tls_verify,
            ca_file=args.ca_file,
            client_cert=args.client_cert,
            client_key=args.client_key,
        )
        return run_watch(
            hpa,
            adapter=args.adapter,
            context=context,
            selector=args.selector,
            kubeconfig=args.kubeconfig,
            token_file=args.token_file,
            config=_config(args),
            syncs=args.syncs,
            replicas=args.replicas,
        )
    except (SourceError, WatchError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


COMMANDS = {"simulate": simulate, "watch": watch}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``kube-gpu-hpa``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        usage = f"usage: {PROG} {{simulate,watch}} ... (see {PROG} COMMAND --help)"
        if args and args[0] not in ("-h", "--help"):
            print(f"{usage}\n{PROG}: error: unknown command {args[0]!r}", file=sys.stderr)
            return 2
        print(usage)
        print("  simulate  replay a metric series or a scenario through the HPA algorithm, write CSV and PNG")
        print("  watch     poll the adapter like the HPA controller and log what it would decide")
        return 0 if args else 2
    return COMMANDS[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())

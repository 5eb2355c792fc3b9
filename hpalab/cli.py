"""``kube-gpu-hpa``: replay metrics through the HPA algorithm offline, watch what an HPA would decide live,
or run a whole experiment live on this machine (exporter -> adapter -> decisions).

Every flag has a ``KGM_*`` environment twin (``--sync-period`` <-> ``KGM_SYNC_PERIOD``).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from hpalab.algorithm import (
    DEFAULT_CPU_INITIALIZATION_PERIOD,
    DEFAULT_DOWNSCALE_STABILIZATION,
    DEFAULT_INITIAL_READINESS_DELAY,
    DEFAULT_SYNC_PERIOD,
    DEFAULT_TOLERANCE,
    ControllerConfig,
    tolerances_for_hpa,
)
from hpalab.hpa_spec import HorizontalPodAutoscaler, load_hpa
from hpalab.progress import Progress
from hpalab.series import load_series
from hpalab.simulate import Step, replay_scenario, replay_series, write_timeline
from kgm_common.flags import EnvTwinParser, parse_bool, positive_float
from kgm_common.logs import LOG_FORMATS, LOG_LEVELS, configure_logging
from kgm_common.scenario import load_scenario
from kgm_common.yamlsource import SourceError

PROG = "kube-gpu-hpa"


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _output_flags(flags: EnvTwinParser) -> None:
    """What a run writes besides its CSV: the plot and the progress bar (simulate and lab)."""
    flags.add(
        "--plot", help="write timeline.png (needs matplotlib)", default=True, type=parse_bool, metavar="BOOL"
    )
    flags.add(
        "--progress",
        help="progress bar on stderr",
        default="auto",
        choices=("auto", "always", "never"),
    )


def _controller_flags(flags: EnvTwinParser) -> None:
    flags.add(
        "--sync-period",
        help="seconds between HPA syncs (--horizontal-pod-autoscaler-sync-period)",
        default=DEFAULT_SYNC_PERIOD,
        type=positive_float,
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
    _output_flags(flags)
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
    return _write_outputs(args.out, hpa, steps, config, plot=args.plot)


def _write_outputs(
    out: Path, hpa: HorizontalPodAutoscaler, steps: list[Step], config: ControllerConfig, *, plot: bool
) -> int:
    """Write timeline.csv and, with ``plot``, timeline.png; print a summary."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        csv_path = out / "timeline.csv"
        write_timeline(csv_path, hpa, steps)
        written = [str(csv_path)]
        if plot:
            try:
                from hpalab.plot import plot_timeline  # noqa: PLC0415 - matplotlib is an optional extra

                png_path = out / "timeline.png"
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
        print(f"{PROG}: error: cannot write to {out}: {exc}", file=sys.stderr)
        return 1
    scale_events = sum(1 for step in steps if step.decision.rescale)
    final = steps[-1].replicas if steps else 0
    print(
        f"{len(steps)} syncs, {scale_events} scale events, final replicas {final}; wrote {', '.join(written)}"
    )
    return 0


def _lab_parser() -> EnvTwinParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} lab",
        description="Run a scenario end to end on this machine: the exporter's simulated GPUs follow it, "
        "the adapter serves their metrics, the HPA algorithm decides from the adapter and its replicas go "
        "back to the exporter. Writes timeline.csv, timeline.png and the two processes' logs into --out.",
    )
    flags = EnvTwinParser(parser)
    flags.add(
        "--hpa", help="autoscaling/v2 HorizontalPodAutoscaler YAML (Pods metrics)", type=Path, metavar="FILE"
    )
    flags.add("--scenario", help="scenario YAML: load over time", type=Path, metavar="FILE")
    flags.add("--out", help="directory for the timeline, the plot and the logs", type=Path, metavar="DIR")
    flags.add(
        "--speed",
        help="scenario seconds per real second (30: a 25-minute scenario in 50 s)",
        default=10.0,
        type=positive_float,
        metavar="N",
    )
    flags.add(
        "--adapter-window",
        help="seconds of scenario time the adapter averages over (rounded to whole real seconds); "
        "60 is the adapter's default in a cluster, shorter follows the load more closely",
        default=60.0,
        type=positive_float,
        metavar="SECONDS",
    )
    flags.add(
        "--scrape-interval",
        help="seconds of scenario time between the adapter's scrapes of the exporter",
        default=5.0,
        type=positive_float,
        metavar="SECONDS",
    )
    _output_flags(flags)
    flags.add("--log-level", help="log level", default="info", choices=LOG_LEVELS)
    flags.add("--log-format", help="log format", default="logfmt", choices=LOG_FORMATS)
    _controller_flags(flags)
    return flags


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def lab(argv: Sequence[str]) -> int:
    """``kube-gpu-hpa lab``."""
    from hpalab.lab import LabError, LabOptions, LabStack, check_supported, run_lab, window_note  # noqa: PLC0415

    flags = _lab_parser()
    args = flags.parse(argv)
    # SIGTERM takes the same way out as Ctrl-C, so the exporter and adapter are stopped too.
    signal.signal(signal.SIGTERM, _interrupt)
    if args.hpa is None or args.scenario is None or args.out is None:
        flags.parser.error("--hpa, --scenario and --out are required")
    configure_logging(args.log_level, args.log_format)
    config = _config(args)
    options = LabOptions(
        out=args.out,
        speed=args.speed,
        adapter_window=args.adapter_window,
        scrape_interval=args.scrape_interval,
    )
    steps: list[Step] = []
    try:
        hpa = load_hpa(args.hpa)
        scenario = load_scenario(args.scenario)
        check_supported(hpa)
        note = window_note(options)
        if note is not None:
            print(f"{PROG}: note: {note}", file=sys.stderr)
        enabled = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
        progress = Progress(scenario.duration, enabled=enabled)
        try:
            with LabStack(hpa, args.scenario, scenario, options) as stack:
                for step in run_lab(stack, config=config):
                    steps.append(step)
                    progress.update(step.time, f"t={step.time:.0f}s replicas={step.replicas}")
        finally:
            progress.close()
    except (SourceError, LabError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if steps:
            _write_outputs(args.out, hpa, steps, config, plot=args.plot)
        return 130
    return _write_outputs(args.out, hpa, steps, config, plot=args.plot)


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


COMMANDS = {"simulate": simulate, "watch": watch, "lab": lab}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``kube-gpu-hpa``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in COMMANDS:
        usage = f"usage: {PROG} {{simulate,watch,lab}} ... (see {PROG} COMMAND --help)"
        if args and args[0] not in ("-h", "--help"):
            print(f"{usage}\n{PROG}: error: unknown command {args[0]!r}", file=sys.stderr)
            return 2
        print(usage)
        print("  simulate  replay a metric series or a scenario through the HPA algorithm, write CSV and PNG")
        print("  watch     poll the adapter like the HPA controller and log what it would decide")
        print("  lab       run a scenario live: simulated exporter -> adapter -> HPA decisions -> replicas")
        return 0 if args else 2
    return COMMANDS[args[0]](args[1:])


if __name__ == "__main__":
    sys.exit(main())

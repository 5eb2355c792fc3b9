"""The exporter's options, parsed from flags and their ``KGM_*`` environment twins."""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from exporter import __version__
from exporter.gpu.profiles import LoadProfile, ProfileError, parse_profile
from exporter.pods.device_ids import DEFAULT_RESOURCE_PATTERNS
from exporter.pods.model import ContainerRef
from exporter.pods.simulated import parse_pod_spec
from kgm_common.addresses import ListenAddress, parse_listen_address
from kgm_common.flags import EnvTwinParser, parse_bool, positive_float
from kgm_common.logs import LOG_FORMATS, LOG_LEVELS
from kgm_common.scenario import Scenario, ScenarioError, load_scenario

GPU_SOURCES = ("auto", "nvml", "simulated", "none")
COMPAT_MODES = ("none", "dcgm")


@dataclass(frozen=True)
class ExporterConfig:
    """Everything the exporter needs to start; defaults fit the DaemonSet in deploy/."""

    listen: ListenAddress = field(default_factory=lambda: ListenAddress("0.0.0.0", 9402))
    gpu_source: str = "auto"
    simulated_gpus: int = 2
    simulated_model: str = "NVIDIA H100 80GB HBM3"
    simulated_memory_bytes: int = 81559 * 1024 * 1024
    simulated_profiles: tuple[LoadProfile, ...] = ()
    simulated_seed: int = 0
    scenario: Scenario | None = None
    scenario_control_file: Path | None = None
    scenario_speed: float = 1.0
    scenario_deployment: ContainerRef = field(
        default_factory=lambda: ContainerRef("default", "scenario", "main")
    )
    nvml_energy_ttl_seconds: float = 10.0
    pod_resources_socket: str = "/var/lib/kubelet/pod-resources/kubelet.sock"
    pod_resources_timeout_seconds: float = 2.0
    pod_resources_cache_ttl_seconds: float = 1.0
    gpu_resource_names: tuple[str, ...] = DEFAULT_RESOURCE_PATTERNS
    simulated_pods: tuple[ContainerRef, ...] = ()
    kube_api: bool = False
    kubeconfig: str = ""
    pod_labels: tuple[str, ...] = ()
    node_name: str = ""
    host_metrics: bool = True
    proc_root: str = "/proc"
    rootfs: str = "/"
    mount_timeout_seconds: float = 5.0
    compat: str = "none"
    log_level: str = "info"
    log_format: str = "json"


def _profile(text: str) -> LoadProfile:
    try:
        return parse_profile(text)
    except ProfileError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _scenario(text: str) -> Scenario:
    try:
        return load_scenario(Path(text))
    except ScenarioError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _deployment(text: str) -> ContainerRef:
    if text.strip().count("/") != 1:
        raise argparse.ArgumentTypeError(f"bad deployment {text!r}: expected NAMESPACE/NAME")
    return parse_pod_spec(text)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def build_parser(environ: dict[str, str] | None = None) -> EnvTwinParser:
    """The exporter's flags; each defaults to its ``KGM_*`` environment twin when that is set."""
    env = dict(os.environ) if environ is None else environ
    defaults = ExporterConfig()
    parser = argparse.ArgumentParser(
        prog="kube-gpu-exporter",
        description="Export GPU, host and pod-attribution metrics of one Kubernetes node for Prometheus.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    flags = EnvTwinParser(parser, env)
    flags.add(
        "--listen",
        help="address to serve /metrics, /healthz and /readyz on",
        default=defaults.listen,
        type=parse_listen_address,
        metavar="HOST:PORT",
    )
    flags.add(
        "--gpu-source",
        help="where GPU readings come from; auto = NVML if it initialises, else none",
        default=defaults.gpu_source,
        choices=GPU_SOURCES,
    )
    flags.add(
        "--simulated-gpus",
        help="number of GPUs the simulated source presents",
        default=defaults.simulated_gpus,
        type=_positive_int,
        metavar="N",
    )
    flags.add("--simulated-model", help="model name of the simulated GPUs", default=defaults.simulated_model)
    flags.add(
        "--simulated-memory-bytes",
        help="framebuffer size of each simulated GPU",
        default=defaults.simulated_memory_bytes,
        type=_positive_int,
        metavar="BYTES",
    )
    flags.add(
        "--simulated-profile",
        help="load profile of the next simulated GPU (repeat per GPU; the last repeats): "
        "constant:0.6 | step:from=0.2,to=0.8,at=60 | ramp:from=0,to=1,duration=300 | "
        "sine:min=0.2,max=0.9,period=120[,phase=0] | csv:FILE (seconds,utilization)",
        default=[],
        type=_profile,
        repeatable=True,
        metavar="SPEC",
    )
    flags.add(
        "--simulated-seed",
        help="seed of the simulated noise; same seed, same readings",
        default=defaults.simulated_seed,
        type=int,
    )
    flags.add(
        "--scenario",
        help="HPA lab scenario (docs/hpa-lab.md): the simulated GPUs and pods follow its load and "
        "replicas; needs --gpu-source simulated (or auto) and replaces --simulated-pod/-profile",
        type=_scenario,
        metavar="FILE",
    )
    flags.add(
        "--scenario-deployment",
        help="namespace and name of the scenario's Deployment; its pods are NAME-0, NAME-1, ...",
        default=f"{defaults.scenario_deployment.namespace}/{defaults.scenario_deployment.pod}",
        type=_deployment,
        metavar="NAMESPACE/NAME",
    )
    flags.add(
        "--scenario-speed",
        help="scenario seconds per real second (60: a 30-minute scenario in 30 s)",
        default=defaults.scenario_speed,
        type=positive_float,
        metavar="N",
    )
    flags.add(
        "--scenario-control-file",
        help="file of replicas=N and start=UNIX_SECONDS lines that sets the scenario's replicas and "
        "clock (kube-gpu-hpa lab writes it); re-read when it changes; default: the scenario's own "
        "replicas, clock from the exporter's start",
        type=Path,
        metavar="PATH",
    )
    flags.add(
        "--nvml-energy-ttl",
        help="seconds to reuse the total-energy reading (about 3 ms per GPU to read)",
        default=defaults.nvml_energy_ttl_seconds,
        type=positive_float,
        metavar="SECONDS",
    )
    flags.add(
        "--pod-resources-socket",
        help="the kubelet's pod-resources API socket; empty turns pod attribution off",
        default=defaults.pod_resources_socket,
        metavar="PATH",
    )
    flags.add(
        "--pod-resources-timeout",
        help="deadline of each pod-resources call",
        default=defaults.pod_resources_timeout_seconds,
        type=positive_float,
        metavar="SECONDS",
    )
    flags.add(
        "--pod-resources-cache-ttl",
        help="how long one pod-resources List answer serves scrapes",
        default=defaults.pod_resources_cache_ttl_seconds,
        type=positive_float,
        metavar="SECONDS",
    )
    flags.add(
        "--gpu-resource-names",
        help="extended resource names (globs) whose devices are GPUs (repeatable)",
        default=list(defaults.gpu_resource_names),
        repeatable=True,
        metavar="PATTERN",
    )
    flags.add(
        "--simulated-pod",
        help="a pod holding the next simulated GPU instead of the kubelet's answer (repeatable; "
        "pods beyond the GPU count share GPUs as time-slicing replicas)",
        default=[],
        type=parse_pod_spec,
        repeatable=True,
        metavar="NAMESPACE/POD[/CONTAINER]",
    )
    flags.add(
        "--kube-api",
        help="watch this node's pods in the Kubernetes API: names processes on shared GPUs, "
        "adds gpu_pod_info with owners and labels",
        default=defaults.kube_api,
        type=parse_bool,
        metavar="true|false",
    )
    flags.add(
        "--kubeconfig",
        help="kubeconfig for --kube-api (empty: in-cluster service account)",
        default=defaults.kubeconfig,
        metavar="PATH",
    )
    flags.add(
        "--pod-labels",
        help="pod label keys copied onto gpu_pod_info as label_<key> (repeatable)",
        default=[],
        repeatable=True,
        metavar="KEY",
    )
    flags.add(
        "--node-name",
        help="this node's name (the DaemonSet sets NODE_NAME from the downward API)",
        default=env.get("NODE_NAME") or socket.gethostname(),
        metavar="NAME",
    )
    flags.add(
        "--host-metrics",
        help="export node_* host series (turn off where node-exporter runs)",
        default=defaults.host_metrics,
        type=parse_bool,
        metavar="true|false",
    )
    flags.add(
        "--proc-root",
        help="the host's /proc as mounted in the container",
        default=defaults.proc_root,
        metavar="PATH",
    )
    flags.add(
        "--rootfs",
        help="where the host's / is mounted in the container; filesystem sizes are read through it",
        default=defaults.rootfs,
        metavar="PATH",
    )
    flags.add(
        "--mount-timeout",
        help="seconds a filesystem may take to answer statvfs before it is reported stuck",
        default=defaults.mount_timeout_seconds,
        type=positive_float,
        metavar="SECONDS",
    )
    flags.add(
        "--compat",
        help="also expose the core GPU fields under another exporter's names: "
        "dcgm = dcgm-exporter's DCGM_FI_DEV_* series, units and labels",
        default=defaults.compat,
        choices=COMPAT_MODES,
    )
    flags.add(
        "--log-level", help="least severe log level printed", default=defaults.log_level, choices=LOG_LEVELS
    )
    flags.add("--log-format", help="log line format", default=defaults.log_format, choices=LOG_FORMATS)
    return flags


def parse_config(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> ExporterConfig:
    """Parse flags (and env twins) into a config; exits with a usage message on bad input."""
    flags = build_parser(environ)
    args = flags.parse(argv)
    if args.scenario is not None:
        if args.gpu_source not in ("auto", "simulated"):
            flags.parser.error(
                f"--scenario drives simulated GPUs: it cannot use --gpu-source {args.gpu_source}"
            )
        if args.simulated_pod or args.simulated_profile:
            flags.parser.error(
                "--scenario decides the pods and the load: drop --simulated-pod/--simulated-profile"
            )
    elif args.scenario_control_file is not None:
        flags.parser.error("--scenario-control-file needs --scenario")
    return ExporterConfig(
        listen=args.listen,
        gpu_source="simulated" if args.scenario is not None else args.gpu_source,
        simulated_gpus=args.simulated_gpus,
        simulated_model=args.simulated_model,
        simulated_memory_bytes=args.simulated_memory_bytes,
        simulated_profiles=tuple(args.simulated_profile or ()),
        simulated_seed=args.simulated_seed,
        scenario=args.scenario,
        scenario_control_file=args.scenario_control_file,
        scenario_speed=args.scenario_speed,
        scenario_deployment=args.scenario_deployment,
        nvml_energy_ttl_seconds=args.nvml_energy_ttl,
        pod_resources_socket=args.pod_resources_socket,
        pod_resources_timeout_seconds=args.pod_resources_timeout,
        pod_resources_cache_ttl_seconds=args.pod_resources_cache_ttl,
        gpu_resource_names=tuple(args.gpu_resource_names),
        simulated_pods=tuple(args.simulated_pod),
        kube_api=args.kube_api,
        kubeconfig=args.kubeconfig,
        pod_labels=tuple(args.pod_labels),
        node_name=args.node_name,
        host_metrics=args.host_metrics,
        proc_root=args.proc_root,
        rootfs=args.rootfs,
        mount_timeout_seconds=args.mount_timeout,
        compat=args.compat,
        log_level=args.log_level,
        log_format=args.log_format,
    )

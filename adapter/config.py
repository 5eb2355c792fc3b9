"""The adapter's options: flags with ``KGM_*`` environment twins, gathered into one frozen value."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kgm_common.addresses import ListenAddress, parse_listen_address
from kgm_common.flags import EnvTwinParser, env_name, parse_bool, positive_float
from kgm_common.logs import LOG_FORMATS, LOG_LEVELS

DEFAULT_PORT = 6443
BACKENDS = ("direct", "prometheus")


@dataclass(frozen=True)
class AdapterConfig:
    """Everything the command line decides."""

    listen: ListenAddress
    backend: str = "direct"
    exporter_urls: tuple[str, ...] = ()
    exporter_service: tuple[str, str] = ("kube-gpu-metrics", "kube-gpu-exporter")
    direct_scrape_interval_seconds: float = 5.0
    direct_window_seconds: int = 60
    prometheus_url: str = ""
    prometheus_timeout_seconds: float = 3.0
    prometheus_bearer_token_file: Path | None = None
    prometheus_ca_file: Path | None = None
    prometheus_insecure_skip_verify: bool = False
    tls_cert_file: Path | None = None
    tls_private_key_file: Path | None = None
    kubeconfig: Path | None = None
    config_file: Path | None = None
    insecure_local: bool = False
    requestheader_client_ca_file: Path | None = None
    requestheader_allowed_names: tuple[str, ...] = ()
    client_ca_file: Path | None = None
    log_level: str = "info"
    log_format: str = "json"


def _service(text: str) -> tuple[str, str]:
    namespace, sep, name = text.strip().partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise argparse.ArgumentTypeError(f"expected NAMESPACE/NAME, got {text!r}")
    return namespace, name


def _positive_whole_seconds(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return value


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def build_parser(environ: dict[str, str] | None = None) -> EnvTwinParser:
    environ = dict(os.environ) if environ is None else environ
    parser = argparse.ArgumentParser(
        prog="kube-gpu-adapter",
        description="custom.metrics.k8s.io API server for GPU metrics (HPA targets, kubectl get --raw).",
    )
    flags = EnvTwinParser(parser, environ)
    flags.add(
        "--listen",
        help=f"HOST:PORT to serve HTTPS on (0.0.0.0:{DEFAULT_PORT}, or loopback with --insecure-local)",
        type=parse_listen_address,
        metavar="HOST:PORT",
    )
    flags.add("--backend", help="where metric values come from", default="direct", choices=BACKENDS)
    flags.add(
        "--exporter-url",
        help="exporter to scrape (direct backend; repeatable); when unset, found through the cluster",
        default=[],
        repeatable=True,
        metavar="URL",
    )
    flags.add(
        "--exporter-service",
        help="Service whose EndpointSlices list the exporters when no --exporter-url is given "
        "(direct backend, in a cluster); its port named 'metrics' is scraped",
        default=AdapterConfig.exporter_service,
        type=_service,
        metavar="NAMESPACE/NAME",
    )
    flags.add(
        "--direct-scrape-interval",
        help="seconds between scrapes of the exporters (direct backend)",
        default=AdapterConfig.direct_scrape_interval_seconds,
        type=positive_float,
        metavar="SECONDS",
    )
    flags.add(
        "--direct-window",
        help="whole seconds of scrapes each value averages, reported as the window (direct backend; "
        "at least the scrape interval)",
        default=AdapterConfig.direct_window_seconds,
        type=_positive_whole_seconds,
        metavar="SECONDS",
    )
    flags.add("--prometheus-url", help="Prometheus to query (prometheus backend)", default="", metavar="URL")
    flags.add(
        "--prometheus-timeout",
        help="seconds a Prometheus query may take before the read answers 503",
        default=AdapterConfig.prometheus_timeout_seconds,
        type=positive_float,
        metavar="SECONDS",
    )
    flags.add(
        "--prometheus-bearer-token-file",
        help="file holding a bearer token for Prometheus (re-read every minute)",
        type=Path,
        metavar="FILE",
    )
    flags.add(
        "--prometheus-ca-file",
        help="CA bundle that signed Prometheus' certificate",
        type=Path,
        metavar="FILE",
    )
    flags.add(
        "--prometheus-insecure-skip-verify",
        help="do not verify Prometheus' TLS certificate",
        default=False,
        type=parse_bool,
        metavar="true|false",
    )
    flags.add("--tls-cert-file", help="serving certificate (PEM); self-signed when unset", type=Path)
    flags.add("--tls-private-key-file", help="key of --tls-cert-file (PEM)", type=Path)
    flags.add(
        "--kubeconfig", help="kubeconfig for the Kubernetes API; in-cluster config when unset", type=Path
    )
    flags.add("--config", help="metric rules file", type=Path, metavar="FILE")
    _add_switch(
        flags,
        environ,
        "--insecure-local",
        "serve without authentication, on loopback only (demos); also --insecure-local=true|false",
    )
    flags.add(
        "--requestheader-client-ca-file",
        help="CA of the front proxy (kube-apiserver) whose X-Remote-* headers are trusted; "
        "read from kube-system/extension-apiserver-authentication when no CA file is given",
        type=Path,
    )
    flags.add(
        "--requestheader-allowed-names",
        help="front-proxy certificate common names allowed (comma-separated; empty allows any)",
        default=[],
        type=_names,
        metavar="NAMES",
    )
    flags.add("--client-ca-file", help="CA of client certificates (CN is the user, O the groups)", type=Path)
    flags.add("--log-level", help="least severe log level printed", default="info", choices=LOG_LEVELS)
    flags.add("--log-format", help="log line format", default="json", choices=LOG_FORMATS)
    return flags


def _add_switch(flags: EnvTwinParser, environ: Mapping[str, str], flag: str, help: str) -> None:
    """A boolean flag that may stand alone (``--insecure-local``), with its env twin as the default."""
    env = env_name(flag)
    raw = environ.get(env, "")
    try:
        default = parse_bool(raw) if raw else False
    except argparse.ArgumentTypeError as exc:
        flags.parser.error(f"{env}={raw!r}: {exc}")
    flags.parser.add_argument(
        flag,
        nargs="?",
        const=True,
        default=default,
        type=parse_bool,
        metavar="true|false",
        help=f"{help} [env {env}; default {str(default).lower()}]",
    )


def parse_config(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> AdapterConfig:
    """Parse flags (and their ``KGM_*`` twins) into an ``AdapterConfig``."""
    flags = build_parser(environ)
    args = flags.parse(argv)
    if args.direct_window < args.direct_scrape_interval:
        flags.parser.error("--direct-window must hold at least one --direct-scrape-interval")
    listen = args.listen or ListenAddress("127.0.0.1" if args.insecure_local else "0.0.0.0", DEFAULT_PORT)
    return AdapterConfig(
        listen=listen,
        backend=args.backend,
        exporter_urls=tuple(args.exporter_url),
        exporter_service=args.exporter_service,
        direct_scrape_interval_seconds=args.direct_scrape_interval,
        direct_window_seconds=args.direct_window,
        prometheus_url=args.prometheus_url,
        prometheus_timeout_seconds=args.prometheus_timeout,
        prometheus_bearer_token_file=args.prometheus_bearer_token_file,
        prometheus_ca_file=args.prometheus_ca_file,
        prometheus_insecure_skip_verify=args.prometheus_insecure_skip_verify,
        tls_cert_file=args.tls_cert_file,
        tls_private_key_file=args.tls_private_key_file,
        kubeconfig=args.kubeconfig,
        config_file=args.config,
        insecure_local=args.insecure_local,
        requestheader_client_ca_file=args.requestheader_client_ca_file,
        requestheader_allowed_names=tuple(args.requestheader_allowed_names),
        client_ca_file=args.client_ca_file,
        log_level=args.log_level,
        log_format=args.log_format,
    )

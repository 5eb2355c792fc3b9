"""``kube-gpu-adapter``: parse options, set up TLS and auth, build backend and resolver, serve."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from adapter.api.app import build_app
from adapter.auth.authenticator import ConfigError
from adapter.auth.kube import KubernetesAuthApi
from adapter.auth.setup import build_security
from adapter.config import AdapterConfig, parse_config
from adapter.server import serve
from adapter.tls import CertificatePair, self_signed_pair, server_context
from adapter.wiring import ComponentFactory, WiringError, build_components, kubernetes_api_client
from kgm_common.logs import configure_logging

log = logging.getLogger("adapter")


class StartError(Exception):
    """Options that cannot work together; the message says which."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check(config: AdapterConfig) -> None:
    if config.insecure_local and not _is_loopback(config.listen.host):
        raise StartError(
            f"--insecure-local serves without authentication and only on loopback, not {config.listen}: "
            "use --listen 127.0.0.1:PORT"
        )
    if (config.tls_cert_file is None) != (config.tls_private_key_file is None):
        raise StartError("--tls-cert-file and --tls-private-key-file go together")


async def _run(config: AdapterConfig, components: ComponentFactory, scratch: Path) -> None:
    api_client: Any = kubernetes_api_client(config)
    try:
        auth_api = (
            KubernetesAuthApi(api_client) if api_client is not None and not config.insecure_local else None
        )
        security = await build_security(config, auth_api)
        if config.tls_cert_file is not None and config.tls_private_key_file is not None:
            pair = CertificatePair(config.tls_cert_file, config.tls_private_key_file)
        else:
            try:
                pair = self_signed_pair(scratch, [config.listen.host])
            except OSError as exc:
                raise StartError(
                    f"cannot write the self-signed serving certificate in {scratch}: {exc.strerror or exc}; "
                    "give --tls-cert-file and --tls-private-key-file, or point TMPDIR at a writable directory"
                ) from None
            log.info("generated a self-signed serving certificate", extra={"cert_file": str(pair.cert_file)})
        try:
            context = server_context(pair, security.client_cas)
        except (OSError, ValueError) as exc:
            raise StartError(f"cannot load the serving certificate {pair.cert_file}: {exc}") from None
        if config.insecure_local:
            try:
                kubeconfig = write_local_kubeconfig(scratch / "kubeconfig", config, pair)
            except OSError as exc:
                raise StartError(
                    f"cannot write the local kubeconfig in {scratch}: {exc.strerror or exc}; "
                    "point TMPDIR at a writable directory"
                ) from None
            log.info(
                "local kubeconfig written",
                extra={
                    "kubeconfig": str(kubeconfig),
                    "try": f"kubectl --kubeconfig {kubeconfig} get --raw "
                    "'/apis/custom.metrics.k8s.io/v1beta1/nodes/*/gpu_utilization'",
                },
            )
        backend, resolver = components(config, api_client)
        app = build_app(backend, resolver, middlewares=security.middlewares, ready_notes=security.ready_notes)
        await serve(app, config.listen, context)
    finally:
        if api_client is not None:
            api_client.close()


def write_local_kubeconfig(path: Path, config: AdapterConfig, pair: CertificatePair) -> Path:
    """A kubeconfig for kubectl against this adapter in local mode; its token only stops kubectl prompting."""
    host = config.listen.host if _is_loopback(config.listen.host) else "127.0.0.1"
    server = (
        f"https://[{host}]:{config.listen.port}" if ":" in host else f"https://{host}:{config.listen.port}"
    )
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kube-gpu-adapter",
                "cluster": {"server": server, "certificate-authority": str(pair.cert_file)},
            }
        ],
        "users": [{"name": "local", "user": {"token": "insecure-local"}}],
        "contexts": [
            {"name": "kube-gpu-adapter", "context": {"cluster": "kube-gpu-adapter", "user": "local"}}
        ],
        "current-context": "kube-gpu-adapter",
    }
    path.write_text(json.dumps(document, indent=2))
    return path


@contextlib.contextmanager
def _scratch_directory() -> Iterator[Path]:
    """A private directory for generated files, removed at exit; a full or read-only TMPDIR says so."""
    try:
        directory = tempfile.TemporaryDirectory(prefix="kube-gpu-adapter-")
    except OSError as exc:
        raise StartError(
            f"cannot create a scratch directory for generated files: {exc.strerror or exc}; "
            "point TMPDIR at a writable directory (the Deployment mounts an emptyDir on /tmp)"
        ) from None
    with directory as path:
        yield Path(path)


def main(argv: Sequence[str] | None = None, *, components: ComponentFactory | None = None) -> int:
    """Entry point; returns the process exit status. ``components`` replaces the backend wiring."""
    config = parse_config(argv)
    configure_logging(config.log_level, config.log_format)
    try:
        _check(config)
        with _scratch_directory() as scratch:
            asyncio.run(_run(config, components or build_components, scratch))
    except (StartError, WiringError, ConfigError) as exc:
        log.error("cannot start: %s", exc)
        return 2
    except OSError as exc:
        log.error("cannot serve on %s: %s", config.listen, exc.strerror or exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

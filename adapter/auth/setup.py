"""From options to the authentication middleware and the CAs the TLS layer verifies clients against."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from aiohttp.typedefs import Middleware
from cryptography import x509

from adapter.auth.authenticator import (
    AuthenticationConfig,
    Authenticator,
    ConfigError,
    RequestHeaderConfig,
    config_from_configmap,
    load_certificates,
)
from adapter.auth.authorizer import Authorizer
from adapter.auth.kube import AuthApiError, KubeAuthApi
from adapter.auth.middleware import auth_middleware
from adapter.config import AdapterConfig

log = logging.getLogger(__name__)

INSECURE_WARNING = (
    "WARNING: --insecure-local: authentication and authorization are OFF; loopback only, demo use"
)


@dataclass(frozen=True)
class Security:
    """What the server needs for auth: middlewares, client CAs for TLS, and notes for ``/readyz``."""

    middlewares: tuple[Middleware, ...]
    client_cas: tuple[x509.Certificate, ...] = ()
    ready_notes: tuple[str, ...] = ()


def _read(path: Path, flag: str) -> tuple[x509.Certificate, ...]:
    try:
        return load_certificates(path.read_bytes(), flag)
    except OSError as exc:
        raise ConfigError(f"{flag} {path}: {exc.strerror or exc}") from None


async def authentication_config(config: AdapterConfig, api: KubeAuthApi | None) -> AuthenticationConfig:
    """CA files when given (as kube-apiserver's flags), else the cluster's authentication ConfigMap."""
    if config.requestheader_client_ca_file or config.client_ca_file:
        request_header = None
        if config.requestheader_client_ca_file:
            request_header = RequestHeaderConfig(
                ca=_read(config.requestheader_client_ca_file, "--requestheader-client-ca-file"),
                allowed_names=frozenset(config.requestheader_allowed_names),
            )
        client_ca = _read(config.client_ca_file, "--client-ca-file") if config.client_ca_file else ()
        return AuthenticationConfig(request_header=request_header, client_ca=client_ca)
    if api is None:
        raise ConfigError(
            "nothing to authenticate requests with: give --client-ca-file and/or "
            "--requestheader-client-ca-file, a --kubeconfig, run in a cluster, or --insecure-local for a demo"
        )
    try:
        data = await api.authentication_config()
    except AuthApiError as exc:
        raise ConfigError(f"cannot read kube-system/extension-apiserver-authentication: {exc}") from None
    found = config_from_configmap(data)
    if config.requestheader_allowed_names and found.request_header is not None:
        request_header = RequestHeaderConfig(
            ca=found.request_header.ca,
            allowed_names=frozenset(config.requestheader_allowed_names),
            username_headers=found.request_header.username_headers,
            group_headers=found.request_header.group_headers,
            extra_prefixes=found.request_header.extra_prefixes,
        )
        found = AuthenticationConfig(request_header=request_header, client_ca=found.client_ca)
    return found


async def build_security(config: AdapterConfig, api: KubeAuthApi | None) -> Security:
    """Auth for ``config``: none (loudly) with ``--insecure-local``, else delegated to the cluster."""
    if config.insecure_local:
        log.warning(INSECURE_WARNING)
        return Security(middlewares=(), ready_notes=(INSECURE_WARNING,))
    authentication = await authentication_config(config, api)
    if api is None:
        log.warning("no Kubernetes API: bearer tokens are refused and only system:masters is authorized")
    middleware = auth_middleware(Authenticator(authentication, api), Authorizer(api))
    return Security(middlewares=(middleware,), client_cas=authentication.all_cas)

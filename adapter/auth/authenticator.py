"""Authentication in kube-apiserver's delegated order: front-proxy headers, client certificate, token."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID
from multidict import CIMultiDictProxy

from adapter.auth.cache import TtlCache
from adapter.auth.identity import UserInfo
from adapter.auth.kube import AuthApiError, KubeAuthApi, TokenReviewResult

log = logging.getLogger(__name__)

DEFAULT_USERNAME_HEADERS = ("X-Remote-User",)
DEFAULT_GROUP_HEADERS = ("X-Remote-Group",)
DEFAULT_EXTRA_PREFIXES = ("X-Remote-Extra-",)


class ConfigError(ValueError):
    """Authentication settings that cannot be used (a CA file without certificates, bad ConfigMap JSON)."""


def load_certificates(pem: bytes, source: str) -> tuple[x509.Certificate, ...]:
    """Every certificate of a PEM bundle; an empty or unreadable bundle is a ``ConfigError``."""
    try:
        certificates = tuple(x509.load_pem_x509_certificates(pem))
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return certificates


@dataclass(frozen=True)
class RequestHeaderConfig:
    """Front-proxy settings: the CA that signs the proxy's certificate and the headers it sets."""

    ca: tuple[x509.Certificate, ...]
    allowed_names: frozenset[str] = frozenset()
    username_headers: tuple[str, ...] = DEFAULT_USERNAME_HEADERS
    group_headers: tuple[str, ...] = DEFAULT_GROUP_HEADERS
    extra_prefixes: tuple[str, ...] = DEFAULT_EXTRA_PREFIXES


@dataclass(frozen=True)
class AuthenticationConfig:
    """Which CAs and front-proxy settings authenticate requests."""

    request_header: RequestHeaderConfig | None = None
    client_ca: tuple[x509.Certificate, ...] = ()

    @property
    def all_cas(self) -> tuple[x509.Certificate, ...]:
        """Every CA a client certificate may chain to: the TLS layer verifies against their union."""
        return self.client_ca + (self.request_header.ca if self.request_header else ())


def _json_list(data: Mapping[str, str], key: str, default: Sequence[str] = ()) -> tuple[str, ...]:
    raw = data.get(key)
    if not raw:
        return tuple(default)
    try:
        values = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{key}: not a JSON list: {exc}") from None
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{key}: expected a JSON list of strings")
    return tuple(values)


def config_from_configmap(data: Mapping[str, str]) -> AuthenticationConfig:
    """Settings from ``kube-system/extension-apiserver-authentication`` (lists are JSON arrays there)."""
    request_header = None
    if data.get("requestheader-client-ca-file"):
        request_header = RequestHeaderConfig(
            ca=load_certificates(
                data["requestheader-client-ca-file"].encode(), "requestheader-client-ca-file"
            ),
            allowed_names=frozenset(_json_list(data, "requestheader-allowed-names")),
            username_headers=_json_list(data, "requestheader-username-headers", DEFAULT_USERNAME_HEADERS),
            group_headers=_json_list(data, "requestheader-group-headers", DEFAULT_GROUP_HEADERS),
            extra_prefixes=_json_list(data, "requestheader-extra-headers-prefix", DEFAULT_EXTRA_PREFIXES),
        )
    client_ca: tuple[x509.Certificate, ...] = ()
    if data.get("client-ca-file"):
        client_ca = load_certificates(data["client-ca-file"].encode(), "client-ca-file")
    return AuthenticationConfig(request_header=request_header, client_ca=client_ca)


def _issued_by(certificate: x509.Certificate, authorities: Sequence[x509.Certificate]) -> bool:
    for authority in authorities:
        try:
            certificate.verify_directly_issued_by(authority)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return True
    return False


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


class NotAuthenticatedError(Exception):
    """No authenticator accepted the request; the message says why (answered as 401)."""


@dataclass
class Authenticator:
    """Tries the front proxy, then a client certificate, then a bearer token; caches token reviews."""

    config: AuthenticationConfig
    api: KubeAuthApi | None = None
    token_ttl: float = 10.0
    clock: Callable[[], float] = time.monotonic
    _tokens: TtlCache[str, TokenReviewResult] = field(init=False)

    def __post_init__(self) -> None:
        self._tokens = TtlCache(clock=self.clock)

    async def authenticate(self, peer_certificate: bytes | None, headers: CIMultiDictProxy[str]) -> UserInfo:
        """The user making the request; raises ``NotAuthenticatedError``.

        ``peer_certificate`` is the DER certificate the TLS layer verified against ``config.all_cas``;
        which of those CAs signed it decides whether it is a front proxy or a user.
        """
        reasons: list[str] = []
        certificate = x509.load_der_x509_certificate(peer_certificate) if peer_certificate else None
        if certificate is not None:
            user = self._front_proxy(certificate, headers, reasons) or self._client_certificate(certificate)
            if user is not None:
                return user.with_authenticated_group()
        authorization = headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return (await self._token(token.strip())).with_authenticated_group()
        reasons.append("no client certificate and no bearer token")
        raise NotAuthenticatedError("; ".join(reasons))

    def _front_proxy(
        self, certificate: x509.Certificate, headers: CIMultiDictProxy[str], reasons: list[str]
    ) -> UserInfo | None:
        settings = self.config.request_header
        if settings is None or not _issued_by(certificate, settings.ca):
            return None
        name = _common_name(certificate)
        if settings.allowed_names and name not in settings.allowed_names:
            reasons.append(f"front-proxy certificate CN {name!r} is not an allowed name")
            return None
        user = next((value for header in settings.username_headers if (value := headers.get(header, ""))), "")
        if not user:
            reasons.append("front-proxy request without a user header")
            return None
        groups = tuple(value for header in settings.group_headers for value in headers.getall(header, ()))
        extra: dict[str, list[str]] = {}
        for header, value in headers.items():
            for prefix in settings.extra_prefixes:
                if header.lower().startswith(prefix.lower()) and len(header) > len(prefix):
                    extra.setdefault(unquote(header[len(prefix) :].lower()), []).append(value)
        return UserInfo(name=user, groups=groups, extra=UserInfo.extra_from(extra))

    def _client_certificate(self, certificate: x509.Certificate) -> UserInfo | None:
        if not _issued_by(certificate, self.config.client_ca):
            return None
        organizations = certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
        return UserInfo(name=_common_name(certificate), groups=tuple(str(o.value) for o in organizations))

    async def _token(self, token: str) -> UserInfo:
        key = hashlib.sha256(token.encode()).hexdigest()
        result = self._tokens.get(key)
        if result is None:
            if self.api is None:
                raise NotAuthenticatedError(
                    "bearer tokens need the Kubernetes API (TokenReview), which is not configured"
                )
            try:
                result = await self.api.token_review(token)
            except AuthApiError as exc:
                log.warning("token review failed", extra={"error": str(exc)})
                raise NotAuthenticatedError("the token could not be reviewed") from None
            self._tokens.put(key, result, self.token_ttl)
        if not result.authenticated or result.user is None:
            raise NotAuthenticatedError(
                f"invalid bearer token: {result.error}" if result.error else "invalid bearer token"
            )
        return result.user

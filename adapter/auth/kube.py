"""The Kubernetes API calls delegated auth needs, behind a small protocol; blocking calls run in threads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from adapter.auth.identity import Attributes, UserInfo

AUTHENTICATION_NAMESPACE = "kube-system"
AUTHENTICATION_CONFIGMAP = "extension-apiserver-authentication"


class AuthApiError(Exception):
    """The Kubernetes API could not answer a review; the request is not authenticated or not allowed."""


@dataclass(frozen=True)
class TokenReviewResult:
    """``TokenReview.status``: the user when ``authenticated``, else the API's ``error`` text."""

    authenticated: bool
    user: UserInfo | None = None
    error: str = ""


@dataclass(frozen=True)
class AccessReviewResult:
    """``SubjectAccessReview.status``."""

    allowed: bool
    denied: bool = False
    reason: str = ""
    evaluation_error: str = ""


class KubeAuthApi(Protocol):
    """TokenReview, SubjectAccessReview and the authentication ConfigMap."""

    async def token_review(self, token: str) -> TokenReviewResult: ...

    async def subject_access_review(self, user: UserInfo, attributes: Attributes) -> AccessReviewResult: ...

    async def authentication_config(self) -> Mapping[str, str]: ...


def token_review_body(token: str) -> dict[str, Any]:
    return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}


def access_review_body(user: UserInfo, attributes: Attributes) -> dict[str, Any]:
    """The ``authorization.k8s.io/v1`` SubjectAccessReview kube-apiserver's webhook authorizer sends."""
    spec: dict[str, Any] = {"user": user.name, "groups": list(user.groups)}
    if user.uid:
        spec["uid"] = user.uid
    if user.extra:
        spec["extra"] = {key: list(values) for key, values in user.extra}
    if attributes.resource_request:
        spec["resourceAttributes"] = {
            "namespace": attributes.namespace,
            "verb": attributes.verb,
            "group": attributes.api_group,
            "version": attributes.api_version,
            "resource": attributes.resource,
            "subresource": attributes.subresource,
            "name": attributes.name,
        }
    else:
        spec["nonResourceAttributes"] = {"path": attributes.path, "verb": attributes.verb}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


def parse_token_review(document: Mapping[str, Any]) -> TokenReviewResult:
    status = document.get("status") or {}
    if not status.get("authenticated"):
        return TokenReviewResult(False, error=str(status.get("error") or "token not accepted"))
    user = status.get("user") or {}
    return TokenReviewResult(
        True,
        UserInfo(
            name=str(user.get("username", "")),
            uid=str(user.get("uid", "")),
            groups=tuple(user.get("groups") or ()),
            extra=UserInfo.extra_from(user.get("extra") or {}),
        ),
    )


def parse_access_review(document: Mapping[str, Any]) -> AccessReviewResult:
    status = document.get("status") or {}
    return AccessReviewResult(
        allowed=bool(status.get("allowed")),
        denied=bool(status.get("denied")),
        reason=str(status.get("reason") or ""),
        evaluation_error=str(status.get("evaluationError") or ""),
    )


class KubernetesAuthApi:
    """``KubeAuthApi`` through the official client (``kubernetes.client.ApiClient``)."""

    def __init__(self, api_client: Any, *, timeout: float = 10.0) -> None:
        self._authentication = client.AuthenticationV1Api(api_client)
        self._authorization = client.AuthorizationV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        self._timeout = timeout

    async def _call(self, method: Any, *args: Any) -> dict[str, Any]:
        try:
            response = await asyncio.to_thread(
                method, *args, _preload_content=False, _request_timeout=self._timeout
            )
        except (ApiException, OSError) as exc:
            raise AuthApiError(f"{getattr(method, '__name__', 'call')}: {exc}") from exc
        document = json.loads(response.data)
        if not isinstance(document, dict):
            raise AuthApiError("the Kubernetes API answered something that is not an object")
        return document

    async def token_review(self, token: str) -> TokenReviewResult:
        return parse_token_review(
            await self._call(self._authentication.create_token_review, token_review_body(token))
        )

    async def subject_access_review(self, user: UserInfo, attributes: Attributes) -> AccessReviewResult:
        body = access_review_body(user, attributes)
        return parse_access_review(await self._call(self._authorization.create_subject_access_review, body))

    async def authentication_config(self) -> Mapping[str, str]:
        document = await self._call(
            self._core.read_namespaced_config_map, AUTHENTICATION_CONFIGMAP, AUTHENTICATION_NAMESPACE
        )
        data = document.get("data") or {}
        return {str(key): str(value) for key, value in data.items()}

"""Authorization by SubjectAccessReview, with upstream's always-allowed paths and groups and short caches."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from adapter.auth.cache import TtlCache
from adapter.auth.identity import Attributes, UserInfo
from adapter.auth.kube import AccessReviewResult, AuthApiError, KubeAuthApi

log = logging.getLogger(__name__)

# k8s.io/apiserver DelegatingAuthorizationOptions defaults.
ALWAYS_ALLOW_PATHS = frozenset({"/healthz", "/readyz", "/livez"})
ALWAYS_ALLOW_GROUPS = frozenset({"system:masters"})


@dataclass(frozen=True)
class Decision:
    """Whether the request may proceed, and the reviewer's reason when it may not."""

    allowed: bool
    reason: str = ""


@dataclass
class Authorizer:
    """Asks the Kubernetes API whether ``user`` may do ``attributes``; answers are cached for a TTL."""

    api: KubeAuthApi | None
    allow_ttl: float = 10.0
    deny_ttl: float = 10.0
    always_allow_groups: frozenset[str] = ALWAYS_ALLOW_GROUPS
    clock: Callable[[], float] = time.monotonic
    _cache: TtlCache[tuple[UserInfo, Attributes], Decision] = field(init=False)

    def __post_init__(self) -> None:
        self._cache = TtlCache(clock=self.clock)

    async def authorize(self, user: UserInfo, attributes: Attributes) -> Decision:
        if self.always_allow_groups.intersection(user.groups):
            return Decision(True)
        if not attributes.resource_request and attributes.path in ALWAYS_ALLOW_PATHS:
            return Decision(True)
        key = (user, attributes)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        if self.api is None:
            return Decision(False, "no Kubernetes API is configured to review access")
        try:
            review = await self.api.subject_access_review(user, attributes)
        except AuthApiError as exc:
            log.warning("access review failed", extra={"error": str(exc), "user": user.name})
            return Decision(False, "the access review could not be completed")
        decision = _decision(review)
        self._cache.put(key, decision, self.allow_ttl if decision.allowed else self.deny_ttl)
        return decision


def _decision(review: AccessReviewResult) -> Decision:
    if review.allowed and not review.denied:
        return Decision(True)
    return Decision(False, review.reason or review.evaluation_error)


def forbidden_message(user: UserInfo, attributes: Attributes, reason: str) -> str:
    """The message kube-apiserver writes for a denied request (``NewForbidden`` plus the RBAC wording)."""
    suffix = f": {reason}" if reason else ""
    if not attributes.resource_request:
        return f'forbidden: User "{user.name}" cannot {attributes.verb} path "{attributes.path}"{suffix}'
    resource = attributes.resource + (f"/{attributes.subresource}" if attributes.subresource else "")
    qualified = (
        f"{attributes.resource}.{attributes.api_group}" if attributes.api_group else attributes.resource
    )
    subject = f'{qualified} "{attributes.name}"' if attributes.name else qualified
    scope = f' in the namespace "{attributes.namespace}"' if attributes.namespace else " at the cluster scope"
    return (
        f'{subject} is forbidden: User "{user.name}" cannot {attributes.verb} resource "{resource}" '
        f'in API group "{attributes.api_group}"{scope}{suffix}'
    )

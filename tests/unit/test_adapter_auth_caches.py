"""The review caches answer only the question they were asked: one token's review never serves another,
one user's or request's access decision never serves another, a failed review is not cached, and a
full cache drops its oldest answers."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from adapter.auth.authenticator import AuthenticationConfig, Authenticator, NotAuthenticatedError
from adapter.auth.authorizer import Authorizer
from adapter.auth.cache import TtlCache
from adapter.auth.identity import Attributes, UserInfo, request_attributes
from adapter.auth.kube import AccessReviewResult, AuthApiError, TokenReviewResult

POD = "/apis/custom.metrics.k8s.io/v1beta1/namespaces/default/pods/web-0/gpu_utilization"


@dataclass
class ScriptedApi:
    """Tokens map to users; access is allowed for (user, verb, path) triples listed; can fail on demand."""

    users: dict[str, UserInfo]
    allowed: set[tuple[str, tuple[str, ...], str, str]] = field(default_factory=set)
    failing: bool = False
    token_reviews: list[str] = field(default_factory=list)
    access_reviews: list[tuple[UserInfo, Attributes]] = field(default_factory=list)

    async def token_review(self, token: str) -> TokenReviewResult:
        self.token_reviews.append(token)
        if self.failing:
            raise AuthApiError("connection refused")
        user = self.users.get(token)
        return TokenReviewResult(True, user) if user else TokenReviewResult(False, error="unknown token")

    async def subject_access_review(self, user: UserInfo, attributes: Attributes) -> AccessReviewResult:
        self.access_reviews.append((user, attributes))
        if self.failing:
            raise AuthApiError("connection refused")
        key = (user.name, user.groups, attributes.verb, attributes.path)
        return AccessReviewResult(allowed=key in self.allowed)

    async def authentication_config(self) -> dict[str, str]:
        return {}


def bearer(token: str) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict({"Authorization": f"Bearer {token}"}))


async def test_each_token_is_reviewed_for_itself() -> None:
    api = ScriptedApi({"alice-token": UserInfo("alice"), "bob-token": UserInfo("bob")})
    authenticator = Authenticator(AuthenticationConfig(), api)
    assert (await authenticator.authenticate(None, bearer("alice-token"))).name == "alice"
    assert (await authenticator.authenticate(None, bearer("bob-token"))).name == "bob"
    with pytest.raises(NotAuthenticatedError):
        await authenticator.authenticate(None, bearer("alice-token-but-longer"))
    assert (await authenticator.authenticate(None, bearer("alice-token"))).name == "alice"
    assert api.token_reviews == ["alice-token", "bob-token", "alice-token-but-longer"]


async def test_a_failed_token_review_is_not_cached() -> None:
    api = ScriptedApi({"t": UserInfo("alice")}, failing=True)
    authenticator = Authenticator(AuthenticationConfig(), api)
    with pytest.raises(NotAuthenticatedError, match="could not be reviewed"):
        await authenticator.authenticate(None, bearer("t"))
    api.failing = False
    assert (await authenticator.authenticate(None, bearer("t"))).name == "alice"


async def test_access_decisions_are_per_user_groups_and_request() -> None:
    reader = UserInfo("hpa", groups=("readers", "system:authenticated"))
    api = ScriptedApi({}, allowed={(reader.name, reader.groups, "get", POD)})
    authorizer = Authorizer(api)
    pod = request_attributes("GET", POD)
    assert (await authorizer.authorize(reader, pod)).allowed
    # Same name, other groups: another user as far as the decision goes.
    impostor = UserInfo("hpa", groups=("system:authenticated",))
    assert not (await authorizer.authorize(impostor, pod)).allowed
    # Same user, another object or verb: another question.
    assert not (
        await authorizer.authorize(reader, request_attributes("GET", POD.replace("web-0", "web-1")))
    ).allowed
    assert not (await authorizer.authorize(reader, request_attributes("DELETE", POD))).allowed
    assert (await authorizer.authorize(reader, pod)).allowed
    assert len(api.access_reviews) == 4


async def test_a_failed_access_review_denies_and_is_not_cached() -> None:
    user = UserInfo("hpa")
    api = ScriptedApi({}, allowed={("hpa", (), "get", POD)}, failing=True)
    authorizer = Authorizer(api)
    pod = request_attributes("GET", POD)
    assert not (await authorizer.authorize(user, pod)).allowed
    api.failing = False
    assert (await authorizer.authorize(user, pod)).allowed


def test_a_full_cache_drops_its_oldest_entries() -> None:
    cache: TtlCache[str, int] = TtlCache(max_entries=3, clock=lambda: 0.0)
    for number in range(5):
        cache.put(f"k{number}", number, ttl=10)
    assert [cache.get(f"k{number}") for number in range(5)] == [None, None, 2, 3, 4]

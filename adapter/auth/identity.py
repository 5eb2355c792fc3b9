"""Who is asking (``UserInfo``) and what for (``Attributes``, read from the path as kube-apiserver does)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

AUTHENTICATED_GROUP = "system:authenticated"


@dataclass(frozen=True)
class UserInfo:
    """An authenticated user; ``extra`` is sorted (key, values) pairs so the value is hashable."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def with_authenticated_group(self) -> UserInfo:
        """Add ``system:authenticated`` as kube-apiserver does for every authenticated user."""
        if AUTHENTICATED_GROUP in self.groups:
            return self
        return UserInfo(self.name, self.uid, (*self.groups, AUTHENTICATED_GROUP), self.extra)

    @staticmethod
    def extra_from(values: Mapping[str, list[str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
        return tuple(sorted((key, tuple(found)) for key, found in values.items()))


@dataclass(frozen=True)
class Attributes:
    """What a request does, in SubjectAccessReview terms (resource or non-resource attributes)."""

    verb: str
    path: str
    resource_request: bool = False
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""


_VERBS = {
    "GET": "get",
    "HEAD": "get",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}


def request_attributes(method: str, path: str) -> Attributes:
    """Attributes of a request as ``k8s.io/apiserver`` ``RequestInfoFactory.NewRequestInfo`` derives them.

    ``/apis/<group>/<version>/...`` with at least a resource is a resource request; anything shorter
    (discovery, OpenAPI, health) is a non-resource request on the path. A GET without a name is a list.
    """
    verb = _VERBS.get(method.upper(), method.lower())
    parts = path.strip("/").split("/") if path.strip("/") else []
    if len(parts) < 4 or parts[0] != "apis":
        return Attributes(verb=verb, path=path)
    group, version, rest = parts[1], parts[2], parts[3:]
    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2:
            rest = rest[2:]
    resource = rest[0]
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 else ""
    if not name and verb == "get":
        verb = "list"
    if not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(
        verb=verb,
        path=path,
        resource_request=True,
        namespace=namespace,
        api_group=group,
        api_version=version,
        resource=resource,
        subresource=subresource,
        name=name,
    )

"""The aiohttp middleware that authenticates and authorizes every request but the health checks."""

from __future__ import annotations

import logging
import ssl

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from adapter.api.status import StatusError
from adapter.auth.authenticator import Authenticator, NotAuthenticatedError
from adapter.auth.authorizer import ALWAYS_ALLOW_PATHS, Authorizer, forbidden_message
from adapter.auth.identity import request_attributes

log = logging.getLogger(__name__)


def peer_certificate(request: web.Request) -> bytes | None:
    """The client's certificate in DER, present only when the TLS handshake verified it."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if not isinstance(ssl_object, ssl.SSLObject):
        return None
    return ssl_object.getpeercert(binary_form=True)


def auth_middleware(authenticator: Authenticator, authorizer: Authorizer) -> Middleware:
    """401 for requests nobody vouches for, 403 for what the user may not do, as ``metav1.Status``."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Health checks are answered to anyone, as upstream's anonymous user on always-allowed paths.
        if request.path in ALWAYS_ALLOW_PATHS:
            return await handler(request)
        try:
            user = await authenticator.authenticate(peer_certificate(request), request.headers)
        except NotAuthenticatedError as exc:
            log.info("unauthenticated request", extra={"path": request.path, "reason": str(exc)})
            raise StatusError(401, "Unauthorized") from None
        attributes = request_attributes(request.method, request.path)
        decision = await authorizer.authorize(user, attributes)
        if not decision.allowed:
            raise StatusError(403, forbidden_message(user, attributes, decision.reason))
        return await handler(request)

    return middleware

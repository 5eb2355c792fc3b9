"""A bound on the requests the adapter works on at once, as kube-apiserver's ``--max-requests-inflight``."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from adapter.api.status import StatusError

log = logging.getLogger(__name__)

# kube-apiserver's default for --max-requests-inflight.
MAX_IN_FLIGHT = 400
RETRY_AFTER_SECONDS = 1
# Probes must answer even when the adapter is saturated, or the kubelet restarts a busy adapter.
EXEMPT_PATHS = frozenset({"/healthz", "/livez", "/readyz"})


def in_flight_limit(limit: int = MAX_IN_FLIGHT) -> Middleware:
    """Beyond ``limit`` requests in progress, answer 429 ``TooManyRequests`` with ``Retry-After``.

    It runs before authentication, so a flood of requests costs no TokenReview or SubjectAccessReview.
    """
    in_flight = 0
    refused = 0

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        nonlocal in_flight, refused
        if request.path in EXEMPT_PATHS:
            return await handler(request)
        if in_flight >= limit:
            if refused == 0:
                log.warning("too many requests in flight; answering 429", extra={"limit": limit})
            refused += 1
            error = StatusError(
                429,
                "too many requests, please try again later",
                details={"retryAfterSeconds": RETRY_AFTER_SECONDS},
            )
            response = error.response()
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            return response
        in_flight += 1
        try:
            return await handler(request)
        finally:
            in_flight -= 1
            if in_flight == 0 and refused:
                log.info("requests in flight back under the limit", extra={"refused": refused})
                refused = 0

    return middleware

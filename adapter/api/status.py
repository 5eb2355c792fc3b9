"""``metav1.Status`` errors and the JSON encoding the API answers with."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

log = logging.getLogger(__name__)

JSON_TYPE = "application/json"

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
}


def encode(document: Any) -> bytes:
    """Compact JSON as Go's encoding/json writes it, ``<``, ``>`` and ``&`` escaped the same way."""
    return go_escaped(compact_json(document))


def compact_json(document: Any) -> str:
    """JSON text without spaces and with non-ASCII characters as they are; not yet ``go_escaped``."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def go_escaped(json_text: str) -> bytes:
    """JSON text with ``<``, ``>`` and ``&`` escaped as Go's encoding/json does.

    Outside strings JSON has none of the three, so replacing them in the whole text escapes them in
    every string of it.
    """
    return json_text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def json_response(document: Any, status: int = 200) -> web.Response:
    """A JSON answer with the content type kube-apiserver uses."""
    return web.Response(body=encode(document), status=status, content_type=JSON_TYPE)


@dataclass
class StatusError(Exception):
    """An API error answered as a ``metav1.Status`` with ``code`` and a message for the user."""

    code: int
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def document(self) -> dict[str, Any]:
        """The Status object, keys in Go's field order."""
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": _REASONS.get(self.code, "InternalError"),
        }
        if self.details:
            status["details"] = self.details
        status["code"] = self.code
        return status

    def response(self) -> web.Response:
        return json_response(self.document(), status=self.code)


def not_found(message: str = "the server could not find the requested resource") -> StatusError:
    return StatusError(404, message)


def bad_request(message: str) -> StatusError:
    return StatusError(400, message)


def unavailable(message: str) -> StatusError:
    return StatusError(503, message)


@web.middleware
async def status_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure as a Status: ours, aiohttp's routing errors, and unexpected exceptions."""
    try:
        return await handler(request)
    except StatusError as exc:
        return exc.response()
    except web.HTTPMethodNotAllowed:
        return StatusError(405, f"{request.method} is not supported: this API only reads").response()
    except web.HTTPNotFound:
        return not_found().response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return StatusError(exc.status, exc.reason).response()
    except Exception:
        log.exception("request failed", extra={"path": request.path})
        return StatusError(500, "internal error; the adapter log has the details").response()

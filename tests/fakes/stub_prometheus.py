"""A stub of Prometheus' HTTP API on loopback that answers, sleeps, fails or talks nonsense on demand."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MODES = ("ok", "sleep", "error", "garbage", "reject", "matrix")


@dataclass
class StubPrometheus:
    """``mode`` decides every answer; ``requests`` records (endpoint, form, Authorization header)."""

    mode: str = "ok"
    sleep_seconds: float = 30.0
    result: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], str]] = field(default_factory=list)

    async def _answer(self, request: web.Request) -> web.Response:
        endpoint = request.match_info["endpoint"]
        form = dict(await request.post()) if request.method == "POST" else dict(request.query)
        self.requests.append(
            (endpoint, {k: str(v) for k, v in form.items()}, request.headers.get("Authorization", ""))
        )
        if self.mode == "sleep":
            await asyncio.sleep(self.sleep_seconds)
        if self.mode == "error":
            return web.json_response(
                {"status": "error", "errorType": "internal", "error": "boom"}, status=500
            )
        if self.mode == "garbage":
            return web.Response(text="<html>not prometheus</html>", content_type="text/html")
        if self.mode == "reject":
            body = {"status": "error", "errorType": "bad_data", "error": "1:5: parse error: unexpected '}'"}
            return web.json_response(body, status=400)
        if endpoint == "series":
            return web.json_response(
                {"status": "success", "data": [{"__name__": "x"}] if self.result else []}
            )
        result_type = "matrix" if self.mode == "matrix" else "vector"
        return web.json_response(
            {"status": "success", "data": {"resultType": result_type, "result": self.result}}
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/api/v1/{endpoint}", self._answer)
        return app

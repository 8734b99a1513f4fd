"""Structured access logs: one JSON line per request (time, method, path, status, duration in ms, the key id,
client address) on the ``twin.api.access`` logger.  Never the query's secrets, the Authorization header or the
key's secret: the path is logged without its query string."""

from __future__ import annotations

import json
import logging
import time

from .store import iso, utc_now

__all__ = ["AccessLogMiddleware", "access_logger"]

access_logger = logging.getLogger("twin.api.access")


class AccessLogMiddleware:
    """A pure ASGI middleware (no buffering of the body)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            if access_logger.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_logger.info(json.dumps({
                    "time": iso(utc_now()), "method": scope["method"], "path": scope["path"],
                    "status": status["code"], "ms": round((time.perf_counter() - t0) * 1000.0, 2),
                    "key_id": scope.get("state", {}).get("key_id"),
                    "client": client[0] if client else None}))

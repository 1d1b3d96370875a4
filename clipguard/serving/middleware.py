"""ASGI middleware of the RCI service: refuse oversized uploads before they are read.

BentoML parses a multipart body completely (into temporary files) before the API method
runs, so a size check in the method alone would still accept gigabytes. This middleware
answers 413 as soon as a request to a media route declares (``Content-Length``) or streams
more bytes than the route allows; the method then checks each file against
``serving.max_upload_bytes``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MULTIPART_OVERHEAD_BYTES = 64 * 1024
"""Allowance for multipart boundaries, part headers and form fields beside the files."""


def _too_large_body(limit: int) -> bytes:
    return json.dumps({"error": f"request body exceeds {limit} bytes"}).encode()


class UploadLimitMiddleware:
    """Answer 413 to a request whose body exceeds the limit of its route.

    Args:
        app: the wrapped ASGI app.
        limits: route path -> largest accepted body in bytes; other routes are not limited.
    """

    def __init__(self, app: ASGIApp, limits: Mapping[str, int]) -> None:
        self.app = app
        self.limits = dict(limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limits.get(scope.get("path", "")) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(send, limit)
            return

        received = 0
        rejected = False

        async def limited_receive() -> Message:
            nonlocal received, rejected
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit and not rejected:
                    rejected = True
                    await self._reject(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not rejected:  # the 413 is already out: drop what the app answers to the disconnect
                await send(message)

        await self.app(scope, limited_receive, guarded_send)

    @staticmethod
    async def _reject(send: Send, limit: int) -> None:
        body = _too_large_body(limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

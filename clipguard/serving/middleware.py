"""ASGI middleware of the RCI service: refuse oversized uploads before they are read, and
writes without the admin token.

:class:`WriteAuthMiddleware` guards the routes that change the service's state
(``/rci/reload``): a request needs ``Authorization: Bearer <token>`` with the token of the
``CLIPGUARD_ADMIN_TOKEN`` environment variable (secrets come only from the environment),
else 401; without the variable, writes are disabled (403). Read-only routes are open.

BentoML parses a multipart body completely (into temporary files) before the API method
runs, so a size check in the method alone would still accept gigabytes. This middleware
answers 413 as soon as a request to a media route declares (``Content-Length``) or streams
more bytes than the route allows; the method then checks each file against
``serving.max_upload_bytes``.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MULTIPART_OVERHEAD_BYTES = 64 * 1024
"""Allowance for multipart boundaries, part headers and form fields beside the files."""


ADMIN_TOKEN_ENV = "CLIPGUARD_ADMIN_TOKEN"


async def _send_json(send: Send, status: int, payload: Mapping[str, Any], headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


class WriteAuthMiddleware:
    """401 to a request to one of ``routes`` without the bearer token of ``$CLIPGUARD_ADMIN_TOKEN``
    (compared in constant time); 403 to all of them when the variable is unset or empty."""

    def __init__(self, app: ASGIApp, routes: frozenset[str] | set[str], token_env: str = ADMIN_TOKEN_ENV) -> None:
        self.app = app
        self.routes = frozenset(routes)
        self.token_env = token_env
        token = os.environ.get(token_env, "")
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "") not in self.routes:
            await self.app(scope, receive, send)
            return
        if self.expected is None:
            await _send_json(send, 403, {"error": f"writes are disabled: the service has no {self.token_env}"})
            return
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        if not hmac.compare_digest(given, self.expected):
            reason = "missing" if not given else "wrong"
            await _send_json(
                send,
                401,
                {"error": f"{reason} admin token: send Authorization: Bearer <{self.token_env}>"},
                ((b"www-authenticate", b'Bearer realm="clipguard"'),),
            )
            return
        await self.app(scope, receive, send)


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
        await _send_json(send, 413, {"error": f"request body exceeds {limit} bytes"})

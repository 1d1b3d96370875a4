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
``serving.max_upload_bytes``. It also feeds the body, as it streams, to python-multipart's
parser (the one Starlette parses forms with) and answers 400 naming the fault at the first
malformed byte: BentoML would turn Starlette's own 400 for such a body into a 500.
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

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
    """Answer 413 to a request whose body exceeds the limit of its route, and 400 to a multipart
    body that does not parse.

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
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_json(send, 413, {"error": f"request body exceeds {limit} bytes"})
            return
        content_type, params = parse_options_header(headers.get(b"content-type", b""))
        parser = None
        if content_type == b"multipart/form-data":
            if not params.get(b"boundary"):
                await _send_json(send, 400, {"error": "malformed multipart body: no boundary in Content-Type"})
                return
            parser = MultipartParser(params[b"boundary"])

        received = 0
        rejected = False

        async def checked_receive() -> Message:
            nonlocal received, rejected
            message = await receive()
            if message["type"] != "http.request" or rejected:
                return message
            chunk = message.get("body", b"")
            received += len(chunk)
            error: tuple[int, str] | None = None
            if received > limit:
                error = (413, f"request body exceeds {limit} bytes")
            elif parser is not None:
                try:
                    parser.write(chunk)
                    if not message.get("more_body", False):
                        parser.finalize()
                except MultipartParseError as e:
                    error = (400, f"malformed multipart body: {e}")
            if error is not None:
                rejected = True
                await _send_json(send, error[0], {"error": error[1]})
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not rejected:  # the 4xx is already out: drop what the app answers to the disconnect
                await send(message)

        await self.app(scope, checked_receive, guarded_send)

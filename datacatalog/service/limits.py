"""Request body limits, enforced before anything parses the body.

:class:`BodySizeLimit` is a plain ASGI middleware. A request whose
``Content-Length`` is over the limit is refused at once; any other body
(chunked ones included) is read and counted as it arrives, and refused the
moment it passes the limit. Only a body within the limit reaches the
application, which therefore never parses, validates or writes anything for
an oversized request.

The whole body is held in memory until it is handed on; that is at most
``max_bytes`` (``DATACATALOG_MAX_BODY_BYTES``, 1 MiB by default) per request.

Nesting is limited here too: JSON parsers recurse once per level, so a body of
a few thousand ``[`` would make the parser give up with a ``RecursionError``.
A body whose brackets nest deeper than :data:`MAX_BODY_DEPTH` is refused with
``400`` and the "nested deeper than" error before it is parsed. The limit is
the free-form limit (:data:`datacatalog.freeform.MAX_DEPTH`) plus the levels of
the request's own shape, so no body refused here would have been accepted.
"""

from __future__ import annotations

import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from datacatalog.errors import (
    DataCatalogError,
    InvalidRequestError,
    PayloadTooLargeError,
    mapping_for,
)
from datacatalog.freeform import MAX_DEPTH
from datacatalog.service.responses import error_body

MAX_BODY_DEPTH = MAX_DEPTH + 2
"""Deepest bracket nesting of a request body: free-form data sits two levels down."""

_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class BodySizeLimit:
    """Refuse HTTP request bodies larger than ``max_bytes`` with ``413``.

    Args:
        app: The ASGI application to protect.
        max_bytes: The largest body accepted, in bytes.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the declared length, buffer and count the body, then call the app."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if isinstance(declared, DataCatalogError):
            await _refuse(send, declared)
            return
        if declared is not None and declared > self.max_bytes:
            await _refuse(send, self._too_large(f"{declared} bytes declared"))
            return

        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away; there is nobody to answer
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.max_bytes:
                await _refuse(send, self._too_large(f"more than {self.max_bytes} bytes sent"))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break

        body = b"".join(chunks)
        too_deep = nesting_error(body)
        if too_deep is not None:
            await _refuse(send, too_deep)
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect, as usual

        await self.app(scope, replay, send)

    def _too_large(self, what: str) -> PayloadTooLargeError:
        return PayloadTooLargeError(
            f"request body too large ({what}); the limit is {self.max_bytes} bytes",
            limit=self.max_bytes,
        )


def nesting_error(body: bytes, *, limit: int = MAX_BODY_DEPTH) -> InvalidRequestError | None:
    """The error for a body whose JSON brackets nest deeper than ``limit``, else None.

    Brackets inside JSON strings do not count. Text that is not JSON is left to
    the parser, which reports it as such.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return None  # the common case: too few brackets to nest that deep
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    depth = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        if depth > limit:
            return InvalidRequestError(
                f"request body is nested deeper than {limit} levels", limit=limit
            )
    return None


def _content_length(scope: Scope) -> int | DataCatalogError | None:
    values = [v for k, v in scope.get("headers", ()) if k.lower() == b"content-length"]
    if not values:
        return None
    if len(set(values)) > 1:
        return InvalidRequestError("conflicting Content-Length headers")
    raw = values[0].strip()
    if not raw.isdigit():
        return InvalidRequestError(f"invalid Content-Length header {raw.decode('latin-1')!r}")
    return int(raw)


async def _refuse(send: Send, error: DataCatalogError) -> None:
    payload = json.dumps(error_body(error)).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": mapping_for(error).http_status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode("ascii")),
                # The rest of an oversized body is never read; do not reuse the connection.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload, "more_body": False})

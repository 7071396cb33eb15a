"""Request body limits, enforced before anything parses the body.

:class:`BodySizeLimit` is a plain ASGI middleware. A request whose
``Content-Length`` is over the limit is refused at once; any other body
(chunked ones included) is read and counted as it arrives, and refused the
moment it passes the limit. Only a body within the limit reaches the
application, which therefore never parses, validates or writes anything for
an oversized request.

The whole body is held in memory until it is handed on; that is at most
``max_bytes`` (``DATACATALOG_MAX_BODY_BYTES``, 1 MiB by default) per request.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from datacatalog.errors import (
    DataCatalogError,
    InvalidRequestError,
    PayloadTooLargeError,
    mapping_for,
)
from datacatalog.service.responses import error_body


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

"""The exception handlers: every failure answered with the one error body.

* A :class:`~datacatalog.errors.DataCatalogError` gets the status of its code
  (:func:`datacatalog.errors.mapping_for`).
* A request FastAPI could not validate (malformed JSON, a body of the wrong shape, a
  parameter out of range) is ``400 invalid_request``, listing each problem without
  echoing the input back.
* Starlette's own HTTP errors (an unknown route, a wrong method) keep their status,
  with the matching code.
* Anything else is ``500`` with code ``error``; its text stays in the server log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from datacatalog.errors import DataCatalogError, InvalidRequestError, NotFoundError, mapping_for
from datacatalog.service.responses import error_body

_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    405: "method_not_allowed",
    413: "payload_too_large",
}
"""The error code of a Starlette HTTP error, by status."""


def install_error_handlers(app: FastAPI) -> None:
    """Answer every exception ``app`` meets with the one error body."""
    app.add_exception_handler(DataCatalogError, _catalog_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


async def _catalog_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DataCatalogError)
    return error_response(exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [_problem(e) for e in exc.errors()]
    summary = "; ".join(f"{p['where']}: {p['message']}" for p in problems[:5])
    content_type = request.headers.get("content-type", "")
    if content_type and "json" not in content_type.lower():
        # The usual cause: `curl -d` without a header sends a form content type.
        summary += (
            f" (the body was sent as {content_type!r}; send JSON with "
            "'Content-Type: application/json')"
        )
    return error_response(InvalidRequestError(f"invalid request: {summary}", problems=problems))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    error: DataCatalogError
    if exc.status_code == 404:
        error = NotFoundError(f"no route {request.method} {request.url.path}")
    else:
        error = DataCatalogError(str(exc.detail))
        error.code = _HTTP_CODES.get(exc.status_code, "error")
    return error_response(error, status=exc.status_code, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # The exception's text may name internals; the server log keeps it (the
    # exception is raised on after this answer), the caller gets the one body.
    return error_response(
        DataCatalogError(
            f"internal error while handling {request.method} {request.url.path}; "
            "the service log has the details"
        )
    )


def error_response(
    error: DataCatalogError,
    *,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """``error`` as a response: its mapped status (or ``status``) and the one body.

    A ``401`` carries ``WWW-Authenticate: Bearer`` unless ``headers`` set it.
    """
    code = mapping_for(error).http_status if status is None else status
    extra = dict(headers or {})
    if code == 401:
        extra.setdefault("WWW-Authenticate", "Bearer")
    return JSONResponse(error_body(error), status_code=code, headers=extra or None)


def _problem(error: Mapping[str, Any]) -> dict[str, Any]:
    """One validation problem, without echoing the (possibly large) input back."""
    location = [str(part) for part in error.get("loc", ())]
    kind = str(error.get("type", "invalid"))
    message = str(error.get("msg", "invalid"))
    if kind == "json_invalid" and location[:1] == ["body"]:
        # FastAPI puts the character position where a field name would be ("body.1").
        reason = (error.get("ctx") or {}).get("error") or message
        at = f" (at character {location[1]})" if len(location) > 1 else ""
        return {"where": "body", "message": f"not valid JSON: {reason}{at}", "type": kind}
    return {"where": ".".join(location) or "request", "message": message, "type": kind}

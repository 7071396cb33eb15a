"""What a route may ask FastAPI for: the catalog, the caller's token, who the caller is.

The catalog is the one :func:`~datacatalog.service.app.create_app` was given; it is kept
in ``app.state.catalog`` and handed to each route by :func:`catalog_of`, so the routers
(:mod:`datacatalog.service.routes`) are plain module-level objects.

A token may come as ``Authorization: Bearer <token>`` or as ``?token=`` (the form of a
job's webhook URL); both are declared as security schemes, so the OpenAPI document
names them on every route that takes a token.
"""

from __future__ import annotations

import types
import typing
from typing import Annotated

from fastapi import Depends, Path, Request, Security
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from datacatalog.catalog import Catalog
from datacatalog.errors import ForbiddenError, InvalidRequestError, UnauthorizedError
from datacatalog.jobs import Actor
from datacatalog.service import constraints

JobUUID = Annotated[
    str,
    Path(
        description="The job's UUID (a typed UUID starting with `107`).",
        examples=["107a90b7-f083-5167-a63d-41a3bf278bf8"],
        pattern=constraints.JOB_UUID,
    ),
]
"""The ``{job_uuid}`` path parameter."""

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearerToken",
    description="A job token (job writes) or an admin token (`/admin/...`).",
)
_query_token = APIKeyQuery(
    name="token",
    auto_error=False,
    scheme_name="queryToken",
    description="The same token as a query parameter, as in the job's webhook URL.",
)


def one_value_per_query_parameter(request: Request) -> None:
    """Refuse a single-valued query parameter given more than once (``?event_id=a&event_id=b``).

    Reading one of several values (FastAPI keeps the last) would act on a value the caller
    may not have meant, so the request is refused, naming each repeated parameter, before
    anything is read or written. A parameter declared as a list (``relation`` of the
    lineage routes) is meant to be repeated.

    Raises:
        InvalidRequestError: A single-valued query parameter is repeated.
    """
    query = request.query_params
    repeated = [name for name in sorted(query.keys()) if len(query.getlist(name)) > 1]
    if not repeated:
        return
    several = _list_parameters(request.scope.get("route"))  # only looked up when needed
    problems = [
        {
            "where": f"query.{name}",
            "message": f"given {len(query.getlist(name))} times; it takes one value",
            "type": "repeated",
        }
        for name in repeated
        if name not in several
    ]
    if problems:
        summary = "; ".join(f"{p['where']}: {p['message']}" for p in problems)
        raise InvalidRequestError(f"invalid request: {summary}", problems=problems)


def _list_parameters(route: object) -> frozenset[str]:
    """The query parameters of ``route`` (its dependencies' included) that take a list."""
    names: set[str] = set()
    pending = [getattr(route, "dependant", None)]
    while pending:
        dependant = pending.pop()
        if dependant is None:
            continue
        names.update(
            field.alias
            for field in dependant.query_params
            if _takes_several(field.field_info.annotation)
        )
        pending.extend(dependant.dependencies)
    return frozenset(names)


def _takes_several(annotation: object) -> bool:
    """Whether a parameter of type ``annotation`` is a list (``list[str] | None`` is)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_takes_several(arg) for arg in typing.get_args(annotation))
    return (origin or annotation) in (list, tuple, set, frozenset)


async def catalog_of(request: Request) -> Catalog:
    """The catalog the application serves (``async``: no worker thread for a lookup)."""
    catalog: Catalog = request.app.state.catalog
    return catalog


CatalogDep = Annotated[Catalog, Depends(catalog_of)]
"""A route parameter that receives the served catalog."""


def presented_token(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    query: Annotated[str | None, Security(_query_token)],
) -> str | None:
    """The token the caller presented, from the ``Authorization`` header or ``?token=``.

    Raises:
        UnauthorizedError: The ``Authorization`` header uses a scheme other than Bearer.
        ForbiddenError: The header and the query parameter give different tokens (at
            most one of them can be right, so the caller is refused as with a wrong one).
    """
    header = request.headers.get("authorization")
    if header and bearer is None:
        raise UnauthorizedError("the Authorization header must be 'Bearer <token>'")
    from_header = bearer.credentials if bearer is not None else None
    if from_header and query and from_header != query:
        raise ForbiddenError("two different tokens given (Authorization header and ?token=)")
    return from_header or query or None


Token = Annotated[str | None, Depends(presented_token)]
"""A route parameter that receives the presented token (``None`` when there is none)."""


def caller(request: Request) -> Actor:
    """Who a request comes from, as recorded in history entries and the audit log."""
    return Actor(host=request.client.host if request.client else None)

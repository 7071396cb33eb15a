"""Where the schemas come from: the bundled files, the ``$ref`` registry, field lookup.

Every kind of document the store writes has a JSON Schema (draft 2020-12) in the
top-level ``schemas/`` folder, one file per kind, plus ``definitions.json`` for what
they share. The folder ships inside the wheel as the package data
``datacatalog/_schemas``; from a checkout it is read from ``<repo>/schemas``.

Validators (compiled or not) run on :func:`inlined` copies, where every ``$ref`` is
replaced by its target: resolving references on each write was most of its cost.
:func:`locate` finds the sub-schema of a dotted field, as written by a MongoDB update.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urldefrag, urljoin

from datacatalog.errors import InvalidRequestError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

    from referencing import Registry

KINDS: tuple[str, ...] = (
    "pipeline",
    "job",
    "job_history_entry",
    "file",
    "reference",
    "experiment_design",
    "experiment",
    "sample",
    "measurement",
    "archive_index_request",
    "product_index_request",
    "audit",
    "workflow_execution",
    "workflow_task",
    "workflow_log",
    "plugin",
)
"""Every document kind that has a schema, i.e. ``schemas/<kind>.json``."""

EMBEDDED_KINDS: tuple[str, ...] = (
    "job_history_entry",
    "archive_index_request",
    "product_index_request",
)
"""Kinds that only live inside another document (a job); the rest have a collection."""

STORED_KINDS: tuple[str, ...] = tuple(kind for kind in KINDS if kind not in EMBEDDED_KINDS)
"""Kinds stored as documents of their own, each in its own collection."""

SCHEMA_BASE_URI = "https://datacatalog.local/schemas/"
"""Base of every schema's ``$id``: ``<SCHEMA_BASE_URI><kind>.json``."""

DEFINITIONS = "definitions"

_PACKAGE_DATA = "_schemas"
_CHECKOUT_DIR = Path(__file__).resolve().parents[2] / "schemas"
ANY_VALUE = (f"{SCHEMA_BASE_URI}{DEFINITIONS}.json", "/$defs/any_value")


def schema_uri(kind: str) -> str:
    """The ``$id`` of the schema of ``kind``."""
    return f"{SCHEMA_BASE_URI}{kind}.json"


def schema_directory() -> Traversable:
    """Where the schemas are read from: the installed package data, else the checkout."""
    bundled = resources.files("datacatalog") / _PACKAGE_DATA
    if (bundled / f"{DEFINITIONS}.json").is_file():
        return bundled
    return _CHECKOUT_DIR


@cache
def _load(name: str) -> dict[str, Any]:
    source = schema_directory() / f"{name}.json"
    try:
        loaded: dict[str, Any] = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"schema file {name}.json is missing from {source}") from None
    return loaded


def schema_for(kind: str) -> dict[str, Any]:
    """Return (a copy of) the JSON Schema of ``kind``.

    Raises:
        InvalidRequestError: ``kind`` is not one of :data:`KINDS`.
    """
    check_kind(kind)
    return copy.deepcopy(_load(kind))


@lru_cache(maxsize=1)
def registry() -> Registry[Any]:
    """A registry holding every schema by ``$id``, so ``$ref`` works across files."""
    # Imported here: only compiling a validator needs it, and reads never do.
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    resources_by_uri: list[tuple[str, Resource[Any]]] = [
        (schema_uri(name), DRAFT202012.create_resource(_load(name)))
        for name in (DEFINITIONS, *KINDS)
    ]
    return Registry().with_resources(resources_by_uri).crawl()


@cache
def document_schema(kind: str) -> dict[str, Any]:
    """The inlined schema of a whole ``kind`` document (shared: do not change it)."""
    check_kind(kind)
    return inlined(schema_uri(kind), "")


@lru_cache(maxsize=1024)
def fragment_schema(kind: str, field_path: str, item: bool) -> dict[str, Any]:
    """The inlined schema of the dotted field ``field_path`` (of one of its items, with
    ``item``); shared: do not change it.

    Raises:
        InvalidRequestError: The field does not exist in a closed schema.
    """
    uri, pointer = locate(kind, field_path, item=item)
    return inlined(uri, pointer)


def inlined(uri: str, pointer: str) -> dict[str, Any]:
    """The sub-schema at ``uri#pointer`` with every ``$ref`` replaced by its target.

    The schemas hold no recursive references, so the result is finite. A ``$ref``
    with sibling keywords (``{"$ref": ..., "pattern": "^107"}``) becomes an ``allOf``
    of the target and the siblings, which means the same in draft 2020-12.
    """
    resolved = registry().resolver().lookup(f"{uri}#{pointer}")
    result = _inline(resolved.contents, resolved.resolver)
    return result if isinstance(result, dict) else {"allOf": [result]}


def _inline(node: Any, resolver: Any) -> Any:
    if isinstance(node, list):
        return [_inline(item, resolver) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$ref", "$id", "$schema", "$defs"):
            continue
        # Property names are data, not keywords: only their schemas are inlined.
        if key in ("properties", "patternProperties"):
            out[key] = {name: _inline(sub, resolver) for name, sub in value.items()}
        else:
            out[key] = _inline(value, resolver)
    if "$ref" not in node:
        return out
    target = resolver.lookup(node["$ref"])
    referenced = _inline(target.contents, target.resolver)
    return {"allOf": [referenced, out]} if out else referenced


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InvalidRequestError(
            f"unknown document kind {kind!r}; known kinds: {', '.join(KINDS)}", kind=kind
        )


def locate(kind: str, field_path: str, *, item: bool) -> tuple[str, str]:
    """Find the sub-schema of a dotted field: its resource URI and JSON pointer."""
    check_kind(kind)
    segments = field_path.split(".")
    if any(not segment for segment in segments):
        raise InvalidRequestError(
            f"{kind} document: invalid field path {field_path!r}",
            kind=kind,
            path=field_path,
            reason="invalid field path",
        )
    uri, pointer = schema_uri(kind), ""
    for depth, segment in enumerate(segments):
        uri, pointer, schema = _dereference(uri, pointer)
        step = _step(kind, schema, segment, segments[: depth + 1])
        if step is None:
            return ANY_VALUE
        pointer += step
    if item:
        uri, pointer, schema = _dereference(uri, pointer)
        if "array" not in schema_types(schema):
            raise _bad_field(kind, segments, f"field {field_path!r} is not an array")
        if "items" not in schema:
            return ANY_VALUE
        pointer = f"{pointer}/items"
    return uri, pointer


def _step(kind: str, schema: Mapping[str, Any], segment: str, walked: list[str]) -> str | None:
    """The JSON pointer step from ``schema`` to its field ``segment``; None where any value
    may go (an open object, an array without ``items``, an unconstrained schema)."""
    if segment in schema.get("properties", {}):
        return f"/properties/{_escape(segment)}"
    types = schema_types(schema)
    if "array" in types and (segment.isdigit() or segment == "$"):
        return "/items" if "items" in schema else None
    if "object" in types:
        extra = schema.get("additionalProperties", True)
        if extra is False:
            raise _bad_field(kind, walked, f"unknown field {segment!r}")
        # An open object (free-form data, metadata extras): anything may go here.
        return "/additionalProperties" if isinstance(extra, dict) else None
    if _unconstrained(schema):
        return None
    parent = ".".join(walked[:-1])
    raise _bad_field(kind, walked, f"{parent!r} has no field {segment!r}")


def schema_types(schema: Mapping[str, Any]) -> set[str]:
    """The JSON types a schema declares (an object if it lists properties)."""
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return set(declared)
    return {"object"} if "properties" in schema else set()


def _unconstrained(schema: Mapping[str, Any]) -> bool:
    """True if the schema admits any value (it only annotates)."""
    return not (schema.keys() - {"title", "description", "$comment"})


def _bad_field(kind: str, walked: list[str], reason: str) -> InvalidRequestError:
    path = "/".join(walked)
    return InvalidRequestError(
        f"{kind} document is invalid at {path}: {reason}", kind=kind, path=path, reason=reason
    )


def _dereference(uri: str, pointer: str) -> tuple[str, str, dict[str, Any]]:
    """Follow ``$ref`` from the schema at ``uri#pointer`` while it has nothing to walk."""
    schema = _resolve_pointer(uri, pointer)
    while "$ref" in schema and not ({"properties", "items"} & schema.keys()):
        target = urljoin(uri, schema["$ref"])
        uri, fragment = urldefrag(target)
        pointer = fragment
        schema = _resolve_pointer(uri, pointer)
    return uri, pointer, schema


def _resolve_pointer(uri: str, pointer: str) -> dict[str, Any]:
    node = registry().resolver().lookup(f"{uri}#{pointer}").contents
    return node if isinstance(node, dict) else {}


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")

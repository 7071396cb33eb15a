"""Value classes read from stored documents and written back, field by field.

Most of the catalog's value classes (a history entry, a workflow execution and its
tasks, a pipeline, an audit record ...) are dataclasses whose fields are stored under
their own names. :func:`from_stored` reads such a record: each field from the document's
key of the same name, and the class names only the fields stored otherwise (an ``id``
stored as ``uuid``, a date under ``_properties``, a number that must be a float).
:func:`to_stored` is the way back. Lists and dicts are copied both ways, so a record
never shares them with the document it was read from or written to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, Field, fields
from typing import Any, ClassVar, Protocol, TypeVar


class DataclassInstance(Protocol):
    """Any dataclass instance (what :func:`dataclasses.fields` takes)."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]


Record = TypeVar("Record", bound=DataclassInstance)


def from_stored(cls: type[Record], doc: Mapping[str, Any], /, **given: Any) -> Record:
    """A ``cls`` from a stored document: the ``given`` values, every other field's from
    the document's key of its name (a field with a default may be absent from it).

    Raises:
        KeyError: The document lacks a field that has no default.
    """
    values = {
        f.name: _copied(doc[f.name])
        for f in fields(cls)
        if f.name not in given and (f.name in doc or _required(f))
    }
    return cls(**values, **given)


def to_stored(record: DataclassInstance, /, *, without: tuple[str, ...] = ()) -> dict[str, Any]:
    """The record's fields by name, as stored, but those named in ``without``."""
    return {
        f.name: _copied(getattr(record, f.name)) for f in fields(record) if f.name not in without
    }


def _required(f: Field[Any]) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


def _copied(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value

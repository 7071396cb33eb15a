"""Index requests: which files of a job's archive path to index, and how.

After a job has run, its outputs sit under its archive path. An *index request* says
which of those files become file records in the catalog and what the records say:

- :class:`ArchiveIndexRequest` — the job's own outputs, at a processing ``level``
  (``"0"`` to ``"3"``, ``"Reference"``, ``"User"``), checksummed by default (``fixity``);
- :class:`ProductIndexRequest` — derived products, linked ``derived_from`` the inputs
  they were computed from (and ``derived_using`` references such as a model or a
  genome), not checksummed by default.

Both select files with ``patterns``: Python regular expressions, OR-ed together, matched
with :func:`re.search` against the path *relative to the archive path*, so ``\\.png$``
selects ``out/a.png``. An empty list selects every file. Patterns are compiled once,
when the request is made, and a bad one is refused there, naming it.

Requests are pure values (no I/O). A job stores them as plain dicts in its
``archive_patterns`` / ``product_patterns`` fields, in exactly this shape::

    {"kind": "archive", "patterns": [...], "level": "1", "note": None,
     "fixity": True, "generated_by": [...]}
    {"kind": "product", "patterns": [...], "derived_from": [...], "derived_using": [...],
     "note": None, "fixity": False, "generated_by": [...]}

:meth:`IndexRequest.to_dict` / :meth:`IndexRequest.from_dict` (and the ``_json``
pair, canonical JSON) convert both ways and round-trip exactly; :func:`index_request_from`
turns whatever a caller passed (a request, a dict, a JSON string) into the right class.
Field names of the system this one replaces are accepted as aliases: ``filters`` for
``patterns`` and ``processing_level`` for ``level``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from datacatalog.errors import DataCatalogError, InvalidRequestError
from datacatalog.freeform import MAX_DEPTH

LEVELS: tuple[str, ...] = ("0", "1", "2", "3", "Reference", "User")
"""Processing levels a file can be indexed at."""

DEFAULT_LEVEL = "1"
"""Level of an :class:`ArchiveIndexRequest` that does not name one."""

MAX_PATTERNS = 512
"""Most patterns one request may carry."""


class IndexingError(DataCatalogError):
    """Indexing a job's outputs failed."""


class InvalidIndexingRequest(InvalidRequestError, ValueError):
    """An index request is malformed: a bad pattern, a missing field, a wrong type."""


class IndexType(str):
    """The kind of an index request: ``"archive"`` or ``"product"``.

    Raises:
        InvalidIndexingRequest: The value is not one of :attr:`MEMBERS`.
    """

    __slots__ = ()

    MEMBERS: ClassVar[list[str]] = ["archive", "product"]
    kind: ClassVar[str | None] = None

    def __new__(cls, value: object) -> IndexType:
        if not isinstance(value, str) or value.lower() not in cls.MEMBERS:
            raise InvalidIndexingRequest(
                f"unknown index request kind {value!r}; expected one of "
                f"{', '.join(repr(m) for m in cls.MEMBERS)}",
                kind=repr(value),
            )
        return super().__new__(cls, value.lower())

    @property
    def patterns_field(self) -> str:
        """The job field holding requests of this kind (``"archive_patterns"``, ...)."""
        return f"{self}_patterns"

    @property
    def request_class(self) -> type[IndexRequest]:
        """The request class for this kind."""
        return ArchiveIndexRequest if self == "archive" else ProductIndexRequest


def _type_name(value: object) -> str:
    return "None" if value is None else type(value).__name__


class IndexRequest:
    """Base of :class:`ArchiveIndexRequest` and :class:`ProductIndexRequest`.

    Requests are immutable; two requests are equal when their :meth:`to_dict` are.
    """

    __slots__ = ("_compiled", "_fixity", "_generated_by", "_note", "_patterns")

    kind: ClassVar[str] = ""
    _FIELDS: ClassVar[tuple[str, ...]] = ()

    _patterns: tuple[str, ...]
    _compiled: tuple[re.Pattern[str], ...]
    _note: str | None
    _fixity: bool
    _generated_by: tuple[str, ...]

    def __init__(self, **kwargs: Any) -> None:
        raise TypeError(
            "IndexRequest is abstract: use ArchiveIndexRequest or ProductIndexRequest "
            "(or index_request_from)"
        )

    # -- validation helpers ------------------------------------------------------------

    @classmethod
    def _error(cls, message: str, **details: Any) -> InvalidIndexingRequest:
        return InvalidIndexingRequest(f"{cls.__name__}: {message}", **details)

    @classmethod
    def _alias(cls, name: str, value: Any, alias: str, alias_value: Any) -> Any:
        """Merge a field with its legacy alias; giving both with different values is wrong."""
        if value is None:
            return alias_value
        if alias_value is not None and alias_value != value:
            raise cls._error(
                f"{name!r} and its alias {alias!r} were both given, with different values "
                f"({value!r} and {alias_value!r}); give only one",
                field=name,
            )
        return value

    @classmethod
    def _check_unknown(cls, unknown: Mapping[str, Any]) -> None:
        extra = dict(unknown)
        kind = extra.pop("kind", cls.kind)
        if kind != cls.kind:
            raise cls._error(f"kind is {cls.kind!r}, not {kind!r}", kind=repr(kind))
        if extra:
            names = ", ".join(repr(k) for k in sorted(extra))
            raise cls._error(
                f"unknown field(s) {names}; accepted fields: "
                f"{', '.join(repr(f) for f in cls._FIELDS)}",
                fields=sorted(extra),
            )

    @classmethod
    def _string_list(cls, name: str, value: Any, *, allow_empty_strings: bool) -> tuple[str, ...]:
        if not isinstance(value, (list, tuple)):
            raise cls._error(
                f"{name!r} must be a list of strings, not {_type_name(value)}", field=name
            )
        for position, item in enumerate(value):
            if not isinstance(item, str):
                raise cls._error(
                    f"{name!r} item #{position} must be a string, not "
                    f"{_type_name(item)} ({item!r})",
                    field=name,
                )
            if not item and not allow_empty_strings:
                raise cls._error(f"{name!r} item #{position} is an empty string", field=name)
        return tuple(value)

    @classmethod
    def _optional_list(cls, name: str, value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        return cls._string_list(name, value, allow_empty_strings=False)

    def _init_common(
        self,
        *,
        patterns: Any,
        filters: Any,
        note: Any,
        fixity: Any,
        generated_by: Any,
    ) -> None:
        merged = self._alias("patterns", patterns, "filters", filters)
        if merged is None:
            raise self._error(
                "missing mandatory field 'patterns' (alias 'filters'); give [] to index every file",
                field="patterns",
            )
        if isinstance(merged, (list, tuple)) and len(merged) > MAX_PATTERNS:
            raise self._error(
                f"{len(merged)} patterns given; at most {MAX_PATTERNS} are allowed",
                field="patterns",
            )
        self._patterns = self._string_list("patterns", merged, allow_empty_strings=True)
        compiled = []
        for pattern in self._patterns:
            try:
                compiled.append(re.compile(pattern))
            except (re.error, OverflowError, RecursionError) as exc:
                raise self._error(
                    f"invalid regular expression {pattern!r} in 'patterns': {exc}",
                    field="patterns",
                    pattern=pattern,
                ) from exc
        self._compiled = tuple(compiled)
        if note is not None and not isinstance(note, str):
            raise self._error(
                f"'note' must be a string or None, not {_type_name(note)}", field="note"
            )
        self._note = note
        if not isinstance(fixity, bool):
            raise self._error(
                f"'fixity' must be true or false, not {_type_name(fixity)} ({fixity!r})",
                field="fixity",
            )
        self._fixity = fixity
        self._generated_by = self._optional_list("generated_by", generated_by)

    # -- the request -------------------------------------------------------------------

    @property
    def patterns(self) -> tuple[str, ...]:
        """The regular expressions, as given."""
        return self._patterns

    @property
    def filters(self) -> tuple[str, ...]:
        """Legacy name of :attr:`patterns`."""
        return self._patterns

    @property
    def note(self) -> str | None:
        """Free-text note recorded with the indexed files."""
        return self._note

    @property
    def fixity(self) -> bool:
        """Whether indexed files get a SHA-256 checksum."""
        return self._fixity

    @property
    def generated_by(self) -> tuple[str, ...]:
        """Extra ``generated_by`` links (process UUIDs) for the indexed files."""
        return self._generated_by

    @property
    def index_type(self) -> IndexType:
        """The request's kind as an :class:`IndexType`."""
        return IndexType(self.kind)

    def matches(self, relative_path: str) -> bool:
        """Return True if the file at ``relative_path`` (relative to the archive path) is selected.

        Patterns are OR-ed and applied with :func:`re.search`; no patterns select everything.
        """
        if not self._compiled:
            return True
        return any(pattern.search(relative_path) for pattern in self._compiled)

    # -- conversion --------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return the plain, JSON-ready form stored in job documents."""
        raise NotImplementedError

    def to_json(self) -> str:
        """Return :meth:`to_dict` as canonical JSON (sorted keys, no spaces)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> IndexRequest:
        """Build a request from its dict form.

        Called on :class:`IndexRequest` itself, the class is chosen from ``kind`` (see
        :func:`index_request_from`); on a subclass, the dict must be of that kind.

        Raises:
            InvalidIndexingRequest: The dict is not a valid request.
        """
        if cls is IndexRequest:
            return index_request_from(value)
        if not isinstance(value, Mapping):
            raise cls._error(f"expected a dict, not {_type_name(value)}")
        if not all(isinstance(key, str) for key in value):
            raise cls._error("all field names must be strings")
        return cls(**dict(value))

    @classmethod
    def from_json(cls, text: str | bytes) -> IndexRequest:
        """Build a request from its JSON form (see :meth:`from_dict`).

        Raises:
            InvalidIndexingRequest: The text is not JSON or not a valid request.
        """
        return cls.from_dict(_parse_json(text))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IndexRequest):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "kind")
        return f"{type(self).__name__}({fields})"


class ArchiveIndexRequest(IndexRequest):
    """Index a job's own outputs at a processing level.

    Args:
        patterns: Regular expressions selecting files (alias ``filters``); ``[]`` for all.
        level: Processing level (alias ``processing_level``): ``"0"`` to ``"3"`` (or the
            integers 0 to 3), ``"Reference"`` or ``"User"``; default ``"1"``.
        note: Free-text note.
        fixity: Compute SHA-256 checksums (default True).
        generated_by: Extra ``generated_by`` links for the files.

    Raises:
        InvalidIndexingRequest: A field is missing, unknown, of the wrong type or invalid.
    """

    __slots__ = ("_level",)

    kind: ClassVar[str] = "archive"
    # (name, mandatory, stored field, default), as the replaced API declared them.
    PARAMS: ClassVar[tuple[tuple[str, bool, str, Any], ...]] = (
        ("patterns", True, "filters", ()),
        ("note", False, "note", None),
        ("fixity", False, "fixity", True),
        ("generated_by", False, "generated_by", ()),
        ("level", True, "level", DEFAULT_LEVEL),
    )
    _FIELDS: ClassVar[tuple[str, ...]] = (
        "patterns",
        "filters",
        "level",
        "processing_level",
        "note",
        "fixity",
        "generated_by",
    )

    def __init__(
        self,
        patterns: Sequence[str] | None = None,
        level: str | int | None = None,
        *,
        filters: Sequence[str] | None = None,
        processing_level: str | int | None = None,
        note: str | None = None,
        fixity: bool = True,
        generated_by: Sequence[str] | None = None,
        **unknown: Any,
    ) -> None:
        self._check_unknown(unknown)
        self._init_common(
            patterns=patterns,
            filters=filters,
            note=note,
            fixity=fixity,
            generated_by=generated_by,
        )
        merged = self._alias("level", level, "processing_level", processing_level)
        self._level = self._check_level(DEFAULT_LEVEL if merged is None else merged)

    @classmethod
    def _check_level(cls, value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3:
            return str(value)
        if isinstance(value, str):
            for level in LEVELS:
                if value.lower() == level.lower():
                    return level
        allowed = ", ".join(repr(level) for level in LEVELS)
        raise cls._error(
            f"invalid processing level {value!r}; allowed: {allowed} (or the integers 0-3)",
            field="level",
        )

    @property
    def level(self) -> str:
        """The processing level of the indexed files."""
        return self._level

    def to_dict(self) -> dict[str, Any]:
        """Return the plain, JSON-ready form stored in job documents."""
        return {
            "kind": self.kind,
            "patterns": list(self._patterns),
            "level": self._level,
            "note": self._note,
            "fixity": self._fixity,
            "generated_by": list(self._generated_by),
        }


class ProductIndexRequest(IndexRequest):
    """Index derived products, linked to the inputs they were computed from.

    Args:
        patterns: Regular expressions selecting files (alias ``filters``); ``[]`` for all.
        derived_from: References (file or reference UUIDs, paths or URIs) the products
            were derived from. Mandatory (it may be an empty list).
        derived_using: References used to derive them (models, genomes, ...).
        note: Free-text note.
        fixity: Compute SHA-256 checksums (default False).
        generated_by: Extra ``generated_by`` links for the files.

    Raises:
        InvalidIndexingRequest: A field is missing, unknown, of the wrong type or invalid.
    """

    __slots__ = ("_derived_from", "_derived_using")

    kind: ClassVar[str] = "product"
    # (name, mandatory, stored field, default), as the replaced API declared them.
    PARAMS: ClassVar[tuple[tuple[str, bool, str, Any], ...]] = (
        ("patterns", True, "filters", ()),
        ("note", False, "note", None),
        ("fixity", False, "fixity", False),
        ("generated_by", False, "generated_by", ()),
        ("derived_from", True, "derived_from", ()),
        ("derived_using", False, "derived_using", ()),
    )
    _FIELDS: ClassVar[tuple[str, ...]] = (
        "patterns",
        "filters",
        "derived_from",
        "derived_using",
        "note",
        "fixity",
        "generated_by",
    )

    def __init__(
        self,
        patterns: Sequence[str] | None = None,
        derived_from: Sequence[str] | None = None,
        *,
        filters: Sequence[str] | None = None,
        derived_using: Sequence[str] | None = None,
        note: str | None = None,
        fixity: bool = False,
        generated_by: Sequence[str] | None = None,
        **unknown: Any,
    ) -> None:
        self._check_unknown(unknown)
        self._init_common(
            patterns=patterns,
            filters=filters,
            note=note,
            fixity=fixity,
            generated_by=generated_by,
        )
        if derived_from is None:
            raise self._error("missing mandatory field 'derived_from'", field="derived_from")
        self._derived_from = self._string_list(
            "derived_from", derived_from, allow_empty_strings=False
        )
        self._derived_using = self._optional_list("derived_using", derived_using)

    @property
    def derived_from(self) -> tuple[str, ...]:
        """References the products were derived from."""
        return self._derived_from

    @property
    def derived_using(self) -> tuple[str, ...]:
        """References used to derive the products."""
        return self._derived_using

    def to_dict(self) -> dict[str, Any]:
        """Return the plain, JSON-ready form stored in job documents."""
        return {
            "kind": self.kind,
            "patterns": list(self._patterns),
            "derived_from": list(self._derived_from),
            "derived_using": list(self._derived_using),
            "note": self._note,
            "fixity": self._fixity,
            "generated_by": list(self._generated_by),
        }


def _parse_json(text: str | bytes) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidIndexingRequest(f"index request is not valid JSON: {exc}") from exc
    except RecursionError:
        # json recurses once per level; such text is never a request.
        raise InvalidIndexingRequest(
            f"index request is nested deeper than {MAX_DEPTH} levels"
        ) from None


def index_request_from(value: object, *, kind: str | None = None) -> IndexRequest:
    """Turn a request, its dict form or its JSON form into an index request.

    The class comes from the value's ``kind``; without one, from the ``kind`` argument;
    without either, a dict with ``derived_from`` is a product request and any other
    an archive request.

    Args:
        value: An :class:`IndexRequest`, a dict, or a JSON string of a dict.
        kind: The kind the caller expects (``"archive"`` or ``"product"``), if any.

    Raises:
        InvalidIndexingRequest: The value is not a valid request, or not of ``kind``.
    """
    expected = IndexType(kind) if kind is not None else None
    if isinstance(value, IndexRequest):
        if expected is not None and value.kind != expected:
            raise InvalidIndexingRequest(
                f"expected a {expected} index request, got a {value.kind} one",
                kind=value.kind,
            )
        return value
    if isinstance(value, (str, bytes)):
        value = _parse_json(value)
    if not isinstance(value, Mapping):
        raise InvalidIndexingRequest(
            f"an index request must be a request object, a dict or a JSON object, "
            f"not {_type_name(value)}"
        )
    if "kind" in value:
        found = IndexType(value["kind"])
        if expected is not None and found != expected:
            raise InvalidIndexingRequest(
                f"expected a {expected} index request, got a {found} one", kind=str(found)
            )
    elif expected is not None:
        found = expected
    else:
        found = IndexType("product" if "derived_from" in value else "archive")
    return found.request_class.from_dict(value)

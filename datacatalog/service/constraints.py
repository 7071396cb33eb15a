"""What the service accepts, stated in its OpenAPI document.

Every rule the service enforces on a path parameter, a query parameter or a body
is written here once, as a JSON Schema fragment, so that the document describes
exactly what the server takes: a generated client, a fuzzer and the server agree
on which requests are valid. Patterns are anchored (``^…$``) and use only syntax
shared by ECMA-262 (JSON Schema's dialect) and the regular expressions pydantic
checks them with.

Rules the server checks itself, beyond what a parameter's type says:

* identifiers are lowercase typed UUIDs with the kind's prefix (``107…`` jobs);
* event names are the non-administrative events of :mod:`datacatalog.states`;
* a scheduler status and a state filter hold something besides whitespace;
* free-form data is a JSON object whose keys never start with ``$`` and never hold
  ``.`` or NUL, at any depth, and whose integers fit in 64 bits
  (:mod:`datacatalog.freeform`).
"""

from __future__ import annotations

from typing import Any

from datacatalog import identifiers, states
from datacatalog.freeform import INT64_MAX, INT64_MIN
from datacatalog.indexrequests import LEVELS, MAX_PATTERNS

_HEX_TAIL = "[0-9a-f]{5}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ANY_UUID = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def typed_uuid_pattern(*kinds: str) -> str:
    """An anchored pattern matching the typed UUIDs of ``kinds``."""
    prefixes = "|".join(identifiers.KIND_PREFIXES[k] for k in kinds)
    return f"^(?:{prefixes}){_HEX_TAIL}$"


JOB_UUID = typed_uuid_pattern("pipelinejob")
LINEAGE_ROOT = typed_uuid_pattern(
    "experiment_design",
    "experiment",
    "sample",
    "measurement",
    "file",
    "pipeline",
    "pipelinejob",
    "reference",
)
"""The UUIDs the lineage graph can start from (datacatalog.provenance.graph)."""
METADATA_UUID = typed_uuid_pattern("experiment_design", "experiment", "sample", "measurement")

REMOTE_EVENTS: list[str] = [e for e in states.EVENTS if not states.transition(e).admin]
"""Events a remote caller may send to ``/jobs/{uuid}/events``."""

EVENT_NAME: dict[str, Any] = {"enum": REMOTE_EVENTS}
"""The schema of an event name sent to the webhook."""

# Characters str.strip() removes (str.isspace); JSON Schema's \s differs from it, so the
# set is spelled out.
_SPACE = (
    "\\t\\n\\u000b\\f\\r\\u001c-\\u001f \\u0085\\u00a0\\u1680\\u2000-\\u200a"
    "\\u2028\\u2029\\u202f\\u205f\\u3000"
)
NOT_BLANK = f"^[\\s\\S]*[^{_SPACE}][\\s\\S]*$"
"""A string holding at least one character that ``str.strip()`` keeps."""


NO_SCHEME_SEPARATOR = "^(?:[^:]|:(?::|/:)*(?:[^:/]|/[^:/]))*(?::(?::|/:)*/?)?$"
"""Strings without ``://`` (written without look-ahead, which pydantic's engine lacks)."""

OPENLINEAGE_NAMESPACE: dict[str, Any] = {
    "type": "string",
    "description": "The OpenLineage job namespace: a non-blank name without '://'.",
    "allOf": [{"pattern": NOT_BLANK}, {"pattern": NO_SCHEME_SEPARATOR}],
}
"""An OpenLineage job namespace, as :func:`datacatalog.provenance.openlineage.check_namespace`
accepts it."""


def any_case(words: list[str] | tuple[str, ...], *, blanks: bool = True) -> str:
    """An anchored pattern matching one of ``words`` in any letter case.

    With ``blanks``, whitespace around the word is allowed too (the value is stripped).
    """

    def letters(word: str) -> str:
        return "".join(
            f"[{c.upper()}{c.lower()}]" if c.isalpha() else c.replace(".", "\\.") for c in word
        )

    around = f"[{_SPACE}]*" if blanks else ""
    return f"^{around}(?:{'|'.join(letters(w) for w in words)}){around}$"


STATE_FILTER = any_case(states.STATES)

INDEX_LEVEL = any_case(LEVELS, blanks=False)
"""A processing level, in any case (``reference`` is ``Reference``)."""

INDEX_LEVEL_OR_NULL: dict[str, Any] = {
    "anyOf": [{"type": "string", "pattern": INDEX_LEVEL}, {"type": "null"}]
}
"""A processing level, or null for the one the job's pipeline declares."""

INDEX_FILTERS: dict[str, Any] = {
    "anyOf": [
        {
            "type": "array",
            "items": {"type": "string", "format": "regex"},
            "maxItems": MAX_PATTERNS,
        },
        {"type": "null"},
    ]
}
"""Index filters: at most 512 regular expressions (Python's syntax), or null."""

FREEFORM_KEY = "^(?:[^$.\\u0000][^.\\u0000]*)?$"
"""A free-form key: not starting with ``$``, holding no ``.`` and no NUL."""

FREEFORM_VALUE: dict[str, Any] = {
    "description": "Plain JSON: keys never start with `$` and hold no `.`; integers fit in "
    "64 bits; at most 64 levels deep.",
    "anyOf": [
        {
            "type": "object",
            "propertyNames": {"pattern": FREEFORM_KEY},
            "additionalProperties": {"$ref": "#/components/schemas/FreeformValue"},
        },
        {"type": "array", "items": {"$ref": "#/components/schemas/FreeformValue"}},
        {"type": "string"},
        {"type": "integer", "minimum": INT64_MIN, "maximum": INT64_MAX},
        {"type": "number", "not": {"type": "integer"}},
        {"type": "boolean"},
        {"type": "null"},
    ],
}


def freeform_object(description: str, *, nullable: bool = True) -> dict[str, Any]:
    """The schema of a free-form JSON object field (job or event data)."""
    shape: dict[str, Any] = {
        "type": "object",
        "propertyNames": {"pattern": FREEFORM_KEY},
        "additionalProperties": {"$ref": "#/components/schemas/FreeformValue"},
    }
    if nullable:
        return {"anyOf": [shape, {"type": "null"}], "description": description}
    return {**shape, "description": description}


COMPONENTS: dict[str, dict[str, Any]] = {"FreeformValue": FREEFORM_VALUE}
"""Schemas the fragments above refer to, added to the document's components."""


def add_components(document: dict[str, Any]) -> None:
    """Add :data:`COMPONENTS` to an OpenAPI document in place."""
    document.setdefault("components", {}).setdefault("schemas", {}).update(COMPONENTS)


MAX_SKIP = 1_000_000_000
"""Largest ``skip`` of a page of jobs."""

# Under allOf: FastAPI writes an optional parameter as anyOf [its type, null], which a
# top-level anyOf here would replace.
PIPELINE_REFERENCE: dict[str, Any] = {
    "allOf": [
        {
            "anyOf": [
                {"pattern": typed_uuid_pattern("pipeline")},
                {"not": {"pattern": ANY_UUID}},
            ]
        }
    ]
}
"""A pipeline UUID, or an id that is not shaped like a UUID of another kind."""

_BAD_PATH = "(?:^|/)\\.\\.(?:/|$)|\\u0000"
FILE_REFERENCE: dict[str, Any] = {
    "allOf": [
        {
            "anyOf": [
                {"pattern": typed_uuid_pattern("file")},
                {"pattern": "^/", "not": {"anyOf": [{"pattern": "://"}, {"pattern": _BAD_PATH}]}},
                {"pattern": "^[\\s\\S]*?://[^/]*/+[^/]", "not": {"pattern": _BAD_PATH}},
            ]
        }
    ]
}
"""A file UUID, an absolute path without ``..`` parts or NUL, or a URI naming a path."""

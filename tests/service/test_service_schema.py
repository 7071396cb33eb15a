"""Schemathesis against the service's own OpenAPI document, with every check.

Requests are generated from the document for every operation, valid ones and invalid
ones (the negative mode), and sent to the application over a catalog holding one job.
Each response is checked against the document by schemathesis's checks: a schema-valid
request must not be refused as invalid, a schema-invalid one must be refused, no 5xx,
every status, header and body as documented. Two callers are tried: an anonymous one, and
one holding the job's token with the job's UUID in every path, so that the generated
requests reach past the token check into the routes themselves.

``DATACATALOG_FUZZ_EXAMPLES`` sets the examples per operation and mode (default 6, a
CI-sized run; ``make fuzz`` runs a long one).

One kind of "invalid" request is valid as the service reads it, and the document cannot
say otherwise: JSON Schema counts ``1e300`` as an integer (a number with no fraction), so
the document's 64-bit bound on integers refuses it, while the service, like Python's
``json``, reads ``1e300`` as a float and takes it; only an integer written without
fraction or exponent is held to 64 bits. A document that allowed such numbers would
let the fuzzer send ``100000000000000000000``, which the service rightly refuses. So a
negative request that the service accepts is checked once more, read as the service
reads it (:func:`read_as_the_service_does`); only when it is valid that way is the
acceptance not a failure.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema
import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from schemathesis.core import NOT_SET
from schemathesis.specs.openapi.checks import negative_data_rejection

from datacatalog.service import create_app
from datacatalog.store import Store
from tests.support.hostile import world

EXAMPLES = int(os.environ.get("DATACATALOG_FUZZ_EXAMPLES", "6"))
MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
# Every operation has valid requests; those without parameters or body have no invalid ones.
_MINIMUM = {schemathesis.GenerationMode.POSITIVE: 15, schemathesis.GenerationMode.NEGATIVE: 8}


# -- a request read as the service reads it ---------------------------------------------

_DOCUMENT = "urn:datacatalog:openapi"


def _is_json_integer(checker: Any, instance: object) -> bool:
    # An integer is one written without fraction or exponent, as Python's json reads it.
    return isinstance(instance, int) and not isinstance(instance, bool)


@functools.cache
def _pattern(pattern: str) -> Any:
    return jsonschema_rs.validator_for({"pattern": pattern})


def _ecma_pattern(
    validator: Any, pattern: str, instance: object, schema: Mapping[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    # JSON Schema's own regular expressions (ECMA-262: `$` is the end, not a final newline).
    if isinstance(instance, str) and not _pattern(pattern).is_valid(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


_ServiceReading = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    validators={"pattern": _ecma_pattern},
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_json_integer),
)


def _validator(
    document: Mapping[str, Any], *where: str, reading: type[Any] = _ServiceReading
) -> Any:
    """A validator of the schema at ``where`` in ``document`` (its references resolved)."""
    pointer = "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in where)
    registry: Registry[Any] = Registry().with_resource(
        _DOCUMENT, DRAFT202012.create_resource(document)
    )
    return reading(
        {"$ref": f"{_DOCUMENT}#{pointer}"},
        registry=registry,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def read_as_the_service_does(document: Mapping[str, Any], case: schemathesis.Case) -> bool:
    """Whether ``case`` is a valid request of ``document``, read the way the service reads it.

    Three readings differ from a plain JSON Schema validation: an integer is a number
    written without fraction or exponent (``1e300`` and ``10.0`` are floats); a parameter
    the operation does not declare is never read; a ``regex`` format is Python's.
    Everything else is the document's own schema, references and all.
    """
    where = ("paths", case.operation.path, case.method.lower())
    operation = document["paths"][case.operation.path][case.method.lower()]
    sent: dict[str, Mapping[str, Any]] = {
        "path": case.path_parameters or {},
        "query": case.query or {},
        "header": {k.lower(): v for k, v in (case.headers or {}).items()},
        "cookie": case.cookies or {},
    }
    for index, parameter in enumerate(operation.get("parameters", [])):
        values = sent[parameter["in"]]
        name = parameter["name"].lower() if parameter["in"] == "header" else parameter["name"]
        if name not in values:
            if parameter.get("required", False):
                return False
            continue
        schema = _validator(document, *where, "parameters", str(index), "schema")
        if not schema.is_valid(values[name]):
            return False

    body = operation.get("requestBody")
    if body is None or case.body is NOT_SET:
        return body is None or not body.get("required", False)
    if case.media_type not in body["content"]:
        return False
    schema = _validator(document, *where, "requestBody", "content", case.media_type, "schema")
    return bool(schema.is_valid(case.body))


def _run_operations(
    schema: schemathesis.BaseSchema,
    mode: schemathesis.GenerationMode,
    **fixed: Any,
) -> int:
    """Fuzz every operation of ``schema`` in ``mode``; return how many were tried."""
    tried = 0
    document = schema.raw_schema
    for result in schema.get_all_operations():
        operation = result.ok()
        path_parameters = fixed.get("path_parameters")
        if path_parameters is not None:
            names = {p.name for p in operation.path_parameters}
            path_parameters = {k: v for k, v in path_parameters.items() if k in names} or None
        strategy = operation.as_strategy(
            mode, path_parameters=path_parameters, headers=fixed.get("headers")
        )

        @given(case=strategy)
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def check(case: schemathesis.Case) -> None:
            excluded = []
            if mode is schemathesis.GenerationMode.NEGATIVE and read_as_the_service_does(
                document, case
            ):
                excluded.append(negative_data_rejection)
            case.call_and_validate(excluded_checks=excluded)

        try:
            check()
        except Unsatisfiable:
            # Only in the negative mode, for an operation with nothing that can be
            # made invalid (no parameters, no body): there is nothing to send.
            assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
            continue
        tried += 1
    return tried


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_anonymous_requests_conform(
    store: Store, tmp_path: Path, mode: schemathesis.GenerationMode
) -> None:
    with world(store, tmp_path) as built:
        schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(built.catalog))
        assert _run_operations(schema, mode) >= _MINIMUM[mode]


@pytest.mark.slow
@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.value)
def test_token_holder_requests_conform(
    store: Store, tmp_path: Path, mode: schemathesis.GenerationMode
) -> None:
    with world(store, tmp_path) as built:
        schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(built.catalog))
        tried = _run_operations(
            schema,
            mode,
            headers={"Authorization": f"Bearer {built.token}"},
            path_parameters={"job_uuid": built.job.uuid},
        )
        assert tried >= _MINIMUM[mode]


# Whole floats past 64 bits: integers to JSON Schema, floats to the service.
_WHOLE_FLOATS = {"k": 3.9256011285168244e213, "n": -3.402823466e38, "w": 10.0}


@pytest.mark.parametrize(
    ("data", "service_takes_it"),
    [
        (_WHOLE_FLOATS, True),
        ({"k": 2**70}, False),  # an integer past 64 bits
        ({"k": 1e300, "$where": 1.5}, False),  # a key the document refuses
        ({"k": [1e300, {"a.b": 1}]}, False),
    ],
    ids=["whole-floats", "big-integer", "dollar-key", "dotted-key"],
)
def test_a_request_is_read_as_the_service_reads_it(
    store: Store, tmp_path: Path, data: dict[str, Any], service_takes_it: bool
) -> None:
    with world(store, tmp_path) as built:
        schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(built.catalog))
        document = schema.raw_schema
        operation = schema["/jobs/{job_uuid}/status"]["POST"]
        case = operation.Case(
            path_parameters={"job_uuid": built.job.uuid},
            query={"status": "running"},
            headers={"Authorization": f"Bearer {built.token}"},
            body=data,
            media_type="application/json",
        )
        where = ("paths", "/jobs/{job_uuid}/status", "post", "requestBody", "content")
        plain = _validator(
            document, *where, "application/json", "schema", reading=jsonschema.Draft202012Validator
        )
        # Plain JSON Schema refuses every one of them (what the fuzzer calls invalid) ...
        assert not plain.is_valid(data)
        # ... the service takes exactly those that its own reading finds valid.
        assert read_as_the_service_does(document, case) is service_takes_it
        response = case.call()
        assert response.status_code == (200 if service_takes_it else 400), response.text

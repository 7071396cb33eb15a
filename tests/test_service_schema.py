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
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from datacatalog.service import create_app
from datacatalog.store import Store
from tests.hostile import world

EXAMPLES = int(os.environ.get("DATACATALOG_FUZZ_EXAMPLES", "6"))
MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
# Every operation has valid requests; those without parameters or body have no invalid ones.
_MINIMUM = {schemathesis.GenerationMode.POSITIVE: 15, schemathesis.GenerationMode.NEGATIVE: 8}


def _run_operations(
    schema: schemathesis.BaseSchema,
    mode: schemathesis.GenerationMode,
    **fixed: Any,
) -> int:
    """Fuzz every operation of ``schema`` in ``mode``; return how many were tried."""
    tried = 0
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
            case.call_and_validate()

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

"""Tests for datacatalog.errors: categories, stable codes and the exit/HTTP table."""

from __future__ import annotations

import json

import pytest

from datacatalog import errors
from datacatalog.errors import (
    ERROR_TABLE,
    ActiveExecutionsError,
    ConflictError,
    DataCatalogError,
    ErrorMapping,
    ForbiddenError,
    InvalidRequestError,
    InvalidTransitionError,
    LeaseLostError,
    NotFoundError,
    PayloadTooLargeError,
    StaleOutputsError,
    StorageFailureError,
    UnauthorizedError,
    UnavailableError,
    mapping_for,
)

# The published contract: code, exit code and HTTP status of every category.
CONTRACT: dict[type[DataCatalogError], tuple[str, int, int]] = {
    DataCatalogError: ("error", 1, 500),
    InvalidRequestError: ("invalid_request", 2, 400),
    PayloadTooLargeError: ("payload_too_large", 2, 413),
    NotFoundError: ("not_found", 3, 404),
    InvalidTransitionError: ("invalid_transition", 4, 409),
    ConflictError: ("conflict", 5, 409),
    LeaseLostError: ("lease_lost", 5, 409),
    ActiveExecutionsError: ("active_executions", 9, 409),
    StaleOutputsError: ("stale_outputs", 10, 409),
    UnauthorizedError: ("unauthorized", 6, 401),
    ForbiddenError: ("forbidden", 6, 403),
    StorageFailureError: ("storage_failure", 7, 502),
    UnavailableError: ("unavailable", 8, 503),
}


def all_categories() -> set[type[DataCatalogError]]:
    found = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, DataCatalogError)
    }
    return found


def test_contract_covers_every_category() -> None:
    assert all_categories() == set(CONTRACT)


def test_codes_are_distinct() -> None:
    codes = [cls.code for cls in CONTRACT]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize("category", list(CONTRACT), ids=lambda c: c.__name__)
def test_category_has_its_stable_code_and_table_row(category: type[DataCatalogError]) -> None:
    code, exit_code, status = CONTRACT[category]
    assert category.code == code
    assert ERROR_TABLE[code] == ErrorMapping(code, exit_code, status)
    error = category("something went wrong", thing="x")
    assert isinstance(error, DataCatalogError)
    assert mapping_for(error) == ERROR_TABLE[code]
    assert error.code == code


def test_table_has_no_extra_rows() -> None:
    assert set(ERROR_TABLE) == {cls.code for cls in CONTRACT}
    assert all(key == row.code for key, row in ERROR_TABLE.items())


@pytest.mark.parametrize("foreign", [ValueError("x"), KeyError("k"), RuntimeError(), OSError()])
def test_foreign_exceptions_map_to_the_root(foreign: BaseException) -> None:
    mapping = mapping_for(foreign)
    assert (mapping.exit_code, mapping.http_status) == (1, 500)


def test_subclass_without_its_own_row_falls_back_to_the_root() -> None:
    class Strange(DataCatalogError):
        code = "strange"

    assert mapping_for(Strange("x")) == ERROR_TABLE["error"]


def test_categories_group_what_the_caller_can_do() -> None:
    assert issubclass(PayloadTooLargeError, InvalidRequestError)
    assert issubclass(ForbiddenError, UnauthorizedError)
    for category in CONTRACT:
        assert issubclass(category, Exception)


def test_message_and_details() -> None:
    error = NotFoundError("job 107x is not in the catalog", job="107x")
    assert str(error) == "job 107x is not in the catalog"
    assert error.message == str(error)
    assert error.details == {"job": "107x"}
    assert error.to_dict() == {
        "code": "not_found",
        "message": "job 107x is not in the catalog",
        "details": {"job": "107x"},
    }


def test_to_dict_without_details_has_no_details_key() -> None:
    assert ConflictError("taken").to_dict() == {"code": "conflict", "message": "taken"}


def test_to_dict_is_json_ready() -> None:
    class Thing:
        def __str__(self) -> str:
            return "thing!"

    error = InvalidRequestError(
        "bad", tuple_=(1, 2), set_={"a"}, nested={1: [Thing(), None]}, flag=True
    )
    body = error.to_dict()
    assert json.loads(json.dumps(body)) == body
    assert body["details"] == {
        "tuple_": [1, 2],
        "set_": ["a"],
        "nested": {"1": ["thing!", None]},
        "flag": True,
    }

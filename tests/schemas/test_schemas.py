"""Tests for the bundled JSON Schemas and :mod:`datacatalog.schemas`.

The schemas are pinned by folders of examples, ``schemas/examples/<kind>/valid``
and ``.../invalid``; every invalid example carries exactly one defect.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import fields as dataclass_fields
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator  # type: ignore[import-untyped, unused-ignore]

from datacatalog import schemas
from datacatalog.errors import InvalidRequestError
from datacatalog.indexing import FileRecord
from datacatalog.schemas.fields import fields_of
from datacatalog.states import ADMIN_ACTIONS, EVENTS, STATES

REPO = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO / "schemas"
EXAMPLES = SCHEMA_DIR / "examples"

JOB_UUID = "107a90b7-f083-5167-a63d-41a3bf278bf8"
EVENT_UUID = "1086ac3d-863a-572a-9431-2e5325defb4b"


def _examples(outcome: str) -> list[Any]:
    return [
        pytest.param(path.parent.parent.name, path, id=f"{path.parent.parent.name}/{path.stem}")
        for path in sorted(EXAMPLES.glob(f"*/{outcome}/*.json"))
    ]


def _read(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _history_entry(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "uuid": EVENT_UUID,
        "event_id": "key-1",
        "name": "run",
        "date": datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc),
        "data": {},
        "from_state": "CREATED",
        "to_state": "RUNNING",
        "agent": None,
        "host": "node1",
        "pid": 12,
        "version": "1.0",
    }
    entry.update(changes)
    return entry


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "generate_schema_enums", REPO / "tools" / "generate_schema_enums.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the examples ---------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "path"), _examples("valid"))
def test_valid_example_validates(kind: str, path: Path) -> None:
    schemas.validate(kind, _read(path))


@pytest.mark.parametrize(("kind", "path"), _examples("invalid"))
def test_invalid_example_is_refused_naming_the_kind(kind: str, path: Path) -> None:
    document = _read(path)
    with pytest.raises(InvalidRequestError) as caught:
        schemas.validate(kind, document)
    assert str(caught.value).startswith(f"{kind} document is invalid")
    assert caught.value.details["kind"] == kind
    assert caught.value.details["reason"]


@pytest.mark.parametrize(("kind", "path"), _examples("invalid"))
def test_invalid_example_has_exactly_one_defect(kind: str, path: Path) -> None:
    errors = list(schemas.validator_for(kind).iter_errors(_read(path)))
    assert len(errors) == 1, [error.message for error in errors]


def test_every_kind_has_valid_and_invalid_examples() -> None:
    folders = {path.name for path in EXAMPLES.iterdir() if path.is_dir()}
    assert folders == set(schemas.KINDS)
    for kind in schemas.KINDS:
        assert list((EXAMPLES / kind / "valid").glob("*.json")), kind
        assert list((EXAMPLES / kind / "invalid").glob("*.json")), kind


def test_error_message_names_the_field_path() -> None:
    document = _read(EXAMPLES / "job" / "valid" / "running.json")
    document["history"][1]["name"] = "bogus"
    with pytest.raises(InvalidRequestError) as caught:
        schemas.validate("job", document)
    assert str(caught.value).startswith("job document is invalid at history/1/name: 'bogus'")
    assert caught.value.details["path"] == "history/1/name"
    assert caught.value.code == "invalid_request"
    assert caught.value.to_dict()["details"]["kind"] == "job"


def test_long_reasons_are_truncated_with_a_marker() -> None:
    document = _read(EXAMPLES / "job" / "valid" / "running.json")
    document["archive_path"] = "x" * 5000
    with pytest.raises(InvalidRequestError) as caught:
        schemas.validate("job", document)
    assert len(str(caught.value)) < 700
    assert str(caught.value).endswith("(truncated)")


def test_validate_accepts_datetimes_in_the_document() -> None:
    document = _read(EXAMPLES / "job" / "valid" / "running.json")
    moment = datetime(2024, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    document["_properties"]["created_date"] = moment
    document["history"][0]["date"] = moment.replace(tzinfo=None)
    schemas.validate("job", document)
    assert document["_properties"]["created_date"] is moment  # not modified in place


def test_unknown_kind_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequestError, match="unknown document kind 'jobs'"):
        schemas.validate("jobs", {})
    with pytest.raises(InvalidRequestError, match="known kinds: pipeline, job"):
        schemas.schema_for("definitions")


# --- the schemas themselves -----------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(SCHEMA_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_schema_file_is_a_valid_2020_12_schema(path: Path) -> None:
    schema = _read(path)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == schemas.schema_uri(path.stem)


def test_schema_files_are_exactly_the_kinds_plus_definitions() -> None:
    names = {path.stem for path in SCHEMA_DIR.glob("*.json")}
    assert names == {*schemas.KINDS, schemas.DEFINITIONS}


@pytest.mark.parametrize("kind", schemas.STORED_KINDS)
def test_every_stored_kind_requires_uuid_and_properties(kind: str) -> None:
    assert {"uuid", "_properties"} <= set(schemas.schema_for(kind)["required"])


def test_stored_kinds_are_the_store_kinds() -> None:
    assert set(schemas.STORED_KINDS) == {
        "pipeline",
        "job",
        "file",
        "reference",
        "experiment_design",
        "experiment",
        "sample",
        "measurement",
        "audit",
        "workflow_execution",
        "workflow_task",
        "workflow_log",
        "plugin",
    }
    assert set(schemas.STORED_KINDS) | set(schemas.EMBEDDED_KINDS) == set(schemas.KINDS)


@pytest.mark.parametrize(
    ("kind", "prefix"),
    [
        ("pipeline", "106"),
        ("job", "107"),
        ("job_history_entry", "108"),
        ("file", "105"),
        ("reference", "109"),
        ("experiment_design", "114"),
        ("experiment", "102"),
        ("sample", "103"),
        ("measurement", "104"),
        ("audit", "100"),
    ],
)
def test_uuid_field_pins_the_typed_prefix(kind: str, prefix: str) -> None:
    good = f"{prefix}52d7e-7f0a-59df-a1a3-c5bb44e07f2f"
    schemas.validate_fragment(kind, "uuid", good)
    with pytest.raises(InvalidRequestError, match=f"at uuid: .* does not match '\\^{prefix}'"):
        schemas.validate_fragment(kind, "uuid", "999" + good[3:])


def test_schema_for_returns_a_copy() -> None:
    schemas.schema_for("job")["properties"].clear()
    assert "state" in schemas.schema_for("job")["properties"]


def test_validators_are_cached() -> None:
    assert schemas.validator_for("file") is schemas.validator_for("file")


# --- the enums come from the state table ----------------------------------------------------


def test_schema_enums_equal_the_state_table() -> None:
    definitions = _read(SCHEMA_DIR / "definitions.json")["$defs"]
    assert definitions["job_state"]["enum"] == list(STATES)
    assert definitions["job_event"]["enum"] == list(EVENTS)


@pytest.mark.parametrize("state", STATES)
def test_every_state_is_accepted_where_states_are_stored(state: str) -> None:
    schemas.validate_fragment("job", "state", state)
    schemas.validate_fragment("job_history_entry", "from_state", state)
    schemas.validate_fragment("job_history_entry", "to_state", state)


@pytest.mark.parametrize("event", EVENTS)
def test_every_event_is_accepted_where_events_are_stored(event: str) -> None:
    schemas.validate_fragment("job", "last_event", event)
    schemas.validate_fragment("job", "history", _history_entry(name=event), item=True)


def test_audit_actions_cover_the_admin_actions() -> None:
    actions = schemas.schema_for("audit")["properties"]["action"]["enum"]
    assert set(ADMIN_ACTIONS) <= set(actions)


def test_generator_reports_the_checked_in_enums_up_to_date() -> None:
    assert _load_generator().main(["--check"]) == 0


def test_generator_detects_and_repairs_a_divergence(tmp_path: Path) -> None:
    generator = _load_generator()
    definitions = _read(SCHEMA_DIR / "definitions.json")
    definitions["$defs"]["job_state"]["enum"] = ["CREATED", "DONE"]
    stale = tmp_path / "definitions.json"
    stale.write_text(json.dumps(definitions), encoding="utf-8")
    assert generator.main(["--check", "--path", str(stale)]) == 1
    assert generator.main(["--path", str(stale)]) == 0
    assert _read(stale)["$defs"]["job_state"]["enum"] == list(STATES)
    assert generator.main(["--check", "--path", str(stale)]) == 0


# --- validate_fragment (what $set / $push are checked with) ---------------------------------


def test_set_state() -> None:
    schemas.validate_fragment("job", "state", "FINISHED")
    with pytest.raises(InvalidRequestError) as caught:
        schemas.validate_fragment("job", "state", "DONE")
    assert str(caught.value).startswith("job document is invalid at state: 'DONE' is not one of")
    assert caught.value.details["path"] == "state"


def test_set_nested_date_accepts_datetime_and_refuses_bad_strings() -> None:
    schemas.validate_fragment("job", "_properties.modified_date", datetime.now(timezone.utc))
    with pytest.raises(InvalidRequestError, match="at _properties/modified_date: 'soon'"):
        schemas.validate_fragment("job", "_properties.modified_date", "soon")


def test_push_history_entry() -> None:
    schemas.validate_fragment("job", "history", _history_entry(), item=True)
    with pytest.raises(InvalidRequestError) as caught:
        schemas.validate_fragment("job", "history", _history_entry(name="bogus"), item=True)
    assert caught.value.details["path"] == "history/-/name"
    assert "'bogus' is not one of" in str(caught.value)
    with pytest.raises(InvalidRequestError, match="at history/-: 'to_state' is a required"):
        entry = _history_entry()
        del entry["to_state"]
        schemas.validate_fragment("job", "history", entry, item=True)


def test_set_whole_array_is_checked_as_an_array() -> None:
    schemas.validate_fragment("job", "history", [_history_entry()])
    with pytest.raises(InvalidRequestError, match=r"at history: .* is not of type 'array'"):
        schemas.validate_fragment("job", "history", _history_entry())


def test_push_to_a_linkage_list() -> None:
    schemas.validate_fragment("file", "generated_by", JOB_UUID, item=True)
    with pytest.raises(InvalidRequestError, match="at generated_by/-: 'job-1' does not match"):
        schemas.validate_fragment("file", "generated_by", "job-1", item=True)


def test_positional_array_paths() -> None:
    schemas.validate_fragment("job", "history.3.to_state", "FAILED")
    schemas.validate_fragment("job", "history.$.data", {"note": "x"})
    with pytest.raises(InvalidRequestError, match="at history/3/name: 'bogus'"):
        schemas.validate_fragment("job", "history.3.name", "bogus")


def test_unknown_top_level_field_is_named() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        schemas.validate_fragment("job", "colour", "blue")
    assert str(caught.value) == "job document is invalid at colour: unknown field 'colour'"
    assert caught.value.details == {
        "kind": "job",
        "path": "colour",
        "reason": "unknown field 'colour'",
    }


def test_unknown_nested_field_is_named() -> None:
    with pytest.raises(InvalidRequestError, match="at _properties/owner: unknown field 'owner'"):
        schemas.validate_fragment("job", "_properties.owner", "me")


def test_field_inside_a_scalar_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="at state/name: 'state' has no field 'name'"):
        schemas.validate_fragment("job", "state.name", "x")


def test_open_objects_accept_any_field() -> None:
    schemas.validate_fragment("job", "data.threshold", 0.5)
    schemas.validate_fragment("job", "data.deeply.nested.key", {"a": [1, 2]})
    schemas.validate_fragment("sample", "strain", {"name": "W303"})
    schemas.validate_fragment("audit", "details.files", 3)


def test_push_to_a_field_that_is_not_an_array() -> None:
    with pytest.raises(InvalidRequestError, match="field 'state' is not an array"):
        schemas.validate_fragment("job", "state", "RUNNING", item=True)


@pytest.mark.parametrize("field_path", ["", "history..name", ".state", "state."])
def test_malformed_field_paths(field_path: str) -> None:
    with pytest.raises(InvalidRequestError, match="invalid field path"):
        schemas.validate_fragment("job", field_path, "x")


def test_fragment_of_unknown_kind() -> None:
    with pytest.raises(InvalidRequestError, match="unknown document kind"):
        schemas.validate_fragment("jobs", "state", "RUNNING")


# --- to_json_compatible and date-time -------------------------------------------------------


def test_to_json_compatible_converts_datetimes_to_utc_milliseconds() -> None:
    eastern = timezone(timedelta(hours=-5))
    value: dict[str, Any] = {
        "aware": datetime(2024, 3, 1, 7, 0, 0, 123999, tzinfo=eastern),
        "naive": datetime(2024, 3, 1, 12, 0, 0),
        "nested": [{"at": datetime(2024, 1, 2, 3, 4, 5, 6000, tzinfo=timezone.utc)}],
        "tuple": (1, "two"),
        "plain": {"n": 1, "f": 1.5, "s": "x", "b": True, "none": None},
    }
    converted = schemas.to_json_compatible(value)
    assert converted == {
        "aware": "2024-03-01T12:00:00.123Z",
        "naive": "2024-03-01T12:00:00.000Z",
        "nested": [{"at": "2024-01-02T03:04:05.006Z"}],
        "tuple": [1, "two"],
        "plain": {"n": 1, "f": 1.5, "s": "x", "b": True, "none": None},
    }
    assert isinstance(value["aware"], datetime)  # the input is left alone
    converted["plain"]["n"] = 2
    assert value["plain"]["n"] == 1


@given(st.datetimes(timezones=st.just(timezone.utc)))
def test_converted_datetimes_are_valid_and_round_trip_to_the_millisecond(
    moment: datetime,
) -> None:
    text = schemas.to_json_compatible(moment)
    schemas.validate_fragment("job", "_properties.created_date", text)
    parsed = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert parsed == moment.replace(microsecond=moment.microsecond // 1000 * 1000)


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-01T12:00:00Z",
        "2024-03-01T12:00:00.123Z",
        "2024-03-01T12:00:00.123456+00:00",
        "2024-03-01t12:00:00-05:30",
        "2024-02-29T23:59:59.9z",
    ],
)
def test_date_time_format_accepts(text: str) -> None:
    schemas.validate_fragment("audit", "date", text)


@pytest.mark.parametrize(
    "text",
    [
        "2024-03-01",
        "2024-03-01T12:00:00",
        "2024-03-01 12:00:00Z",
        "2023-02-29T00:00:00Z",
        "2024-03-01T24:00:00Z",
        "2024-03-01T12:00:00+25:00",
        "yesterday",
    ],
)
def test_date_time_format_refuses(text: str) -> None:
    with pytest.raises(InvalidRequestError, match="is not a 'date-time'"):
        schemas.validate_fragment("audit", "date", text)


# --- loading ----------------------------------------------------------------------------------


def test_loader_finds_every_schema() -> None:
    directory = schemas.schema_directory()
    for name in (*schemas.KINDS, schemas.DEFINITIONS):
        assert (directory / f"{name}.json").is_file(), name


def test_loader_falls_back_to_the_checkout() -> None:
    bundled = resources.files("datacatalog") / "_schemas"
    if (bundled / "definitions.json").is_file():
        pytest.skip("running from an installed wheel with bundled schemas")
    assert Path(str(schemas.schema_directory())) == SCHEMA_DIR
    assert schemas.schema_for("job") == _read(SCHEMA_DIR / "job.json")


def test_registry_resolves_references_across_files() -> None:
    resolver = schemas.registry().resolver()
    typed_uuid: Any = resolver.lookup(f"{schemas.schema_uri('definitions')}#/$defs/typed_uuid")
    assert typed_uuid.contents["type"] == "string"
    entry: Any = resolver.lookup(schemas.schema_uri("job_history_entry"))
    assert entry.contents["title"] == "job_history_entry"


# --- compiled validation: whole updates, and the precise error path -----------------------


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"$set": {"name": "relative/path"}}, "file document is invalid at name: "),
        (
            {"$addToSet": {"generated_by": {"$each": [JOB_UUID, "job-1"]}}},
            "file document is invalid at generated_by/-: 'job-1'",
        ),
        ({"$push": {"child_of": 12}}, "file document is invalid at child_of/-: 12"),
        ({"$setOnInsert": {"size": -1}}, "file document is invalid at size: -1"),
        ({"$set": {"_properties.revision": "x"}}, "file document is invalid at _properties/"),
        ({"$set": {"bogus": 1}}, "file document is invalid at bogus: unknown field 'bogus'"),
    ],
)
def test_a_refused_update_names_the_kind_and_the_field_path(
    update: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        schemas.validate_update("file", update)
    assert str(caught.value).startswith(message)
    assert caught.value.details["kind"] == "file"
    assert caught.value.details["path"]


def test_a_refused_update_names_the_path_inside_the_value() -> None:
    entry = _history_entry(name="bogus")
    with pytest.raises(InvalidRequestError) as caught:
        schemas.validate_update("job", {"$push": {"history": entry}, "$set": {"state": "RUNNING"}})
    assert caught.value.details["path"] == "history/-/name"
    assert str(caught.value).startswith("job document is invalid at history/-/name: 'bogus'")


def test_an_update_validates_datetimes_and_every_written_field() -> None:
    now = datetime.now(timezone.utc)
    schemas.validate_update(
        "job",
        {
            "$set": {"state": "RUNNING", "_properties.modified_date": now},
            "$push": {"history": _history_entry()},
            "$inc": {"_properties.revision": 1},
        },
    )


@pytest.mark.parametrize(
    "moment",
    ["2024-06-30T23:59:60Z", "2024-02-30T00:00:00Z", "2024-01-01T00:00:00", "2024-01-01 10:00Z"],
)
def test_the_compiled_and_precise_paths_refuse_the_same_timestamps(moment: str) -> None:
    # The precise path is jsonschema with our date-time check; the compiled one must agree.
    assert not schemas.messages.is_date_time(moment)
    with pytest.raises(InvalidRequestError, match="is not a 'date-time'"):
        schemas.validate_fragment("job", "_properties.modified_date", moment)
    with pytest.raises(InvalidRequestError, match="is not a 'date-time'"):
        schemas.validate_update("job", {"$set": {"_properties.modified_date": moment}})


@pytest.mark.parametrize("kind", schemas.KINDS)
def test_compiled_and_precise_validators_agree_on_every_example(kind: str) -> None:
    for path in sorted((EXAMPLES / kind).glob("*/*.json")):
        document = schemas.to_json_compatible(_read(path))
        fast = schemas.compiled.check(schemas.compiled.document_validator(kind), document)
        assert fast == schemas.validator_for(kind).is_valid(document), path
        assert fast == (path.parent.name == "valid"), path


# -- fields of a kind, and the file record read by them --------------------------------


def test_the_fields_of_a_kind_are_read_from_its_schema() -> None:
    found = fields_of("file")
    assert "_properties" not in found and "_visible" not in found
    assert found["uuid"].required and not found["uuid"].array
    assert found["derived_from"].array and not found["derived_from"].required
    assert found["generated_by"].array and found["generated_by"].required
    assert found["fixity_date"].date_time and not found["size"].date_time


def test_the_file_record_has_exactly_the_schema_fields() -> None:
    assert {f.name for f in dataclass_fields(FileRecord)} == set(fields_of("file"))


def test_a_file_record_reads_a_document_and_writes_json_by_the_schema() -> None:
    moment = datetime(2024, 3, 1, 12, 59, 59, 999000, tzinfo=timezone.utc)
    document = {
        "uuid": "10587c4e-4516-58a1-be87-e3421c5d61a7",
        "name": "/products/a.png",
        "storage_system": "local",
        "level": "2",
        "type": "PNG",
        "generated_by": ["107a90b7-f083-5167-a63d-41a3bf278bf8"],
        "derived_from": None,
        "modified_date": moment,
        "_visible": True,
    }
    record = FileRecord.from_document(document)
    assert record.derived_from == [] and record.child_of == []
    assert record.size is None and record.fixity_date is None
    assert record.to_dict() == {
        "uuid": "10587c4e-4516-58a1-be87-e3421c5d61a7",
        "name": "/products/a.png",
        "storage_system": "local",
        "size": None,
        "sha256": None,
        "level": "2",
        "type": "PNG",
        "generated_by": ["107a90b7-f083-5167-a63d-41a3bf278bf8"],
        "derived_from": [],
        "derived_using": [],
        "child_of": [],
        "modified_date": "2024-03-01T12:59:59.999000+00:00",
        "fixity_date": None,
        "note": None,
    }
    with pytest.raises(KeyError, match="level"):
        FileRecord.from_document({k: v for k, v in document.items() if k != "level"})

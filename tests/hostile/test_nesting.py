"""Regression tests: deeply nested input is refused with the project's own error.

Job data nested a few hundred levels deep used to escape from the compatibility
constructor as a ``RecursionError`` (``copy.deepcopy`` recursed before anything checked the
value). Every way in for nested input is tried here at a depth just over the limit, at a
few hundred levels and at tens of thousands, and each must give the "nested deeper than"
error and write nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from datacatalog import freeform
from datacatalog.cli import cli
from datacatalog.errors import InvalidRequestError
from datacatalog.indexrequests import index_request_from
from datacatalog.managers.pipelinejobs import ManagedPipelineJob
from datacatalog.service.limits import MAX_BODY_DEPTH, nesting_error
from datacatalog.settings import Settings
from datacatalog.store import Store
from tests.support.hostile import World, nested, nested_text, world, writes_nothing

DEPTHS = (freeform.MAX_DEPTH + 1, 90, 400, 20_000)


@pytest.fixture
def hostile(store: Store, tmp_path: Path) -> World:
    with world(store, tmp_path) as built:
        return built


@pytest.mark.parametrize("kind", ["dict", "list"])
@pytest.mark.parametrize("depth", DEPTHS)
def test_check_json_refuses_any_depth(depth: int, kind: str) -> None:
    with pytest.raises(InvalidRequestError, match="nested deeper than 64 levels"):
        freeform.check_json(nested(depth, kind=kind), where="data")


def test_the_deepest_allowed_value_passes_and_names_the_path() -> None:
    freeform.check_json(nested(freeform.MAX_DEPTH), where="data")
    with pytest.raises(InvalidRequestError) as caught:
        freeform.check_json({"a": [nested(freeform.MAX_DEPTH)]}, where="data")
    assert caught.value.details["where"].startswith("data.a[0].k.k")


@pytest.mark.parametrize("depth", DEPTHS)
def test_compat_constructor_refuses_deep_data(hostile: World, depth: int) -> None:
    """The defect: ManagedPipelineJob(..., data=<400 levels>) raised RecursionError."""
    with writes_nothing(hostile.store), pytest.raises(InvalidRequestError, match="nested"):
        ManagedPipelineJob(
            hostile.store,
            {"pipeline_uuid": hostile.pipeline_uuid},
            sample_id="sample.hostile",
            data={"deep": nested(depth)},
            settings=hostile.catalog.settings,
        )


@pytest.mark.parametrize("field", ["inputs", "archive_patterns", "generated_by"])
def test_compat_constructor_refuses_other_deep_arguments(hostile: World, field: str) -> None:
    with writes_nothing(hostile.store), pytest.raises(InvalidRequestError, match="nested"):
        ManagedPipelineJob(
            hostile.store,
            {"pipeline_uuid": hostile.pipeline_uuid},
            sample_id="sample.hostile",
            settings=hostile.catalog.settings,
            **{field: [nested(2_000, kind="list")]},
        )


def test_compat_setup_refuses_deep_data(hostile: World) -> None:
    job = ManagedPipelineJob(
        hostile.store,
        {"pipeline_uuid": hostile.pipeline_uuid},
        sample_id="sample.hostile",
        settings=hostile.catalog.settings,
    )
    with writes_nothing(hostile.store), pytest.raises(InvalidRequestError, match="nested"):
        job.setup(data={"deep": nested(3_000)})


@pytest.mark.parametrize("depth", DEPTHS)
def test_core_calls_refuse_deep_values(hostile: World, depth: int) -> None:
    jobs = hostile.catalog.jobs
    with writes_nothing(hostile.store):
        with pytest.raises(InvalidRequestError, match="nested"):
            jobs.plan(
                pipeline=hostile.pipeline_uuid,
                metadata={"sample_id": "sample.hostile"},
                data={"deep": nested(depth)},
            )
        with pytest.raises(InvalidRequestError, match="nested"):
            jobs.send(hostile.job.uuid, "update", data={"deep": nested(depth)})
        with pytest.raises(InvalidRequestError, match="nested"):
            hostile.catalog.metadata.load([{"experiment_design_id": "d2", "x": nested(depth)}])
        with pytest.raises(InvalidRequestError, match="nested"):
            hostile.catalog.pipelines.register(
                {"id": "deep", "components": [{"image": "a", "x": nested(depth)}]}
            )


@pytest.mark.parametrize("depth", [MAX_BODY_DEPTH + 1, 400, 20_000])
@pytest.mark.parametrize("kind", ["dict", "list"])
def test_service_refuses_deep_bodies_before_parsing(hostile: World, depth: int, kind: str) -> None:
    uuid = hostile.job.uuid
    bodies = {
        f"/jobs/{uuid}/events": '{"name":"update","data":' + nested_text(depth, kind=kind) + "}",
        f"/jobs/{uuid}/status?status=RUNNING": nested_text(depth, kind=kind),
        f"/jobs/{uuid}/index": '{"filters":' + nested_text(depth, kind="list") + "}",
    }
    with writes_nothing(hostile.store):
        for url, body in bodies.items():
            response = hostile.client.post(
                url,
                content=body,
                headers={
                    "content-type": "application/json",
                    "authorization": f"Bearer {hostile.token}",
                },
            )
            assert response.status_code == 400, (url, response.text)
            error = response.json()["error"]
            assert error["code"] == "invalid_request", (url, error)
            assert "nested deeper than" in error["message"], (url, error)


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"name": "update", "data": {"s": "[" * 5000 + '\\"' + "{" * 5000}})
    assert nesting_error(text.encode()) is None
    assert nesting_error(nested_text(MAX_BODY_DEPTH).encode()) is None
    assert nesting_error(nested_text(MAX_BODY_DEPTH + 1).encode()) is not None


@pytest.mark.parametrize("depth", [400, 50_000])
def test_json_and_yaml_parsers_refuse_deep_text(tmp_path: Path, depth: int) -> None:
    with pytest.raises(InvalidRequestError, match="nested deeper than"):
        freeform.parse_json(nested_text(depth), where="--data")
    with pytest.raises(InvalidRequestError):  # too deep to parse, or not a request
        index_request_from('{"patterns": ' + nested_text(depth, kind="list") + "}")
    config = tmp_path / "config.yaml"
    config.write_text("[" * depth + "]" * depth)
    with pytest.raises(InvalidRequestError, match="nested deeper than"):
        Settings.load(env={"DATACATALOG_CONFIG": str(config)})
    with pytest.raises(InvalidRequestError, match="nested deeper than"):
        Settings.load(env={"DATACATALOG_STORAGE_SYSTEMS": nested_text(depth)})


@pytest.mark.parametrize("depth", [400, 50_000])
def test_cli_refuses_deep_options_and_files(tmp_path: Path, depth: int) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path / "data"), "--json"]
    for suffix in (".json", ".yaml"):
        document = tmp_path / f"metadata{suffix}"
        document.write_text("[" + nested_text(depth) + "]")
        result = runner.invoke(cli, [*base, "metadata", "load", str(document)])
        assert result.exit_code == 2, result.output
        assert "nested deeper than" in result.stderr
    deep = nested_text(depth)
    result = runner.invoke(
        cli,
        [*base, "jobs", "create", "--pipeline", "p", "--sample-id", "s", "--data", deep],
    )
    assert result.exit_code == 2, result.output
    assert "nested deeper than" in result.stderr
    assert not (tmp_path / "data" / "catalog.json").exists()  # refused before opening it

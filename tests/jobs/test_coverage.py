"""Coverage: a metadata selection against pipelines and parameter sets, on both engines.

The library call, the command line (``datacatalog coverage``) and the dashboard page
read the same matrix; its cost is a fixed number of store calls whatever the number of
entities and jobs (counted here, so a per-row query cannot creep in).
"""

from __future__ import annotations

import html
import json
import re
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from datacatalog.catalog import Catalog
from datacatalog.cli import cli
from datacatalog.errors import InvalidRequestError, NotFoundError
from datacatalog.service import create_app
from datacatalog.settings import Settings
from datacatalog.store import Store
from tests.support.hostile import writes_nothing
from tests.support.jobs import spy

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

PIPELINE = {"id": "tests.coverage", "components": [{"image": "coverage:1"}]}
OTHER = {"id": "tests.other", "components": [{"image": "other:1"}]}


def metadata(samples: int) -> list[dict[str, Any]]:
    """Design → experiment E → samples s00.. → two measurements each."""
    docs: list[dict[str, Any]] = [
        {"experiment_design_id": "design.cov"},
        {"experiment_id": "E", "experiment_design_id": "design.cov"},
        {"experiment_id": "E2", "experiment_design_id": "design.cov"},
    ]
    for i in range(samples):
        docs.append({"sample_id": f"s{i:02d}", "experiment_id": "E"})
        docs += [{"measurement_id": f"m{i:02d}.{k}", "sample_id": f"s{i:02d}"} for k in (1, 2)]
    return docs


@dataclass
class World:
    catalog: Catalog
    store: Store

    def job(self, pipeline: str, sample: str, data: dict[str, Any] | None = None) -> str:
        plan = self.catalog.jobs.plan(pipeline=pipeline, metadata={"sample_id": sample}, data=data)
        job, _ = self.catalog.jobs.create(plan, setup_archive_path=False)
        return job.uuid

    def fail(self, uuid: str) -> None:
        self.catalog.jobs.send(uuid, "run")
        self.catalog.jobs.send(uuid, "fail")

    def finish(self, uuid: str) -> None:
        self.catalog.jobs.send(uuid, "run")
        self.catalog.jobs.send(uuid, "finish")


def make_world(store: Store, tmp_path: Path, samples: int = 4) -> World:
    settings = Settings.load(env={}, data_dir=tmp_path / "data", secret="c" * 32)
    catalog = Catalog(store, settings=settings)
    catalog.pipelines.register(PIPELINE)
    catalog.pipelines.register(OTHER)
    catalog.metadata.load(metadata(samples))
    return World(catalog, store)


@pytest.fixture
def world(store: Store, tmp_path: Path) -> World:
    w = make_world(store, tmp_path)
    w.finish(w.job("tests.coverage", "s00"))
    w.fail(w.job("tests.coverage", "s01"))
    w.job("tests.coverage", "s02")
    w.finish(w.job("tests.coverage", "s00", {"k": 2}))
    w.job("tests.other", "s03")
    return w


def test_samples_of_an_experiment_by_pipeline_and_parameter_set(world: World) -> None:
    result = world.catalog.jobs.coverage(
        pipelines=["tests.coverage", "tests.other"],
        metadata={"experiment_id": "E"},
        level="sample",
    )
    assert [e.id for e in result.selection.entities] == ["s00", "s01", "s02", "s03"]
    assert [c.label for c in result.columns] == [
        'tests.coverage {"k":2}',
        "tests.coverage",
        "tests.other",
    ]
    assert result.counts == (
        {"FINISHED": 1, "missing": 3},
        {"CREATED": 1, "FAILED": 1, "FINISHED": 1, "missing": 1},
        {"CREATED": 1, "missing": 3},
    )
    grid = {r.entity.id: [c.state if c else None for c in r.cells] for r in result.rows}
    assert grid == {
        "s00": ["FINISHED", "FINISHED", None],
        "s01": [None, "FAILED", None],
        "s02": [None, "CREATED", None],
        "s03": [None, None, "CREATED"],
    }
    assert result.totals == {"FINISHED": 2, "CREATED": 2, "FAILED": 1, "missing": 7}
    cell = result.rows[1].cells[1]
    assert cell is not None and world.catalog.jobs.get(cell.job).state == "FAILED"


def test_one_parameter_set_is_one_column_even_before_any_job(world: World) -> None:
    result = world.catalog.jobs.coverage(
        pipelines="tests.coverage",
        metadata={"experiment_id": "E"},
        level="sample",
        parameters={"k": 3},
    )
    assert [c.label for c in result.columns] == ['tests.coverage {"k":3}']
    assert result.counts == ({"missing": 4},)


def test_measurements_have_no_jobs_here(world: World) -> None:
    result = world.catalog.jobs.coverage(
        pipelines="tests.coverage", metadata={"experiment_id": "E"}, level="measurement"
    )
    assert result.entity_count == 8 and result.columns == ()
    assert all(r.cells == () for r in result.rows)


def test_a_page_of_rows(world: World) -> None:
    result = world.catalog.jobs.coverage(
        pipelines="tests.coverage",
        metadata={"experiment_id": "E"},
        level="sample",
        offset=1,
        limit=2,
    )
    assert [r.entity.id for r in result.rows] == ["s01", "s02"]
    assert result.entity_count == 4
    assert sum(result.counts[1].values()) == 4  # the counts cover every row, not the page


def test_the_newest_job_of_a_cell_counts(store: Store, tmp_path: Path) -> None:
    w = make_world(store, tmp_path, samples=2)
    old = w.catalog.jobs.create(
        w.catalog.jobs.plan(pipeline="tests.coverage", metadata={"sample_id": ["s00", "s01"]}),
        setup_archive_path=False,
    )[0]
    w.fail(old.uuid)
    newer = w.job("tests.coverage", "s00")
    result = w.catalog.jobs.coverage(
        pipelines="tests.coverage", metadata={"experiment_id": "E"}, level="sample"
    )
    assert result.counts == ({"CREATED": 1, "FAILED": 1, "missing": 0},)
    cells = [r.cells[0] for r in result.rows]
    assert [c.job if c else None for c in cells] == [newer, old.uuid]


@pytest.mark.parametrize(
    ("arguments", "error", "named"),
    [
        ({"pipelines": "no.such", "metadata": {"experiment_id": "E"}}, NotFoundError, "no.such"),
        (
            {"pipelines": "tests.coverage", "metadata": {"experiment_id": "nope"}},
            NotFoundError,
            "nope",
        ),
        (
            {"pipelines": "tests.coverage", "metadata": {"experiment_id": "E"}, "level": "plate"},
            InvalidRequestError,
            "plate",
        ),
        (
            {
                "pipelines": "tests.coverage",
                "metadata": {"sample_id": "s00"},
                "level": "experiment",
            },
            InvalidRequestError,
            "above",
        ),
        (
            {"pipelines": "tests.coverage", "metadata": {"experiment_id": "E2"}, "level": "sample"},
            InvalidRequestError,
            "holds no sample",
        ),
    ],
)
def test_bad_input_is_one_clear_error_and_writes_nothing(
    world: World, arguments: dict[str, Any], error: type[Exception], named: str
) -> None:
    with writes_nothing(world.store), pytest.raises(error, match=named):
        world.catalog.jobs.coverage(**arguments)


def test_store_calls_do_not_grow_with_entities_or_jobs(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def calls_for(samples: int, root: Path) -> Counter[str]:
        w = make_world(store, root, samples=samples)
        for i in range(samples):
            w.job("tests.coverage", f"s{i:02d}", {"n": samples})
        with monkeypatch.context() as patch:
            counted = spy(w.store, patch)
            original = w.store.aggregate

            def aggregate(*args: Any, **kwargs: Any) -> Any:
                counted["aggregate"] += 1
                return original(*args, **kwargs)

            patch.setattr(w.store, "aggregate", aggregate)
            result = w.catalog.jobs.coverage(
                pipelines="tests.coverage", metadata={"experiment_id": "E"}, level="measurement"
            )
            assert result.entity_count == 2 * samples
        return counted

    small = calls_for(3, tmp_path / "a")
    large = calls_for(30, tmp_path / "b")
    assert small == large
    # the pipeline by id; the selection (resolve, the samples, the named measurements);
    # two aggregations (jobs of one entity, jobs of several); one read of the page's jobs
    assert large == Counter({"find": 5, "aggregate": 2})


# -- the command line and the dashboard ------------------------------------------------------


@pytest.fixture
def global_options(
    engine: str, tmp_path: Path, database_name: str, request: pytest.FixtureRequest
) -> Iterator[list[str]]:
    data_dir = tmp_path / "data"
    if engine == "memory":
        yield ["--data-dir", str(data_dir)]
        return
    uri = request.getfixturevalue("mongo_uri")
    yield ["--data-dir", str(data_dir), "--mongodb-uri", uri, "--database", database_name]
    from datacatalog.store import connect

    with connect(uri, database=database_name) as store:
        store.drop_database()


def test_the_command_line(global_options: list[str], tmp_path: Path) -> None:
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(cli, [*global_options, *args], catch_exceptions=False)

    settings = Settings.load(env={}, data_dir=tmp_path / "data", secret="c" * 32)
    if "--mongodb-uri" in global_options:
        at = global_options.index("--mongodb-uri")
        settings = Settings.load(
            env={},
            data_dir=tmp_path / "data",
            mongodb_uri=global_options[at + 1],
            mongodb_database=global_options[at + 3],
        )
    with Catalog.open(settings=settings) as catalog:
        w = World(catalog, catalog.store)
        catalog.pipelines.register(PIPELINE)
        catalog.metadata.load(metadata(3))
        w.fail(w.job("tests.coverage", "s01"))

    args = ("coverage", "--pipeline", "tests.coverage", "--experiment-id", "E", "--level", "sample")
    shown = run(*args)
    assert shown.exit_code == 0, shown.output
    assert "s01" in shown.stdout and "FAILED" in shown.stdout and "missing" in shown.stdout
    body = json.loads(run("--json", *args).stdout)
    assert body["entities"] == 3 and body["level"] == "sample"
    assert body["columns"][0]["counts"] == {"FAILED": 1, "missing": 2}
    assert [r["cells"][0] and r["cells"][0]["state"] for r in body["rows"]] == [
        None,
        "FAILED",
        None,
    ]
    bad = run("--json", "coverage", "--pipeline", "tests.coverage", "--experiment-id", "nope")
    assert bad.exit_code == 3 and "nope" in bad.stderr
    assert json.loads(bad.stdout)["error"]["code"] == "not_found"


def test_the_dashboard_page(world: World) -> None:
    with TestClient(create_app(world.catalog)) as client:
        empty = client.get("/ui/coverage")
        assert empty.status_code == 200 and "<form" in empty.text
        page = client.get(
            "/ui/coverage",
            params={
                "pipeline": "tests.coverage",
                "under": "experiment",
                "ids": "E",
                "level": "sample",
            },
        )
        assert page.status_code == 200, page.text
        result = world.catalog.jobs.coverage(
            pipelines="tests.coverage", metadata={"experiment_id": "E"}, level="sample"
        )
        for row in result.rows:
            for cell in row.cells:
                if cell is not None:
                    assert f'/ui/jobs/{cell.job}" data-job="{cell.job}"' in page.text
        assert page.text.count('<tr data-entity="') == 4
        assert 'data-state="missing">1<' in page.text
        bad = client.get(
            "/ui/coverage",
            params={"pipeline": "tests.coverage", "under": "experiment", "ids": "nope"},
        )
        assert bad.status_code == 404 and "nope" in bad.text


@pytest.mark.parametrize(
    "params",
    [
        {"pipeline": "<script>alert(1)</script>", "ids": "E"},
        {"pipeline": "tests.coverage", "under": "experiment", "ids": "<img src=x onerror=1>"},
        {"pipeline": "tests.coverage", "under": "$where", "ids": "E"},
        {"pipeline": "tests.coverage", "ids": "E", "level": "sample", "data": "{not json"},
        {"pipeline": "tests.coverage", "ids": "E", "level": "sample", "data": '{"$gt": 1}'},
        {"pipeline": "tests.coverage", "ids": "E", "offset": "-5"},
        {"pipeline": "tests.coverage", "ids": "x " * 1001},
    ],
)
def test_the_dashboard_page_refuses_hostile_input_clearly(
    world: World, params: dict[str, str]
) -> None:
    with writes_nothing(world.store), TestClient(create_app(world.catalog)) as client:
        page = client.get("/ui/coverage", params=params)
    assert page.status_code in (200, 400, 404), page.text
    assert "<script>alert" not in page.text and "<img src=x" not in page.text
    if page.status_code != 200:
        assert 'class="problem"' in page.text


def test_a_newer_job_of_several_entities_replaces_an_entitys_own(
    store: Store, tmp_path: Path
) -> None:
    w = make_world(store, tmp_path, samples=3)
    own = w.job("tests.coverage", "s00")
    w.finish(own)
    shared = w.catalog.jobs.create(
        w.catalog.jobs.plan(pipeline="tests.coverage", metadata={"sample_id": ["s00", "s01"]}),
        setup_archive_path=False,
    )[0]
    result = w.catalog.jobs.coverage(
        pipelines="tests.coverage", metadata={"experiment_id": "E"}, level="sample"
    )
    assert result.counts == ({"CREATED": 2, "missing": 1},)
    cells = [r.cells[0].job if r.cells[0] else None for r in result.rows]
    assert cells == [shared.uuid, shared.uuid, None]


def test_without_pipelines_every_pipeline_with_a_job_there_is_a_column(world: World) -> None:
    result = world.catalog.jobs.coverage(metadata={"experiment_id": "E"}, level="sample")
    assert [c.label for c in result.columns] == [
        'tests.coverage {"k":2}',
        "tests.coverage",
        "tests.other",
    ]
    measured = world.catalog.jobs.coverage(metadata={"experiment_id": "E"}, level="measurement")
    assert measured.columns == () and measured.entity_count == 8


def test_an_entity_page_links_to_the_coverage_of_its_children(world: World) -> None:
    experiment = world.catalog.metadata.get("experiment", "E")
    with TestClient(create_app(world.catalog)) as client:
        page = client.get(f"/ui/metadata/{experiment.uuid}")
        assert page.status_code == 200
        link = re.search(r'href="([^"]*/coverage\?[^"]*)" data-coverage', page.text)
        assert link is not None
        target = client.get(html.unescape(link.group(1)))
    assert target.status_code == 200
    assert target.text.count('<tr data-entity="') == 4

"""``catalog.jobs.populate``: planning, skipping what is up to date, running the rest.

Library tests on both engines (the work is a Python callable or a small shell script);
the command line and several populates at once, as real processes, are in
``tests/cli/test_cli_populate.py``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from bench.command_counter import CommandCounter
from datacatalog.errors import InvalidRequestError, NotFoundError, UnavailableError
from datacatalog.populate import PopulateRun, Task
from datacatalog.populate.executors import parse_executor
from datacatalog.selection import select
from datacatalog.store import Store, connect
from tests.support.hostile import writes_nothing
from tests.support.populate_catalog import World, make_world
from tests.support.populate_work import flagged, per_entity, write_output, write_script

WAIT = 30.0  # generous upper bound for a state to appear; passing runs take far less


class Calls:
    """A callable that records the entities it ran for (thread backend: same process)."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.entities: list[str] = []
        self.failing = failing
        self._lock = threading.Lock()

    def __call__(self, task: Task) -> bool:
        with self._lock:
            self.entities.append(task.entity_id)
        if task.entity_id in self.failing:
            raise RuntimeError(f"failing on purpose for {task.entity_id}")
        (Path(task.archive_dir) / "out.txt").write_text(task.entity_id)
        return True


def test_one_job_per_entity_runs_once_then_is_up_to_date(world: World) -> None:
    calls = Calls()
    report = world.populate(execute=calls, parameters={"k": 1})
    assert report.counts == {"ran": 6} and not report.failed
    assert sorted(calls.entities) == [f"s{i:04d}" for i in range(6)]
    assert world.states() == Counter({"FINISHED": 6})
    job = world.catalog.jobs.get(report.outcomes[0].job)
    assert job.data == {"k": 1} and job.child_of == [report.outcomes[0].entity.uuid]
    (record,) = world.catalog.indexing.files(job.uuid)
    assert record.name.endswith("/out.txt") and record.sha256

    again = world.populate(execute=calls, parameters={"k": 1})
    assert again.counts == {"up_to_date": 6} and not again.failed
    assert len(calls.entities) == 6  # nothing ran the second time
    assert all("verified" in (o.message or "") for o in again.outcomes)


def test_a_dry_run_writes_nothing_and_says_what_would_happen(world: World) -> None:
    with writes_nothing(world.store):
        report = world.populate(dry_run=True)
    assert report.counts == {"would_run": 6} and report.dry_run
    world.populate(execute=Calls(), metadata={"sample_id": ["s0000", "s0001"]})
    with writes_nothing(world.store):
        report = world.populate(dry_run=True)
    assert report.counts == {"up_to_date": 2, "would_run": 4}


def test_failing_jobs_fail_alone_and_run_again_next_time(world: World) -> None:
    failing = frozenset({"s0001", "s0003", "s0004"})
    report = world.populate(execute=Calls(failing))
    assert report.counts == {"ran": 3, "failed": 3} and report.failed
    failed = {o.entity.id for o in report.outcomes if o.outcome == "failed"}
    assert failed == failing
    assert world.states() == Counter({"FINISHED": 3, "FAILED": 3})

    fixed = Calls()
    again = world.populate(execute=fixed)
    assert again.counts == {"ran": 3, "up_to_date": 3} and not again.failed
    assert sorted(fixed.entities) == sorted(failing)
    assert world.states() == Counter({"FINISHED": 6})


def test_max_failures_stops_starting_jobs(world: World) -> None:
    calls = Calls(frozenset(f"s{i:04d}" for i in range(6)))
    report = world.populate(execute=calls, workers=1, max_failures=2)
    assert report.counts == {"failed": 2, "not_started": 4}
    assert report.stopped == "max_failures" and report.failed
    assert len(calls.entities) == 2


def test_a_job_held_elsewhere_is_not_run(world: World) -> None:
    from datacatalog.populate.planning import plan

    selection = select(world.store, sample_id="s0000")
    planned = plan(world.catalog.jobs, pipeline="tests.populate", selection=selection)
    world.catalog.leases.acquire(planned.jobs[0].uuid, holder="elsewhere-1", kind="driver")
    calls = Calls()
    report = world.populate(execute=calls, metadata={"sample_id": "s0000"})
    assert report.counts == {"held": 1} and not report.failed
    assert calls.entities == []
    assert "elsewhere-1" in (report.outcomes[0].message or "")


def test_a_job_failed_elsewhere_since_planning_is_not_run_again(world: World) -> None:
    calls = Calls()

    def meanwhile(plan: Any) -> None:  # another populate ran and failed the first job
        first = plan.jobs[0].uuid
        world.catalog.jobs.send(first, "run")
        world.catalog.jobs.send(first, "fail", data={"reason": "elsewhere"})

    report = world.populate(execute=calls, on_plan=meanwhile)
    assert report.counts == {"ran": 5, "failed": 1}
    (failed,) = [o for o in report.outcomes if o.outcome == "failed"]
    assert failed.reason == "elsewhere" and failed.entity.id not in calls.entities


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_stop_cancels_running_jobs_and_releases_their_leases(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, executor: str
) -> None:
    script = write_script(tmp_path)
    monkeypatch.setenv("COUNT_FILE", str(tmp_path / "count"))
    monkeypatch.setenv("HANG_ID", "s0001")
    runs: list[PopulateRun] = []
    box: dict[str, Any] = {}

    def populate() -> None:
        box["report"] = world.populate(
            command=[str(script)], workers=1, on_start=runs.append, index=False, executor=executor
        )

    worker = threading.Thread(target=populate)
    worker.start()
    deadline = time.monotonic() + WAIT
    while world.states().get("RUNNING", 0) == 0 or "s0001" not in _ran(tmp_path):
        assert time.monotonic() < deadline, "the hanging job never started"
        time.sleep(0.05)
    runs[0].stop("SIGTERM")
    worker.join(WAIT)
    report = box["report"]
    assert report.counts == {"ran": 1, "cancelled": 1, "not_started": 4}
    assert report.stopped == "SIGTERM" and report.failed
    docs = world.store.find("job", {})
    assert all(d.get("lease") is None for d in docs)
    (cancelled,) = [d for d in docs if d["state"] == "FAILED"]
    assert cancelled["history"][-1]["data"]["reason"] == "cancelled"

    monkeypatch.setenv("HANG_ID", "none")
    again = world.populate(command=[str(script)], workers=1, index=False)
    assert again.counts == {"ran": 5, "up_to_date": 1}
    assert world.states() == Counter({"FINISHED": 6})


def _ran(tmp_path: Path) -> str:
    count = tmp_path / "count"
    return count.read_text() if count.exists() else ""


@pytest.mark.parametrize("executor", ["process", "dask"])
def test_other_executors_run_an_importable_callable(world: World, executor: str) -> None:
    report = world.populate(
        execute=write_output, executor=executor, metadata={"sample_id": ["s0000", "s0001"]}
    )
    assert report.counts == {"ran": 2}, report.outcomes
    assert executor in report.executor
    for outcome in report.outcomes:
        (record,) = world.catalog.indexing.files(outcome.job)
        assert record.name.endswith("/out.txt")


@pytest.mark.parametrize(
    ("options", "error", "named"),
    [
        ({"pipeline": "no.such"}, NotFoundError, "no.such"),
        ({"metadata": {"experiment_id": "EMPTY"}}, InvalidRequestError, "holds no sample"),
        ({"level": "plate"}, InvalidRequestError, "plate"),
        (
            {"metadata": {"sample_id": "s0000"}, "level": "experiment"},
            InvalidRequestError,
            "above",
        ),
        ({"metadata": {"experiment_id": "nope"}}, NotFoundError, "nope"),
        ({"parameters": {"$where": 1}}, InvalidRequestError, r"\$where"),
        ({"execute": None}, InvalidRequestError, "a command, a callable"),
        ({"command": ["no-such-command-here"]}, InvalidRequestError, "not found"),
        ({"executor": "cluster"}, InvalidRequestError, "unknown executor"),
        ({"if_stale": "ignore"}, InvalidRequestError, "if_stale"),
    ],
)
def test_bad_input_is_one_clear_error_and_writes_nothing(
    world: World, options: dict[str, Any], error: type[Exception], named: str
) -> None:
    if "command" not in options:
        options.setdefault("execute", Calls())
    with writes_nothing(world.store), pytest.raises(error, match=named):
        world.populate(**options)


def test_an_unreachable_dask_scheduler_is_refused() -> None:
    with pytest.raises(UnavailableError, match=r"tcp://127\.0\.0\.1:1"):
        parse_executor("dask=tcp://127.0.0.1:1", timeout=1.0)


# -- round trips -----------------------------------------------------------------------------


@pytest.fixture
def counted(mongo_uri: str, database_name: str) -> Iterator[tuple[Store, CommandCounter]]:
    counter = CommandCounter(active=False)
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri, event_listeners=[counter])
    store = connect(client[database_name])
    try:
        yield store, counter
    finally:
        store.drop_database()
        client.close()


def test_planning_a_thousand_entities_costs_a_few_round_trips(
    counted: tuple[Store, CommandCounter], tmp_path: Path
) -> None:
    store, counter = counted
    world = make_world(store, tmp_path, samples=1000)
    from datacatalog.populate.planning import plan

    selection = select(store, level="sample", experiment_id="E")
    store.count("job", {})  # the collection's indexes are made on first use: not counted
    counter.active = True
    planned = plan(world.catalog.jobs, pipeline="tests.populate", selection=selection)
    counter.active = False
    assert len(planned.jobs) == 1000 and all(j.created for j in planned.jobs)
    # the pipeline by id, the first entity's check, then per batch of 1,000 one read of
    # the jobs that exist and one insert of the missing ones
    assert counter.counts == Counter({"find": 3, "insert": 1}), counter.counts
    assert store.count("job", {}) == 1000

    counter.counts.clear()
    counter.active = True
    again = plan(world.catalog.jobs, pipeline="tests.populate", selection=selection)
    counter.active = False
    assert not any(j.created for j in again.jobs)
    # the entity is known now; the read of 1,000 jobs comes in two parts (getMore)
    assert counter.counts == Counter({"find": 2, "getMore": 1}), counter.counts

    counter.counts.clear()
    counter.active = True
    small = plan(world.catalog.jobs, pipeline="tests.populate", selection=selection, batch_size=250)
    counter.active = False
    assert len(small.jobs) == 1000
    assert counter.counts["find"] == 1 + 4 and counter.counts["getMore"] <= 4, counter.counts
    assert set(counter.counts) <= {"find", "getMore"}


def test_an_existing_dask_scheduler_runs_the_work_and_is_never_shut_down(
    world: World,
) -> None:
    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        report = world.populate(
            execute=write_output, executor=f"dask={address}", workers=None,
            metadata={"sample_id": ["s0000", "s0001"]},
        )  # fmt: skip
        assert report.counts == {"ran": 2} and "2 at once" in report.executor
        with Client(address, set_as_default=False) as client:  # still up
            assert len(client.scheduler_info()["workers"]) == 1

    empty = LocalCluster(n_workers=0, processes=False, dashboard_address=None)
    with empty, writes_nothing(world.store), pytest.raises(InvalidRequestError, match="no workers"):
        world.populate(
            execute=write_output, executor=f"dask={empty.scheduler_address}", workers=None
        )


def test_a_workflow_runs_once_per_job_and_is_given_its_entity(world: World) -> None:
    report = world.populate(
        workflow=per_entity, workflow_inputs={"note": "x"}, executor="thread",
        metadata={"sample_id": ["s0000", "s0001", "s0002"]},
    )  # fmt: skip
    assert report.counts == {"ran": 3}, report.outcomes
    for outcome in report.outcomes:
        job = world.catalog.jobs.get(outcome.job)
        assert job.state == "FINISHED"
        archive = world.catalog.storage.get(job.archive_system).resolve(job.archive_path)
        assert (Path(archive) / "entity.txt").read_text() == outcome.entity.id
    again = world.populate(workflow=per_entity, metadata={"sample_id": ["s0000", "s0001", "s0002"]})
    assert again.counts == {"up_to_date": 3}


def test_a_workflow_runs_failed_jobs_again_next_time(world: World) -> None:
    flags = world.root / "flags"
    flags.mkdir()
    (flags / "s0001").touch()
    chosen = {"sample_id": ["s0000", "s0001", "s0002"]}
    options: dict[str, Any] = {
        "workflow": flagged, "workflow_inputs": {"flags": str(flags)}, "metadata": chosen,
        "executor": "thread",
    }  # fmt: skip
    report = world.populate(**options)
    assert report.counts == {"ran": 2, "failed": 1} and report.failed, report.outcomes
    (failed,) = [o for o in report.outcomes if o.outcome == "failed"]
    assert failed.entity.id == "s0001" and world.catalog.jobs.get(failed.job).state == "FAILED"

    (flags / "s0001").unlink()  # the cause is fixed: the next populate runs it again
    again = world.populate(**options)
    assert again.counts == {"ran": 1, "up_to_date": 2} and not again.failed, again.outcomes
    (ran,) = [o for o in again.outcomes if o.outcome == "ran"]
    assert ran.job == failed.job
    job = world.catalog.jobs.get(failed.job)
    assert job.state == "FINISHED"
    archive = Path(world.catalog.storage.get(job.archive_system).resolve(job.archive_path))
    assert (archive / "entity.txt").read_text() == "s0001"
    events = [e.name for e in world.catalog.jobs.history(job.uuid)]
    assert events.count("fail") == 1 and "retry" in events  # the failure stays in the history


def test_a_workflow_job_finished_elsewhere_since_planning_is_up_to_date(world: World) -> None:
    def meanwhile(plan: Any) -> None:  # another populate ran the first job to the end
        first = plan.jobs[0].uuid
        world.catalog.jobs.send(first, "run")
        world.catalog.jobs.send(first, "finish")

    chosen = {"sample_id": ["s0000", "s0001", "s0002"]}
    report = world.populate(workflow=per_entity, metadata=chosen, on_plan=meanwhile)
    assert report.counts == {"ran": 2, "up_to_date": 1} and not report.failed, report.outcomes
    (kept,) = [o for o in report.outcomes if o.outcome == "up_to_date"]
    assert world.catalog.jobs.get(kept.job).state == "FINISHED"
    assert [e.name for e in world.catalog.jobs.history(kept.job)][-1] == "reuse"


def test_a_workflow_is_checked_before_anything_is_written(world: World) -> None:
    with writes_nothing(world.store), pytest.raises(InvalidRequestError, match="unknown input"):
        world.populate(workflow=per_entity, workflow_inputs={"colour": "red"})
    with writes_nothing(world.store), pytest.raises(InvalidRequestError, match="one of"):
        world.populate(workflow=per_entity, execute=Calls())


def test_an_unexpected_error_starts_nothing_more_and_is_raised(world: World) -> None:
    def broken(job: Any) -> Any:
        raise ZeroDivisionError("a bug")

    started: list[PopulateRun] = []

    def bug_in_first(run: PopulateRun) -> None:
        started.append(run)
        run._run_one = broken  # type: ignore[method-assign]

    with pytest.raises(ZeroDivisionError):
        world.populate(execute=Calls(), workers=1, on_start=bug_in_first)
    assert started[0].stopping
    assert world.states() == Counter({"CREATED": 6})  # planned, nothing ran


def test_the_populate_document_runs_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import re

    for name in list(os.environ):
        if name.startswith("DATACATALOG_") and name != "DATACATALOG_LOCAL_ENGINE":
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATACATALOG_DATA_DIR", str(tmp_path / "data"))
    doc = Path(__file__).resolve().parents[2] / "docs" / "populate.md"
    # the first Python block (the one after it needs a SLURM cluster)
    block = re.findall(
        r"^```python\n(.*?)^```$", doc.read_text(encoding="utf-8"), flags=re.DOTALL | re.M
    )[0]
    for expected in ("{'ran': 2}", "{'up_to_date': 2}"):
        exec(compile(block, "populate.md", "exec"), {"__name__": "populate_doc"})
        printed = capsys.readouterr().out
        assert expected in printed and "{'FINISHED': 2, 'missing': 0}" in printed

"""Tests for the ``datacatalog`` command line, through click's CliRunner, on both engines.

On the in-memory engine the commands use the embedded catalog in a temporary data dir
(``--data-dir``), which is what users get with zero configuration; on the real server
they pass ``--mongodb-uri`` and a unique ``--database``. Each test checks human output,
``--json`` output and the exit code of every error category.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from datacatalog import errors
from datacatalog.cli import cli
from datacatalog.identifiers import typed_uuid
from tests.support.cli import CLI, EXAMPLES, ROOT, SAMPLE, create_job

pytestmark = pytest.mark.usefixtures("no_configuration")

SAMPLE_UUID = typed_uuid(SAMPLE, "sample")
UNKNOWN_JOB = typed_uuid("no such job", "pipelinejob")


def history_names(dc: CLI, uuid: str) -> list[str]:
    """Event names of a job's history."""
    return [e["name"] for e in dc.json("jobs", "history", uuid)["history"]]


def archive_dir(dc: CLI, job: dict[str, Any]) -> Path:
    """The local directory of a job's archive path (the default storage system)."""
    return dc.data_dir / "archive" / job["archive_path"].lstrip("/")


# -- global behaviour ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--json", "--no-such-option", "jobs", "list"], "No such option"),
        (["--json", "nope"], "No such command"),
        (["--json", "jobs", "list", "--state", "SLEEPING"], "'SLEEPING' is not one of"),
        (["--json", "jobs", "create", "--sample-id", "s"], "Missing option '--pipeline'"),
        (["jobs", "show", "--json"], "Missing argument 'UUID'"),
        (["--json", "pipelines", "register", "missing.json"], "does not exist"),
    ],
)
def test_usage_errors_are_json_with_json(args: list[str], words: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    body = json.loads(result.stdout)["error"]
    assert body["code"] == "invalid_request" and words in body["message"]
    assert result.stderr == f"error: {body['message']}\n"
    assert not (tmp_path / "catalog.json").exists()


def test_json_may_follow_the_command(world: CLI) -> None:
    uuid = create_job(world)["job"]["uuid"]
    for args in (
        ["jobs", "list", "--json"],
        ["jobs", "show", uuid, "--json"],
        ["jobs", "event", "--json", uuid, "run"],
        ["admin", "token", "--json"],
        ["pipelines", "--json", "list"],
        ["demo", "--json"],
    ):
        result = world(*args)
        assert result.exit_code == 0, (args, result.output)
        assert isinstance(json.loads(result.stdout), dict), args
    bad = world("jobs", "event", uuid, "update", "--json", "--data", "[1]")
    assert bad.exit_code == 2
    assert json.loads(bad.stdout)["error"]["code"] == "invalid_request"


def test_an_unexpected_failure_is_one_line_and_exit_1(
    dc: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datacatalog.jobs import JobService

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("something broke\non two lines")

    monkeypatch.setattr(JobService, "find", broken)
    body = dc.fails(1, "jobs", "list")
    assert body["message"] == "unexpected RuntimeError: something broke on two lines"
    assert body["code"] == "error"


def test_a_file_system_error_names_the_reason_and_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    data_dir = blocker / "data"
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "jobs", "list"])
    assert result.exit_code == 7  # storage failure
    catalog = data_dir / "catalog.json"
    assert result.stderr == f"error: cannot open the embedded catalog {catalog}: Not a directory\n"


def test_version_and_help() -> None:
    from datacatalog import __version__

    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.stdout
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for group in ("pipelines", "metadata", "jobs", "admin", "serve", "demo"):
        assert group in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["nope"],
        ["jobs", "nope"],
        ["--no-such-option", "jobs", "list"],
        ["jobs", "list", "--no-such-option"],
        ["jobs", "list", "--state", "SLEEPING"],
        ["jobs", "show"],
    ],
)
def test_usage_errors_exit_2(args: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "catalog.json").exists()


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["pipelines", "register", "examples/nope.json"],
            "error: datacatalog pipelines register: Invalid value for 'FILE': "
            "File 'examples/nope.json' does not exist.",
        ),
        (
            ["jobs", "list", "--state", "SLEEPING"],
            "error: datacatalog jobs list: Invalid value for '--state': 'SLEEPING' is not one of",
        ),
        (
            ["--data-dir", "README.md", "jobs", "list"],
            "error: datacatalog: Invalid value for '--data-dir': Directory 'README.md' is a file.",
        ),
    ],
)
def test_a_refused_value_is_one_error_line(
    args: list[str], line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), *args], prog_name="datacatalog")
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    (only,) = result.stderr.splitlines()
    assert only.startswith(line), only
    assert not (tmp_path / "catalog.json").exists()


def test_every_error_category_maps_to_its_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datacatalog.pipelines import PipelineRegistry

    categories: Sequence[type[errors.DataCatalogError]] = (
        errors.DataCatalogError,
        errors.InvalidRequestError,
        errors.PayloadTooLargeError,
        errors.NotFoundError,
        errors.InvalidTransitionError,
        errors.ConflictError,
        errors.LeaseLostError,
        errors.ActiveExecutionsError,
        errors.StaleOutputsError,
        errors.UnauthorizedError,
        errors.ForbiddenError,
        errors.StorageFailureError,
        errors.UnavailableError,
    )
    assert {c.code for c in categories} == set(errors.ERROR_TABLE)
    dc = CLI(["--data-dir", str(tmp_path)], tmp_path)
    for category in categories:

        def fail(*args: object, _category: Any = category, **kwargs: object) -> None:
            raise _category(f"a {_category.code} failure\nsecond line", thing="x")

        monkeypatch.setattr(PipelineRegistry, "find", fail)
        expected = errors.ERROR_TABLE[category.code].exit_code
        body = dc.fails(expected, "pipelines", "list")
        assert body == {
            "code": category.code,
            "message": f"a {category.code} failure\nsecond line",
            "details": {"thing": "x"},
        }
        human = dc("pipelines", "list")
        assert human.exit_code == expected
        assert human.stdout == ""
        assert human.stderr == f"error: a {category.code} failure second line\n"


def test_documented_exit_codes_match_the_table() -> None:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for mapping in errors.ERROR_TABLE.values():
        assert f"| `{mapping.code}` | {mapping.exit_code} |" in text, mapping


# -- pipelines and metadata ----------------------------------------------------------------


def test_pipelines_register_list_show(dc: CLI) -> None:
    first = dc.json("pipelines", "register", str(EXAMPLES / "pipeline.json"))
    assert first["created"] is True
    uuid = first["pipeline"]["uuid"]
    assert uuid.startswith("106")
    again = dc.json("pipelines", "register", str(EXAMPLES / "pipeline.json"))
    assert again == {**first, "created": False}

    listed = dc.json("pipelines", "list")["pipelines"]
    assert [p["uuid"] for p in listed] == [uuid]
    assert dc.json("pipelines", "show", "demo-stats")["pipeline"]["uuid"] == uuid
    assert dc.json("pipelines", "show", uuid)["pipeline"]["id"] == "demo-stats"

    human = dc("pipelines", "list")
    assert human.exit_code == 0
    assert uuid in human.stdout and "demo-stats" in human.stdout
    shown = dc("pipelines", "show", "demo-stats")
    assert "growth-stats" in shown.stdout and uuid in shown.stdout
    again_human = dc("pipelines", "register", str(EXAMPLES / "pipeline.json"))
    assert "already registered" in again_human.stdout


def test_pipeline_errors(dc: CLI, tmp_path: Path) -> None:
    body = dc.fails(3, "pipelines", "show", "no-such-pipeline")
    assert body["code"] == "not_found" and "no-such-pipeline" in body["message"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "x", ', encoding="utf-8")
    assert "not valid JSON" in dc.fails(2, "pipelines", "register", str(bad))["message"]
    no_components = tmp_path / "p.yaml"
    no_components.write_text("id: x\n", encoding="utf-8")
    assert dc.fails(2, "pipelines", "register", str(no_components))["code"] == "invalid_request"
    missing = dc("pipelines", "register", str(tmp_path / "missing.json"))
    assert missing.exit_code == 2
    assert dc.json("pipelines", "list") == {"pipelines": []}


def test_metadata_load(dc: CLI, tmp_path: Path) -> None:
    out = dc.json("metadata", "load", str(EXAMPLES / "metadata.yaml"))
    assert (out["created"], out["updated"]) == (8, 0)
    kinds = [e["kind"] for e in out["entities"]]
    assert kinds == ["experiment_design", "experiment", "sample", "sample"] + ["measurement"] * 4
    sample = next(e for e in out["entities"] if e.get("sample_id") == SAMPLE)
    assert sample["uuid"] == SAMPLE_UUID and sample["strain"] == "WT"
    again = dc.json("metadata", "load", str(EXAMPLES / "metadata.yaml"))
    assert again["created"] == 0
    human = dc("metadata", "load", str(EXAMPLES / "metadata.yaml"))
    assert "0 created" in human.stdout and SAMPLE in human.stdout

    orphan = tmp_path / "orphan.json"
    orphan.write_text(json.dumps([{"sample_id": "s.x", "experiment_id": "nope"}]), "utf-8")
    assert dc.fails(3, "metadata", "load", str(orphan))["code"] == "not_found"
    not_a_list = tmp_path / "one.yaml"
    not_a_list.write_text("sample_id: s.y\n", encoding="utf-8")
    assert dc.fails(2, "metadata", "load", str(not_a_list))["message"] == (
        f"{not_a_list} must hold a list of metadata documents; "
        "it holds one document; make it a list ('- sample_id: ...')"
    )
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    assert dc.fails(2, "metadata", "load", str(empty))["message"] == (
        f"{empty} must hold a list of metadata documents; it is empty"
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("- [unclosed\n", encoding="utf-8")
    assert "not valid YAML" in dc.fails(2, "metadata", "load", str(broken))["message"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            "a: [1, 2\n",
            "while parsing a flow sequence, expected ',' or ']', but got '<stream end>' "
            "(line 2, column 1)",
        ),
        (
            "- a\n---\n- b\n",
            "expected a single document in the stream, but found another document "
            "(line 2, column 1)",
        ),
        ("a: b: c\n", "mapping values are not allowed here (line 1, column 5)"),
    ],
    ids=["unclosed", "two-documents", "nested-colon"],
)
def test_a_yaml_error_says_what_and_where_in_one_line(
    tmp_path: Path, content: str, expected: str
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(content, encoding="utf-8")
    result = CliRunner().invoke(
        cli, ["--data-dir", str(tmp_path / "data"), "metadata", "load", str(broken)]
    )
    assert result.exit_code == 2
    assert result.stderr == f"error: {broken} is not valid YAML: {expected}\n"
    assert "<unicode string>" not in result.stderr


# -- jobs ----------------------------------------------------------------------------------


def test_jobs_create_then_find_the_same_job(world: CLI) -> None:
    first = create_job(world, "--data", '{"bins": 8}')
    job = first["job"]
    assert first["created"] is True
    assert job["uuid"].startswith("107") and job["state"] == "CREATED"
    assert job["child_of"] == [SAMPLE_UUID] and job["data"] == {"bins": 8}
    assert len(first["token"]) == 64
    assert first["webhook_url"].endswith(f"/jobs/{job['uuid']}/events?token={first['token']}")
    assert archive_dir(world, job).is_dir()
    # The directory to write outputs in, on this machine: not the catalog path.
    assert first["archive_dir"] == str(archive_dir(world, job))

    again = create_job(world, "--data", '{"bins": 8}')
    assert again["created"] is False and again["job"]["uuid"] == job["uuid"]
    human = world("jobs", "create", "--pipeline", "demo-stats", "--sample-id", SAMPLE)
    assert human.exit_code == 0 and "created job" in human.stdout
    human = world("jobs", "create", "--pipeline", "demo-stats", "--sample-id", SAMPLE)
    assert "found existing" in human.stdout and "webhook" in human.stdout
    plain = create_job(world)
    assert f"outputs  {archive_dir(world, plain['job'])}\n" in human.stdout

    # Who made it and how: user@host, and the command as typed (without global options).
    assert job["agent"] == f"{getpass.getuser()}@{socket.gethostname()}"
    assert job["task"] == (
        f"datacatalog jobs create --pipeline demo-stats --sample-id {SAMPLE} "
        """--data '{"bins": 8}'"""
    )
    named = create_job(world, "--data", '{"bins": 9}', "--agent", "lab-robot", "--task", "t1")
    assert (named["job"]["agent"], named["job"]["task"]) == ("lab-robot", "t1")

    instanced = create_job(world, "--data", '{"bins": 3}', "--instanced")["job"]
    assert instanced["instanced"] is True
    assert instanced["archive_path"].count("/") == job["archive_path"].count("/") + 1


def test_jobs_create_refuses_bad_requests(world: CLI) -> None:
    body = world.fails(2, "jobs", "create", "--pipeline", "demo-stats", "--data", "{bins: 8}")
    assert body["message"].startswith("--data is not valid JSON")
    body = world.fails(
        2, "jobs", "create", "--pipeline", "demo-stats", "--sample-id", SAMPLE, "--data", "[1]"
    )
    assert "--data must be a JSON object" in body["message"]
    human = world("jobs", "create", "--pipeline", "demo-stats", "--sample-id", SAMPLE,
                  "--data", '{"a": ')  # fmt: skip
    assert human.exit_code == 2
    assert human.stderr.startswith("error: --data is not valid JSON")
    assert world.json("jobs", "list") == {"jobs": []}  # nothing written

    both = world.fails(
        2, "jobs", "create", "--pipeline", "demo-stats",
        "--sample-id", SAMPLE, "--experiment-id", "experiment.demo.1",
    )  # fmt: skip
    assert both["code"] == "invalid_request"
    none = world.fails(2, "jobs", "create", "--pipeline", "demo-stats")
    assert "required" in none["message"]
    missing = world.fails(3, "jobs", "create", "--pipeline", "demo-stats", "--sample-id", "nope")
    assert "nope" in missing["message"]
    assert world.fails(3, "jobs", "create", "--pipeline", "nope", "--sample-id", SAMPLE)
    assert world("jobs", "create", "--sample-id", SAMPLE).exit_code == 2  # no --pipeline
    assert world.json("jobs", "list") == {"jobs": []}


def test_jobs_list_show_history(world: CLI) -> None:
    job = create_job(world)["job"]
    uuid = job["uuid"]
    other = create_job(world, "--data", '{"bins": 4}')["job"]["uuid"]
    world.json("jobs", "event", other, "run")

    listed = world.json("jobs", "list")["jobs"]
    assert {j["uuid"] for j in listed} == {uuid, other}
    assert [j["uuid"] for j in world.json("jobs", "list", "--state", "created")["jobs"]] == [uuid]
    assert [j["uuid"] for j in world.json("jobs", "list", "--state", "RUNNING")["jobs"]] == [other]
    assert len(world.json("jobs", "list", "--limit", "1")["jobs"]) == 1
    assert len(world.json("jobs", "list", "--pipeline", "demo-stats")["jobs"]) == 2
    assert world.fails(3, "jobs", "list", "--pipeline", "nope")["code"] == "not_found"
    human = world("jobs", "list")
    assert uuid in human.stdout and "demo-stats" in human.stdout

    shown = world.json("jobs", "show", uuid)
    assert shown["job"]["uuid"] == uuid
    assert shown["archive"]["path"] == job["archive_path"]
    assert shown["archive"]["system"] == "local"
    assert shown["archive"]["url"].endswith(job["archive_path"])
    assert shown["archive"]["directory"] == str(archive_dir(world, job))
    (sample,) = shown["linkages"]["child_of"]
    assert (sample["kind"], sample["id"]) == ("sample", SAMPLE)
    (pipeline,) = shown["linkages"]["generated_by"]
    assert pipeline["id"] == "demo-stats"
    assert "run" in shown["allowed_events"]
    human = world("jobs", "show", uuid)
    assert human.exit_code == 0
    for expected in (uuid, SAMPLE, "demo-stats", job["archive_path"], "linkages", "directory"):
        assert expected in human.stdout

    history = world.json("jobs", "history", uuid)
    assert [e["name"] for e in history["history"]] == ["create"]
    assert history["history"][0]["agent"] == "datacatalog-cli"
    assert "create -> CREATED" in world("jobs", "history", uuid).stdout

    assert world.fails(3, "jobs", "show", UNKNOWN_JOB)["details"] == {"job": UNKNOWN_JOB}
    assert world.fails(3, "jobs", "history", UNKNOWN_JOB)["code"] == "not_found"
    assert world.fails(2, "jobs", "show", "not-a-uuid")["code"] == "invalid_request"


def test_jobs_event(world: CLI) -> None:
    created = create_job(world)
    uuid, token = created["job"]["uuid"], created["token"]

    ran = world.json("jobs", "event", uuid, "run")
    assert ran["applied"] is True and ran["job"]["state"] == "RUNNING"
    update = world.json("jobs", "event", uuid, "update", "--data", '{"progress": 0.5}',
                        "--event-id", "k1")  # fmt: skip
    assert update["event"]["data"] == {"progress": 0.5}
    replay = world.json("jobs", "event", uuid, "update", "--data", '{"progress": 0.5}',
                        "--event-id", "k1")  # fmt: skip
    assert replay["applied"] is False
    assert "already recorded" in world("jobs", "event", uuid, "update", "--event-id", "k1").stdout
    assert history_names(world, uuid) == ["create", "run", "update"]

    # A token, when given, is checked; the right one is accepted.
    wrong = world.fails(6, "jobs", "event", uuid, "update", "--token", "0" * 64)
    assert wrong["code"] == "forbidden"
    world.json("jobs", "event", uuid, "update", "--token", token)
    assert history_names(world, uuid) == ["create", "run", "update", "update"]

    # Invalid transitions change nothing and name the state.
    world.json("jobs", "event", uuid, "finish")
    body = world.fails(4, "jobs", "event", uuid, "run")
    assert body["details"]["state"] == "FINISHED" and "run" in body["message"]
    assert world.fails(2, "jobs", "event", uuid, "explode")["code"] == "invalid_request"
    assert world.fails(2, "jobs", "event", uuid, "update", "--data", "nope")["details"] == {
        "option": "--data"
    }
    reset = world.fails(2, "jobs", "event", uuid, "reset")
    assert "datacatalog admin reset" in reset["message"]
    assert world.fails(3, "jobs", "event", UNKNOWN_JOB, "run")["code"] == "not_found"
    assert history_names(world, uuid) == ["create", "run", "update", "update", "finish"]
    human = world("jobs", "event", uuid, "finish")
    assert human.exit_code == 0 and "FINISHED" in human.stdout


def _finished_job_with_outputs(world: CLI) -> tuple[dict[str, Any], Path]:
    job = create_job(world)["job"]
    world.json("jobs", "event", job["uuid"], "run")
    folder = archive_dir(world, job)
    (folder / "out").mkdir(parents=True, exist_ok=True)
    (folder / "summary.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    (folder / "report.json").write_text('{"ok": true}\n', encoding="utf-8")
    (folder / "out" / "plot.txt").write_text("*\n", encoding="utf-8")
    world.json("jobs", "event", job["uuid"], "finish")
    return job, folder


def test_jobs_index_files_verify(world: CLI) -> None:
    job, folder = _finished_job_with_outputs(world)
    uuid = job["uuid"]
    assert world.fails(3, "jobs", "index", UNKNOWN_JOB)["code"] == "not_found"
    # No --level: the level demo-stats declares (2), not "1".
    report = world.json("jobs", "index", uuid, "--fixity")
    assert (report["seen"], report["written"], report["state"]) == (3, 3, "FINISHED")
    assert history_names(world, uuid)[-2:] == ["index", "indexed"]

    files = world.json("jobs", "files", uuid)["files"]
    by_name = {f["name"].rsplit("/", 1)[1]: f for f in files}
    assert set(by_name) == {"summary.csv", "report.json", "plot.txt"}
    digest = hashlib.sha256((folder / "summary.csv").read_bytes()).hexdigest()
    assert by_name["summary.csv"]["sha256"] == digest
    assert all(f["level"] == "2" and uuid in f["generated_by"] for f in files)
    human = world("jobs", "files", uuid)
    assert "out/plot.txt" in human.stdout and digest in human.stdout

    verified = world.json("jobs", "verify", uuid)
    assert verified["ok"] is True and verified["counts"]["unchanged"] == 3
    assert "ok" in world("jobs", "verify", uuid).stdout

    (folder / "summary.csv").write_text("a,b\n1,3\n", encoding="utf-8")
    (folder / "report.json").unlink()
    drift = world.json("jobs", "verify", uuid, code=1)
    assert drift["ok"] is False
    assert [drift["names"][u].rsplit("/", 1)[1] for u in drift["changed"]] == ["summary.csv"]
    assert [drift["names"][u].rsplit("/", 1)[1] for u in drift["missing"]] == ["report.json"]
    human = world("jobs", "verify", uuid)
    assert human.exit_code == 1
    assert "drift found" in human.stdout and "summary.csv" in human.stdout


def test_jobs_index_filter_and_no_transition(world: CLI) -> None:
    job, _ = _finished_job_with_outputs(world)
    uuid = job["uuid"]
    report = world.json("jobs", "index", uuid, "--filter", r"\.csv$", "--filter", "plot",
                        "--no-transition")  # fmt: skip
    assert (report["matched"], report["state"]) == (2, "INDEXING")
    human = world("jobs", "index", uuid, "--filter", "plot")
    assert human.exit_code == 0, human.output
    assert "records written  1" in human.stdout and "state            FINISHED" in human.stdout
    for record in world.json("jobs", "files", uuid)["files"]:
        assert record["uuid"] not in human.stdout  # counts, not the written records' UUIDs
    names = sorted(f["name"].rsplit("/", 1)[1] for f in world.json("jobs", "files", uuid)["files"])
    assert names == ["plot.txt", "summary.csv"]
    assert all(f["sha256"] is None for f in world.json("jobs", "files", uuid)["files"])
    assert world.fails(2, "jobs", "index", uuid, "--filter", "(unclosed")["code"] in (
        "invalid_request",
    )
    human = world("jobs", "index", uuid)
    assert human.exit_code == 0 and "FINISHED" in human.stdout
    assert world.json("jobs", "show", uuid)["job"]["state"] == "FINISHED"


def test_jobs_index_refuses_a_job_that_has_not_finished(world: CLI) -> None:
    uuid = create_job(world)["job"]["uuid"]
    body = world.fails(4, "jobs", "index", uuid)
    assert body["code"] == "invalid_transition"
    assert world.fails(3, "jobs", "files", UNKNOWN_JOB)["code"] == "not_found"
    assert world.json("jobs", "files", uuid)["files"] == []


# -- admin ---------------------------------------------------------------------------------


def test_admin_token(dc: CLI) -> None:
    out = dc.json("admin", "token")
    assert len(out["token"]) == 64 and out["lifetime_seconds"] == 3600
    human = dc("admin", "token")
    assert human.stdout.strip() == out["token"]


def test_admin_reset_ready_need_confirmation_and_a_valid_token(world: CLI) -> None:
    job, folder = _finished_job_with_outputs(world)
    uuid = job["uuid"]
    world.json("jobs", "index", uuid)

    declined = world("admin", "reset", uuid, input="n\n")
    assert declined.exit_code == 1
    assert "Reset job" in declined.stderr and "not confirmed" in declined.stderr
    no_answer = world("admin", "reset", uuid)
    assert no_answer.exit_code == 1
    assert world.fails(1, "admin", "reset", uuid)["code"] == "not_confirmed"
    assert world.json("jobs", "show", uuid)["job"]["state"] == "FINISHED"
    assert (folder / "summary.csv").exists()

    wrong = world.fails(6, "admin", "reset", uuid, "--yes", "--token", "f" * 64)
    assert wrong["code"] == "forbidden"
    assert world.fails(3, "admin", "reset", UNKNOWN_JOB, "--yes")["code"] == "not_found"

    token = world.json("admin", "token")["token"]
    reset = world.json("admin", "reset", uuid, "--yes", "--token", token)
    assert reset["job"]["state"] == "RESET"
    assert not (folder / "summary.csv").exists()
    assert world.json("jobs", "files", uuid)["files"] == []

    confirmed = world("admin", "ready", uuid, input="y\n")
    assert confirmed.exit_code == 0 and "made ready" in confirmed.stdout
    assert world.json("jobs", "show", uuid)["job"]["state"] == "CREATED"
    assert world.fails(4, "admin", "ready", uuid, "--yes")["code"] == "invalid_transition"


def test_an_unanswered_admin_question_is_one_error_line(world: CLI) -> None:
    uuid = create_job(world)["job"]["uuid"]
    # No answer (end of input): one error line, not click's "Aborted!".
    no_answer = world("admin", "delete", uuid)
    assert no_answer.exit_code == 1
    assert "Aborted" not in no_answer.output
    assert no_answer.stderr.strip().splitlines()[-1] == (
        "error: delete was not confirmed; nothing was changed"
    )
    assert world.json("jobs", "show", uuid)["job"]["visible"] is True


def test_an_empty_admin_token_is_checked_not_replaced(world: CLI) -> None:
    uuid = create_job(world)["job"]["uuid"]
    for args in (["delete", uuid, "--yes"], ["undelete", uuid], ["purge", uuid, "--dry-run"]):
        body = world.fails(6, "admin", *args, "--token", "")
        assert body["code"] == "unauthorized"
    assert world.json("jobs", "show", uuid)["job"]["visible"] is True


@pytest.mark.parametrize("value", ["nope", SAMPLE_UUID, ""])
def test_admin_audit_refuses_what_is_not_a_job_uuid(dc: CLI, value: str) -> None:
    body = dc.fails(2, "admin", "audit", value)
    assert body["code"] == "invalid_request"
    assert dc.json("admin", "audit", UNKNOWN_JOB) == {"audit": []}  # a purged job's UUID is fine


def test_a_wrong_admin_token_is_refused_before_the_question(world: CLI) -> None:
    uuid = create_job(world)["job"]["uuid"]
    for action in ("reset", "delete", "purge"):
        wrong = world("admin", action, uuid, "--token", "f" * 64, input="y\n")
        assert wrong.exit_code == 6, wrong.output
        assert "?" not in wrong.stderr  # no question was asked
        assert (
            wrong.stderr == f"error: the admin token is not valid (or has expired) for {action}\n"
        )
    assert world.json("jobs", "show", uuid)["job"]["state"] == "CREATED"


def test_admin_delete_undelete_purge_audit(world: CLI) -> None:
    job, folder = _finished_job_with_outputs(world)
    uuid = job["uuid"]
    world.json("jobs", "index", uuid)

    assert world("admin", "delete", uuid, input="n\n").exit_code == 1
    world.json("admin", "delete", uuid, "--yes")
    assert world.fails(3, "jobs", "show", uuid)["code"] == "not_found"
    assert world.json("jobs", "list")["jobs"] == []
    world.json("admin", "undelete", uuid)
    assert world.json("jobs", "show", uuid)["job"]["visible"] is True

    dry = world.json("admin", "purge", uuid, "--dry-run")
    assert dry["dry_run"] is True and len(dry["files"]) == 3
    assert len(dry["archive_entries"]) == 3
    assert (folder / "summary.csv").exists()
    human = world("admin", "purge", uuid, "--dry-run")
    assert "dry run" in human.stdout and "would remove" in human.stdout

    assert world("admin", "purge", uuid, input="n\n").exit_code == 1
    assert world.json("jobs", "show", uuid)["job"]["uuid"] == uuid
    purged = world.json("admin", "purge", uuid, "--yes")
    assert purged["dry_run"] is False and len(purged["files"]) == 3
    assert not folder.exists() or not any(folder.iterdir())
    assert world.fails(3, "jobs", "show", uuid)["code"] == "not_found"
    assert world.fails(3, "admin", "purge", uuid, "--yes")["code"] == "not_found"

    audit = world.json("admin", "audit", uuid)["audit"]
    actions = [(r["action"], r["dry_run"]) for r in audit]
    assert actions == [
        ("purge", False), ("purge", True), ("purge", True), ("undelete", False), ("delete", False),
    ]  # fmt: skip
    assert audit[0]["actor"]["agent"] == "datacatalog-cli"
    assert len(world.json("admin", "audit")["audit"]) == 5
    human = world("admin", "audit")
    assert "purge" in human.stdout and uuid in human.stdout


# -- output modes --------------------------------------------------------------------------


def test_json_mode_prints_only_json(world: CLI) -> None:
    job, _ = _finished_job_with_outputs(world)
    uuid = job["uuid"]
    commands = [
        ["pipelines", "list"],
        ["pipelines", "show", "demo-stats"],
        ["jobs", "list"],
        ["jobs", "show", uuid],
        ["jobs", "history", uuid],
        ["jobs", "index", uuid, "--fixity"],
        ["jobs", "files", uuid],
        ["jobs", "verify", uuid],
        ["admin", "audit"],
    ]
    for args in commands:
        result = world("--json", *args)
        assert result.exit_code == 0, (args, result.output)
        json.loads(result.stdout)
        assert "\x1b[" not in result.stdout and "[bold]" not in result.stdout
        assert result.stderr == ""


def test_serve_passes_the_settings_host_port_and_workers(
    dc: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datacatalog.service

    calls: list[tuple[Any, str, int, int]] = []

    def fake_serve(settings: Any, *, host: str, port: int, workers: int) -> None:
        calls.append((settings, host, port, workers))

    monkeypatch.setattr(datacatalog.service, "serve", fake_serve)
    assert dc("serve").exit_code == 0
    assert dc("serve", "--host", "0.0.0.0", "--port", "9999", "--workers", "3").exit_code == 0
    assert [(h, p, w) for _, h, p, w in calls] == [
        ("127.0.0.1", 8750, 1),
        ("0.0.0.0", 9999, 3),
    ]
    assert calls[0][0].data_dir == dc.data_dir
    assert dc("serve", "--port", "0").exit_code == 2
    assert dc("serve", "--workers", "0").exit_code == 2
    assert dc("serve", "--workers", "65").exit_code == 2


def test_progress_callback_drives_the_progress_bar() -> None:
    import io

    from rich.console import Console

    from datacatalog.cli.jobs import progress_bar
    from datacatalog.cli.output import Output
    from datacatalog.indexing import IndexProgress

    out = Output(json_mode=False)
    screen = io.StringIO()
    out._err_console = Console(file=screen, force_terminal=True, width=120)
    with progress_bar(out, "indexing") as update:
        update(IndexProgress(seen=0, matched=0, written=0, total=4))
        update(IndexProgress(seen=4, matched=3, written=3, total=4))
    assert "indexing" in screen.getvalue() and "3 matched, 3 written" in screen.getvalue()

    quiet = Output(json_mode=True)
    quiet._err_console = Console(file=io.StringIO(), force_terminal=True)
    with progress_bar(quiet, "indexing") as update:
        update(IndexProgress(seen=1, matched=1, written=1, total=1))
    assert quiet.err_console.file.getvalue() == ""  # type: ignore[attr-defined]

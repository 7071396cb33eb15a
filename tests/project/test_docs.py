"""The README's Python example runs as written, and only the store talks to MongoDB."""

from __future__ import annotations

import ast
import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

# Test-run variables, and the zero-configuration engine the conftest chooses.
KEPT_VARIABLES = ("DATACATALOG_TEST_", "DATACATALOG_LOCAL_ENGINE")

ROOT = Path(__file__).resolve().parents[2]


def test_readme_python_example_runs_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DATACATALOG_") and not name.startswith(KEPT_VARIABLES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATACATALOG_DATA_DIR", str(tmp_path / "data"))
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)
    assert blocks, "the README has a Python example"
    # Unchanged, twice, on the same catalog: the second run finds every job it made.
    for attempt in (1, 2):
        namespace: dict[str, object] = {"__name__": "readme"}
        for number, block in enumerate(blocks, 1):
            where = f"README.md (python block {number}, run {attempt})"
            exec(compile(block, where, "exec"), namespace)
        job: Any = namespace["job"]
        catalog: Any = namespace["catalog"]
        assert job.state == "FINISHED"
        assert job.up_to_date is (attempt == 2)
        history = [e.name for e in catalog.jobs.history(job.uuid)]
        expected = ["create", "run", "finish", "index", "indexed"]
        assert history == (expected if attempt == 1 else [*expected, "reuse"])
        # The output written where the README says was found by indexing.
        files = catalog.indexing.files(job.uuid)
        assert [f.name.rsplit("/", 1)[-1] for f in files] == ["counts.csv"]
        stage: Any = namespace["result"]
        assert stage.succeeded and stage.up_to_date is (attempt == 2)


@pytest.mark.parametrize("page", ["runners.md", "reruns.md"])
def test_python_blocks_of_the_docs_run_twice(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in list(os.environ):
        if name.startswith("DATACATALOG_") and not name.startswith(KEPT_VARIABLES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATACATALOG_DATA_DIR", str(tmp_path / "data"))
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)
    assert blocks, f"docs/{page} has Python blocks"
    outcomes = []
    for attempt in (1, 2):
        namespace: dict[str, object] = {"__name__": "docs"}
        for number, block in enumerate(blocks, 1):
            where = f"docs/{page} (python block {number}, run {attempt})"
            exec(compile(block, where, "exec"), namespace)
        result: Any = namespace["result"]
        outcomes.append(result.outcome)
    # The second run of the same page found the job it ran up to date: nothing ran again.
    assert outcomes == ["run", "up_to_date"]
    assert "up_to_date" in capsys.readouterr().out


def test_only_the_store_imports_the_driver() -> None:
    offenders = []
    for path in sorted((ROOT / "datacatalog").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        # The store translates driver errors; the test tooling starts a real server.
        if relative.startswith(("datacatalog/store/", "datacatalog/testing/")):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] in ("pymongo", "bson", "mongomock_ng") for n in names):
                offenders.append(f"{relative}:{node.lineno}")
    assert offenders == []


def test_readme_command_line_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from datacatalog.cli import cli

    for name in list(os.environ):
        if name.startswith("DATACATALOG_") and not name.startswith(KEPT_VARIABLES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(ROOT)
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Command line", 1)[1]
    block = re.search(r"^```sh\n(.*?)^```$", section, flags=re.DOTALL | re.MULTILINE)
    assert block, "the README's command-line section has a shell example"
    commands = [line for line in block.group(1).splitlines() if line.startswith("datacatalog ")]
    assert len(commands) >= 6
    job_uuid = None
    for command in commands:
        args = shlex.split(command)[1:]
        if "JOB_UUID" in args:
            assert job_uuid, f"{command!r} needs a job created before it"
            args = [job_uuid if a == "JOB_UUID" else a for a in args]
        result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), *args])
        assert result.exit_code == 0, (command, result.output)
        created = re.search(r"created job (107[0-9a-f-]{33})", result.output)
        if created:
            job_uuid = created.group(1)


def test_readme_populate_line_runs_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's populate line, with its example analysis, on threads (Dask has its own
    tests): every measurement runs, then every one is up to date."""
    import json

    from click.testing import CliRunner

    from datacatalog.cli import cli

    for name in list(os.environ):
        if name.startswith("DATACATALOG_") and not name.startswith(KEPT_VARIABLES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(ROOT)
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    line = re.search(r"^datacatalog populate .*?[^\\]$", text, flags=re.DOTALL | re.MULTILINE)
    assert line, "the README has a populate line"
    args = shlex.split(line.group(0).replace("\\\n", " "))[1:]
    assert args[args.index("--executor") + 1] == "dask"
    args[args.index("--executor") + 1] = "thread"
    args.insert(1, "--json")
    data = ["--data-dir", str(tmp_path / "data")]
    for setup in (["pipelines", "register", "examples/pipeline.json"],
                  ["metadata", "load", "examples/metadata.yaml"]):  # fmt: skip
        assert CliRunner().invoke(cli, [*data, *setup]).exit_code == 0
    for expected in ({"ran": 4}, {"up_to_date": 4}):
        result = CliRunner().invoke(cli, [*data, *args])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["counts"] == expected, result.output

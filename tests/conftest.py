"""Test fixtures: one ``store`` fixture, run on the in-memory engine and on a real mongod.

Fixtures:
    store: a connected :class:`datacatalog.store.Store` on a fresh, uniquely named
        database; parametrized over the engines, so each test using it runs once per
        engine and its id says which (``test_x[memory]``, ``test_x[mongod]``).
    engine: the engine name of the current parametrization (``"memory"`` or ``"mongod"``).
    mongo_uri: the real server's URI, for tests that need a real server only (concurrency
        with threads); such tests make their own database name and drop it.
    database_name: a unique database name for the current test.

The real server is the one named by ``DATACATALOG_TEST_MONGODB_URI``; when that is unset,
one throw-away ``mongod`` is started for the session (``datacatalog.testing.mongod``).
``DATACATALOG_TEST_ENGINES=memory`` leaves the real server out. When it cannot be started,
the real-server tests are skipped with the reason printed in the summary, except under
``CI=true``, where that ends the run with an error: CI must never skip the real server.
"""

from __future__ import annotations

import os
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from _pytest.terminal import TerminalReporter

    from datacatalog.store import Store

MEMORY = "memory"
MONGOD = "mongod"
ALL_ENGINES = (MEMORY, MONGOD)
URI_ENV = "DATACATALOG_TEST_MONGODB_URI"
ENGINES_ENV = "DATACATALOG_TEST_ENGINES"

_OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
_mongod_problem = pytest.StashKey[str]()


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _engines() -> tuple[str, ...]:
    """The engines selected by ``DATACATALOG_TEST_ENGINES`` (default: all)."""
    raw = os.environ.get(ENGINES_ENV, "").strip()
    if not raw:
        return ALL_ENGINES
    chosen = tuple(name.strip() for name in raw.split(",") if name.strip())
    unknown = sorted(set(chosen) - set(ALL_ENGINES))
    if unknown or not chosen:
        raise pytest.UsageError(
            f"{ENGINES_ENV}={raw!r}: unknown engine(s) {unknown}; choose from {ALL_ENGINES}"
        )
    return chosen


def pytest_configure(config: pytest.Config) -> None:
    """Refuse a CI run that leaves the real server out."""
    engines = _engines()
    if _in_ci() and MONGOD not in engines:
        raise pytest.UsageError(f"CI=true but {ENGINES_ENV} leaves out the {MONGOD} engine")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Record each test's engine and mark the real-server tests ``mongod``.

    A test's engine is its ``engine`` parameter; a test using ``mongo_uri`` or marked
    ``mongod`` counts as a real-server test.
    """
    for item in items:
        engine = _engine_of(item)
        if engine is None:
            continue
        item.user_properties.append(("engine", engine))
        if engine == MONGOD:
            item.add_marker(pytest.mark.mongod)


def _engine_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "engine" in callspec.params:
        return str(callspec.params["engine"])
    if "mongo_uri" in getattr(item, "fixturenames", ()) or item.get_closest_marker(MONGOD):
        return MONGOD
    return None


# -- the real server ------------------------------------------------------------------


@pytest.fixture(scope="session")
def mongo_uri(request: pytest.FixtureRequest) -> Iterator[str]:
    """URI of the real MongoDB server (a single-member replica set)."""
    uri = os.environ.get(URI_ENV)
    if uri:
        yield uri
        return
    if MONGOD not in _engines():
        pytest.skip(f"the {MONGOD} engine is turned off by {ENGINES_ENV}")

    from datacatalog.testing.mongod import MongodError, MongodServer

    server = MongodServer()
    try:
        server.start()
    except MongodError as exc:
        problem = f"could not start a throw-away mongod: {exc}"
        if _in_ci():
            pytest.exit(f"CI=true and the real-server lane cannot run: {problem}", returncode=1)
        request.config.stash[_mongod_problem] = problem
        first_line = problem.splitlines()[0]
        pytest.skip(f"REAL-SERVER TESTS SKIPPED: {first_line} (details in the summary)")
    try:
        yield server.uri
    finally:
        server.stop()


# -- per-test fixtures ----------------------------------------------------------------


@pytest.fixture(params=ALL_ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """Name of the storage engine this test runs on."""
    name = str(request.param)
    if name not in _engines():
        pytest.skip(f"the {name} engine is turned off by {ENGINES_ENV}")
    return name


@pytest.fixture
def database_name(request: pytest.FixtureRequest) -> str:
    """A database name unique to this test (readable prefix, random suffix)."""
    stem = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:40]
    return f"t_{stem}_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store(engine: str, database_name: str, request: pytest.FixtureRequest) -> Iterator[Store]:
    """A connected store on a fresh database of the current engine."""
    from datacatalog.store import connect

    if engine == MEMORY:
        memory = connect("mongomock://", database=database_name)
        try:
            yield memory
        finally:
            memory.close()
        return

    uri = request.getfixturevalue("mongo_uri")
    real = connect(uri, database=database_name)
    try:
        yield real
    finally:
        try:
            real.drop_database()
        finally:
            real.close()


# -- the zero-configuration engine -----------------------------------------------------

LOCAL_ENGINE_ENV = "DATACATALOG_LOCAL_ENGINE"


@pytest.fixture(autouse=True)
def _json_catalog_unless_local_server(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Zero-configuration tests use the JSON engine, unless marked ``local_server``.

    Hundreds of tests open a fresh data dir; a managed server in each would cost a
    second and 300 MB of disk apiece. The managed server has its own tests
    (``tests/test_local_*.py``), marked ``local_server``, which start it in temporary
    data dirs and stop it when done.
    """
    if request.node.get_closest_marker("local_server") is not None:
        monkeypatch.delenv(LOCAL_ENGINE_ENV, raising=False)
        return
    from datacatalog import store

    # Subprocesses read the variable; in this process, settings built from an explicit
    # environment (Settings.load(env={})) still name local://, which opens the JSON file.
    monkeypatch.setenv(LOCAL_ENGINE_ENV, "json")
    monkeypatch.setitem(store._SCHEMES, "local", _json_file_for_local)


def _json_file_for_local(
    uri: str, database: str | None, timeout_ms: int, lock_timeout: float | None
) -> Any:
    """The ``local://`` engine of tests not marked ``local_server``: the JSON file."""
    from datacatalog.store.embedded import EmbeddedBackend
    from datacatalog.store.local import SNAPSHOT, parse_local_uri

    data_dir, _idle = parse_local_uri(uri)
    return EmbeddedBackend(
        data_dir / SNAPSHOT, database=database or "catalog", lock_timeout=lock_timeout
    )


def _require_mongod_binary() -> None:
    """Skip (fail under CI) when no usable mongod binary exists for the managed server."""
    from datacatalog.local import BinaryUnusableError
    from datacatalog.local.binary import find

    try:
        find()
    except BinaryUnusableError as exc:
        if _in_ci():
            pytest.fail(f"CI=true and the managed local server cannot run: {exc}")
        pytest.skip(f"no usable mongod for the managed local server: {exc}")


def stop_local_server(data_dir: Path) -> None:
    """Stop the managed server of ``data_dir`` if one runs (a test finalizer)."""
    from datacatalog.local import LocalServer, LocalServerError, processes
    from datacatalog.local.layout import Layout, lock_holder_pid, lock_is_held

    try:
        LocalServer(data_dir, start_timeout=30).stop(timeout=15)
    except LocalServerError:
        layout = Layout.for_data_dir(data_dir)
        pid = lock_holder_pid(layout)
        if (
            pid is not None
            and lock_is_held(layout.mongod_lock)
            and processes.runs_on(pid, layout.db)
        ):
            processes.kill(pid)


@pytest.fixture
def local_data_dir(tmp_path: Path) -> Iterator[Path]:
    """A temporary data dir whose managed server (if a test starts one) is stopped after."""
    _require_mongod_binary()
    data_dir = tmp_path / "data"
    try:
        yield data_dir
    finally:
        stop_local_server(data_dir)


@pytest.fixture(scope="module")
def shared_local_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One data dir with a started managed server, shared by a module's tests."""
    from datacatalog.local import LocalServer

    _require_mongod_binary()
    data_dir = tmp_path_factory.mktemp("local") / "data"
    try:
        LocalServer(data_dir).ensure()
        yield data_dir
    finally:
        stop_local_server(data_dir)


# -- reporting ------------------------------------------------------------------------


def pytest_terminal_summary(
    terminalreporter: TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """Print how many tests ran on each engine, and why the real server was skipped."""
    counts: dict[str, Counter[str]] = {name: Counter() for name in ALL_ENGINES}
    for outcome in _OUTCOMES:
        for report in terminalreporter.stats.get(outcome, ()):
            engine = dict(getattr(report, "user_properties", ())).get("engine")
            if engine in counts:
                counts[engine][outcome] += 1
    if not any(counts.values()):
        return
    terminalreporter.write_sep("=", "engines")
    for name in ALL_ENGINES:
        found = counts[name]
        text = ", ".join(f"{found[o]} {o}" for o in _OUTCOMES if found[o]) or "no tests"
        terminalreporter.write_line(f"engine {name}: {text}")
    problem = config.stash.get(_mongod_problem, None)
    if problem:
        terminalreporter.write_line(f"WARNING: {problem}", red=True, bold=True)

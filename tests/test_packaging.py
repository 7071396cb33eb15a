"""The wheel carries the code, the type marker and the bundled JSON Schemas."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path

import pytest

import datacatalog

ROOT = Path(__file__).resolve().parent.parent
_NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.pyc",
    ".hypothesis", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".tmp",
)  # fmt: skip


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A snapshot of the checkout, built instead of the real one.

    The build then leaves no files in the checkout, and the expectations are read from the
    very files that were built, even while the checkout changes.
    """
    snapshot = tmp_path_factory.mktemp("wheel") / "src"
    shutil.copytree(ROOT, snapshot, ignore=_NOT_SOURCES)
    return snapshot


@pytest.fixture(scope="module")
def wheel(source: Path) -> Iterator[zipfile.ZipFile]:
    """A wheel built from the snapshot, without build isolation (no network needed)."""
    work = source.parent
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation",
         "--outdir", str(work / "dist"), str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"wheel build failed:\n{result.stdout}\n{result.stderr}"
    (built,) = (work / "dist").glob("*.whl")
    with zipfile.ZipFile(built) as archive:
        yield archive


def _names(wheel: zipfile.ZipFile) -> set[str]:
    return set(wheel.namelist())


def test_wheel_contains_every_schema(wheel: zipfile.ZipFile, source: Path) -> None:
    folder = source / "schemas"
    schemas = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*.json"))
    if not schemas:
        pytest.skip("schemas/ has no JSON files yet")
    missing = [s for s in schemas if f"datacatalog/_schemas/{s}" not in _names(wheel)]
    assert not missing, f"schemas missing from the wheel: {missing}"


def test_wheel_contains_the_package_and_its_type_marker(
    wheel: zipfile.ZipFile, source: Path
) -> None:
    names = _names(wheel)
    assert "datacatalog/py.typed" in names
    modules = sorted(
        path.relative_to(source).as_posix()
        for path in (source / "datacatalog").rglob("*.py")
        if "__pycache__" not in path.parts
    )
    missing = [m for m in modules if m not in names]
    assert not missing, f"modules missing from the wheel: {missing}"
    strays = [
        n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith("tests/")
    ]
    assert not strays, f"unexpected files in the wheel: {strays}"


def test_wheel_metadata(wheel: zipfile.ZipFile) -> None:
    prefix = f"datacatalog-{datacatalog.__version__}.dist-info/"
    metadata = Parser().parsestr(wheel.read(prefix + "METADATA").decode())
    assert metadata["Name"] == "datacatalog"
    assert metadata["Version"] == datacatalog.__version__ == "0.1.0"
    assert metadata["Requires-Python"] == ">=3.11"
    assert "pymongo>=4.9" in metadata.get_all("Requires-Dist", [])
    entry_points = wheel.read(prefix + "entry_points.txt").decode()
    assert "datacatalog = datacatalog.cli:main" in entry_points


def test_wheel_contains_the_dashboards_templates_and_static_files(
    wheel: zipfile.ZipFile, source: Path
) -> None:
    folder = source / "datacatalog" / "service" / "ui"
    assets = sorted(
        path.relative_to(source).as_posix()
        for sub in ("templates", "static")
        for path in (folder / sub).iterdir()
        if path.is_file()
    )
    assert any(a.endswith(".html") for a in assets) and any(a.endswith(".js") for a in assets)
    missing = [a for a in assets if a not in _names(wheel)]
    assert not missing, f"dashboard files missing from the wheel: {missing}"

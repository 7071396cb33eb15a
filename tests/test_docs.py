"""The README's Python example runs as written, and only the store talks to MongoDB."""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_readme_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("DATACATALOG_") and not name.startswith("DATACATALOG_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("DATACATALOG_DATA_DIR", str(tmp_path / "data"))
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```$", text, flags=re.DOTALL | re.MULTILINE)
    assert blocks, "the README has a Python example"
    namespace: dict[str, object] = {"__name__": "readme"}
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"README.md (python block {number})", "exec"), namespace)
    job = namespace["job"]
    catalog = namespace["catalog"]
    assert getattr(job, "state", None) == "FINISHED"
    history = [e.name for e in catalog.jobs.history(job.uuid)]  # type: ignore[attr-defined]
    assert history == ["create", "run", "finish", "index", "indexed"]


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

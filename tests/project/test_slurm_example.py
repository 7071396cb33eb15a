"""examples/slurm-job.sh: where it finds the deployment secret, and that it stops without one.

The script is run by bash as SLURM would, with a stand-in ``datacatalog`` first on
``PATH`` that records the secret it was handed instead of running a job.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "slurm-job.sh"


@pytest.fixture
def node(tmp_path: Path) -> dict[str, str]:
    """A compute node's environment: an empty home, a data dir, the stand-in command."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stand_in = bin_dir / "datacatalog"
    stand_in.write_text(
        '#!/bin/sh\nprintf %s "$DATACATALOG_SECRET" > "$RECORD"\n', encoding="utf-8"
    )
    stand_in.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "DATACATALOG_DATA_DIR": str(tmp_path / "data"),
        "SAMPLE": "sample.demo.1",
        "RECORD": str(tmp_path / "record"),
    }


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_a_missing_secret_file_stops_the_script(node: dict[str, str]) -> None:
    done = run(node)
    assert done.returncode == 2
    expected = Path(node["DATACATALOG_DATA_DIR"], "secret")
    assert f"no deployment secret: {expected} is missing or empty" in done.stderr
    assert not Path(node["RECORD"]).exists()  # datacatalog never ran
    (Path(node["DATACATALOG_DATA_DIR"])).mkdir()
    expected.write_text("", encoding="utf-8")
    assert run(node).returncode == 2  # an empty one too


def test_the_secret_is_read_from_the_data_dir(node: dict[str, str]) -> None:
    data_dir = Path(node["DATACATALOG_DATA_DIR"])
    data_dir.mkdir()
    (data_dir / "secret").write_text("s" * 64, encoding="utf-8")
    done = run(node)
    assert done.returncode == 0, done.stderr
    assert Path(node["RECORD"]).read_text(encoding="utf-8") == "s" * 64


def test_the_default_data_dir_and_an_explicit_secret(node: dict[str, str]) -> None:
    del node["DATACATALOG_DATA_DIR"]
    default = Path(node["HOME"], ".local", "share", "datacatalog")
    assert str(default / "secret") in run(node).stderr
    default.mkdir(parents=True)
    (default / "secret").write_text("d" * 64, encoding="utf-8")
    assert run(node).returncode == 0
    assert Path(node["RECORD"]).read_text(encoding="utf-8") == "d" * 64
    explicit = {**node, "DATACATALOG_SECRET": "e" * 64}
    assert run(explicit).returncode == 0
    assert Path(node["RECORD"]).read_text(encoding="utf-8") == "e" * 64

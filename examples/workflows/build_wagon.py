"""Build the example workflow package as a wagon: ``python build_wagon.py [OUTDIR]``.

The wagon is a zip archive ``<name>-<version>.wgn`` holding one top-level folder with a
``package.json`` (package name, version, the wheels) and ``wheels/`` with the package's
wheel, built here with pip (offline, without build isolation). Prints the wagon's path.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build(outdir: Path) -> Path:
    """Build the wheel, then the wagon in ``outdir``; return the wagon's path."""
    text = (HERE / "pyproject.toml").read_text(encoding="utf-8")
    # The two [project] fields are plain strings (tomllib is not there on Python 3.10).
    name = re.search(r'^name = "([^"]+)"', text, re.M).group(1)  # type: ignore[union-attr]
    version = re.search(r'^version = "([^"]+)"', text, re.M).group(1)  # type: ignore[union-attr]
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        # Build from a copy: setuptools leaves build/ and *.egg-info beside the sources.
        source = Path(work) / "src"
        shutil.copytree(HERE, source, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info"))
        subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
             "--no-index", "--wheel-dir", work, str(source)],
            check=True,
        )  # fmt: skip
        wheels = sorted(Path(work).glob("*.whl"))
        top = f"{name}-{version}"
        metadata = {
            "package_name": name,
            "package_version": version,
            "wheels": [w.name for w in wheels],
            "supported_platform": "any",
        }
        wagon = outdir / f"{top}.wgn"
        with zipfile.ZipFile(wagon, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{top}/package.json", json.dumps(metadata, indent=2))
            for wheel in wheels:
                archive.write(wheel, f"{top}/wheels/{wheel.name}")
    return wagon


if __name__ == "__main__":
    print(build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "dist"))

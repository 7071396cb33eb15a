"""Plugins: wagons install, load and declare workflows; bad wagons are refused by name;
the example workflow runs from its wagon and from its installed package."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from datacatalog.orchestrator.exceptions import InvalidPluginError, PluginAlreadyExistsError
from datacatalog.orchestrator.executors import ThreadExecutor
from datacatalog.orchestrator.plugin import PluginManager
from datacatalog.orchestrator.registry import declarations, entry_point_declarations
from datacatalog.orchestrator.workflow_runner import WorkflowRunner
from tests.support.clocks import FakeClock
from tests.support.jobs import World

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "workflows"
NAME, VERSION = "datacatalog-example-workflows", "1.0.0"


@pytest.fixture(scope="module")
def wagon(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example wagon, built by the repository's script."""
    out = tmp_path_factory.mktemp("wagon")
    done = subprocess.run(
        [sys.executable, str(EXAMPLE / "build_wagon.py"), str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip())


@pytest.fixture
def manager(world: World) -> PluginManager:
    return PluginManager(world.catalog, world.data_dir / "plugins")


def _zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


def _run_diamond(world: World, manager: PluginManager | None) -> Any:
    job = world.new_job({"text": "to be or not"})
    run = WorkflowRunner(
        world.catalog, None, manager, service_id=job.uuid, workflow_name="example-diamond",
        inputs={"text": "to be or not", "label": "t"}, executor=ThreadExecutor(2),
        clock=FakeClock(),
    )  # fmt: skip
    execution = run.execute()
    report = json.loads((world.archive_dir(job) / "report.json").read_text())
    return execution, run, report


def test_a_valid_wagon_installs_loads_and_runs(
    world: World, manager: PluginManager, wagon: Path
) -> None:
    plugin = manager.install(wagon)
    assert (plugin.package_name, plugin.package_version) == (NAME, VERSION)
    assert plugin.directory == manager.plugins_dir / f"{NAME}-{VERSION}"
    assert manager.get_plugin_dir(plugin) == plugin.directory
    assert (plugin.python_dir / "datacatalog_example_workflows" / "diamond.py").is_file()
    assert plugin.workflows == {"example-diamond": "datacatalog_example_workflows.diamond:diamond"}
    assert world.store.count("plugin", {}) == 1
    env: dict[str, str] = {"PATH": "/usr/bin"}
    manager.load_plugin(plugin, env=env)
    assert env["PYTHONPATH"] == str(plugin.python_dir)
    assert env["PATH"] == f"/usr/bin:{plugin.bin_dir}"
    assert [d.name for d in manager.workflow_declarations()] == ["example-diamond"]
    execution, run, report = _run_diamond(world, manager)
    assert execution.status == "succeeded"
    assert report == {"words": 4, "letters": 9}
    assert [t.name for t in run.tasks] == ["split", "count-words", "count-letters", "report"]


def test_the_same_plugin_twice_is_refused(manager: PluginManager, wagon: Path) -> None:
    manager.install(wagon)
    with pytest.raises(PluginAlreadyExistsError, match=f"{NAME} {VERSION}"):
        manager.install(wagon)


def test_bad_wagons_are_refused_naming_the_problem(
    world: World, manager: PluginManager, tmp_path: Path, wagon: Path
) -> None:
    corrupt = tmp_path / "corrupt.wgn"
    corrupt.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(wagon.read_bytes()[:200])
    no_metadata = _zip(tmp_path / "no-metadata.wgn", {"x-1.0/wheels/x-1.0-py3-none-any.whl": b""})
    not_json = _zip(tmp_path / "not-json.wgn", {"x-1.0/package.json": "{"})
    no_wheel = _zip(
        tmp_path / "no-wheel.wgn",
        {"x-1.0/package.json": json.dumps(
            {"package_name": "x", "package_version": "1.0", "wheels": ["x-1.0-py3-none-any.whl"]})},
    )  # fmt: skip
    broken_wheel = _zip(
        tmp_path / "broken-wheel.wgn",
        {
            "x-1.0/package.json": json.dumps(
                {
                    "package_name": "x",
                    "package_version": "1.0",
                    "wheels": ["x-1.0-py3-none-any.whl"],
                }
            ),
            "x-1.0/wheels/x-1.0-py3-none-any.whl": b"not a wheel",
        },
    )
    tarball = tmp_path / "plugin.tar.gz"
    tarball.write_bytes(b"")
    cases = {
        corrupt: "not a zip archive",
        truncated: "not a zip archive",
        no_metadata: "no package.json",
        not_json: "not JSON",
        no_wheel: "not in the archive",
        broken_wheel: "does not install",
        tarball: "suffix .zip or .wgn",
        tmp_path / "absent.wgn": "no such file",
    }
    for path, message in cases.items():
        with pytest.raises(InvalidPluginError, match=message):
            manager.install(path)
    assert world.store.count("plugin", {}) == 0
    assert not manager.plugins_dir.exists() or not any(manager.plugins_dir.iterdir())


def test_validate_plugin_reads_the_metadata(wagon: Path) -> None:
    meta = PluginManager.validate_plugin(wagon)
    assert (meta.package_name, meta.package_version) == (NAME, VERSION)
    assert meta.root == f"{NAME}-{VERSION}"


def test_a_plugin_whose_directory_went_does_not_break_a_listing(
    manager: PluginManager, wagon: Path
) -> None:
    plugin = manager.install(wagon)
    shutil.rmtree(plugin.directory)
    assert [d.name for d in declarations(manager)][:1] == ["example-diamond"]


def test_the_example_as_an_installed_package_declares_its_entry_point(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    if engine != "memory":
        pytest.skip("the package install is the same on both engines")
    source = tmp_path / "src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "dist", "*.egg-info"))
    target = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    monkeypatch.syspath_prepend(str(target))
    found = {d.name: d for d in entry_point_declarations()}
    assert found["example-diamond"].source == f"package {NAME}"
    execution, _, report = _run_diamond(world, None)
    assert execution.status == "succeeded" and report == {"words": 4, "letters": 9}

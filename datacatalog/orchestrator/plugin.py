"""Plugin management: wagons (zip archives of a Python package's wheels) installed per catalog.

A wagon is a zip archive (suffix ``.zip`` or ``.wgn``) holding, at its root or in its one
top-level directory, a ``package.json`` naming the package (``package_name``,
``package_version``, ``wheels``) and a ``wheels/`` folder with those wheel files. Installing
one validates it, installs every one of its wheels (with ``installer``; a wagon carries
its package's dependencies as wheels of their own) under
``plugins_dir/<name>-<version>/python`` and records the plugin in the catalog with the
workflows its package declares in the entry-point group ``datacatalog.workflows``.
Loading a plugin appends its code to ``PYTHONPATH`` and its scripts to ``PATH``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.exceptions import InvalidWheelSource
from installer.sources import WheelFile
from installer.utils import get_launcher_kind

from datacatalog.clock import utc_now
from datacatalog.errors import ConflictError, NotFoundError
from datacatalog.identifiers import typed_uuid
from datacatalog.orchestrator.exceptions import InvalidPluginError, PluginAlreadyExistsError
from datacatalog.orchestrator.registry import ENTRY_POINT_GROUP, WorkflowDeclaration
from datacatalog.stored import from_stored

if TYPE_CHECKING:
    from datacatalog.catalog import Catalog

METADATA_FILE = "package.json"
SUFFIXES = (".zip", ".wgn")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_TARGET = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$")


@dataclass(frozen=True)
class WagonMetadata:
    """What a wagon's ``package.json`` says, and where it is in the archive."""

    package_name: str
    package_version: str
    wheels: tuple[str, ...]
    root: str  # the folder holding package.json inside the archive ("" for the root)
    supported_platform: str = "any"


@dataclass(frozen=True)
class Plugin:
    """An installed plugin."""

    id: str
    package_name: str
    package_version: str
    directory: Path
    wheels: tuple[str, ...]
    workflows: dict[str, str] = field(default_factory=dict)
    source: str = ""
    installed_at: datetime | None = None

    @property
    def key(self) -> str:
        """``<name>-<version>``, the plugin's folder name."""
        return f"{self.package_name}-{self.package_version}"

    @property
    def python_dir(self) -> Path:
        """Where the plugin's Python code is."""
        return self.directory / "python"

    @property
    def bin_dir(self) -> Path:
        """Where the plugin's scripts are."""
        return self.python_dir / "bin"

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> Plugin:
        """Build from a stored document."""
        return from_stored(
            cls,
            doc,
            id=doc["uuid"],
            directory=Path(doc["directory"]),
            wheels=tuple(doc.get("wheels", [])),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "id": self.id,
            "package_name": self.package_name,
            "package_version": self.package_version,
            "directory": str(self.directory),
            "wheels": list(self.wheels),
            "workflows": self.workflows,
            "source": self.source,
            "installed_at": self.installed_at.isoformat() if self.installed_at else None,
        }


def _plugin_id(name: str, version: str) -> str:
    return typed_uuid(f"plugin:{name}=={version}", "generic")


class PluginManager:
    """Installs, lists and loads the plugins of one catalog.

    Args:
        model: The catalog (or its store) recording the plugins.
        plugins_dir: Root directory in which to install plugins.
    """

    def __init__(self, model: Any, plugins_dir: str | os.PathLike[str]) -> None:
        from datacatalog.catalog import Catalog
        from datacatalog.store import Store

        if isinstance(model, Catalog):
            self._store = model.store
        elif isinstance(model, Store):
            self._store = model
        else:
            raise InvalidPluginError(
                f"model must be a Catalog or a Store, not {type(model).__name__}"
            )
        self.plugins_dir = Path(plugins_dir).expanduser().resolve()

    @classmethod
    def default(cls, catalog: Catalog) -> PluginManager:
        """The catalog's plugin manager: plugins under ``<data dir>/plugins``."""
        return cls(catalog, catalog.settings.data_dir / "plugins")

    # -- ARIA's surface (docs/workflows.md) -------------------------------------------------

    def get_plugin_dir(self, plugin: Plugin | str) -> Path:
        """The directory a plugin is (or would be) installed in."""
        key = plugin.key if isinstance(plugin, Plugin) else self._find(plugin).key
        return self.plugins_dir / key

    def install(self, source: str | os.PathLike[str]) -> Plugin:
        """Install a wagon plugin.

        Raises:
            InvalidPluginError: The archive is not a valid wagon (the message says why),
                or its wheels do not install.
            PluginAlreadyExistsError: The same package name and version is installed.
        """
        path = Path(source)
        meta = self.validate_plugin(path)
        key = f"{meta.package_name}-{meta.package_version}"
        pid = _plugin_id(meta.package_name, meta.package_version)
        if self._store.get("plugin", {"uuid": pid}) is not None:
            raise PluginAlreadyExistsError(
                f"plugin {meta.package_name} {meta.package_version} is installed already",
                plugin=key,
            )
        target = self.plugins_dir / key
        if target.exists():
            raise PluginAlreadyExistsError(
                f"plugin {meta.package_name} {meta.package_version}: {target} exists already",
                plugin=key,
            )
        self.plugins_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=self.plugins_dir))
        try:
            wheels_dir = staging / "wheels"
            wheels_dir.mkdir()
            with zipfile.ZipFile(path) as archive:
                for wheel in meta.wheels:
                    member = (
                        str(PurePosixPath(meta.root, "wheels", wheel))
                        if meta.root
                        else f"wheels/{wheel}"
                    )
                    (wheels_dir / wheel).write_bytes(archive.read(member))
            self._install_wheels(meta, wheels_dir, staging / "python")
            workflows = _declared_workflows(staging / "python")
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        doc = {
            "uuid": pid,
            "package_name": meta.package_name,
            "package_version": meta.package_version,
            "source": str(path.resolve()),
            "directory": str(target),
            "wheels": list(meta.wheels),
            "workflows": workflows,
            "installed_at": utc_now(),
            "supported_platform": meta.supported_platform,
        }
        try:
            stored = self._store.insert("plugin", doc)
        except ConflictError as exc:
            shutil.rmtree(target, ignore_errors=True)
            raise PluginAlreadyExistsError(
                f"plugin {meta.package_name} {meta.package_version} is installed already",
                plugin=key,
            ) from exc
        return Plugin.from_document(stored)

    def load_plugin(
        self, plugin: Plugin | str, env: MutableMapping[str, str] | None = None
    ) -> None:
        """Load the plugin into an environment (``os.environ`` when None).

        The plugin's code directory is appended to ``PYTHONPATH`` and its scripts directory
        to ``PATH``; loading into ``os.environ`` also makes the code importable here.
        """
        found = plugin if isinstance(plugin, Plugin) else self._find(plugin)
        target = os.environ if env is None else env
        _append_path(target, "PYTHONPATH", str(found.python_dir))
        _append_path(target, "PATH", str(found.bin_dir))
        if env is None and str(found.python_dir) not in sys.path:
            sys.path.append(str(found.python_dir))

    @staticmethod
    def validate_plugin(source: str | os.PathLike[str]) -> WagonMetadata:
        """Validate a plugin archive: a wagon in the zip format (suffix ``.zip`` or ``.wgn``).

        Raises:
            InvalidPluginError: Naming what is wrong.
        """
        path = Path(source)
        if path.suffix.lower() not in SUFFIXES:
            raise InvalidPluginError(
                f"{path}: a plugin is a wagon with the suffix .zip or .wgn, "
                f"not {path.suffix or 'none'!r}"
            )
        if not path.is_file():
            raise InvalidPluginError(f"{path}: no such file")
        if not zipfile.is_zipfile(path):
            raise InvalidPluginError(f"{path}: not a zip archive (corrupt or of another format)")
        names, member, raw = _read_wagon(path)
        return _wagon_metadata(path, names, member, raw)

    # -- listing ----------------------------------------------------------------------------

    def plugins(self) -> list[Plugin]:
        """The installed plugins, by name and version."""
        docs = self._store.find("plugin", {}, sort=[("package_name", 1), ("package_version", 1)])
        return [Plugin.from_document(d) for d in docs]

    def workflow_declarations(self) -> list[WorkflowDeclaration]:
        """The workflows the installed plugins declare."""
        found = []
        for plugin in self.plugins():
            for name, target in sorted(plugin.workflows.items()):
                found.append(
                    WorkflowDeclaration(
                        name,
                        target,
                        f"plugin {plugin.key}",
                        plugin=plugin.key,
                        version=plugin.package_version,
                    )
                )
        return found

    def _find(self, plugin: str) -> Plugin:
        for candidate in self.plugins():
            if plugin in (candidate.key, candidate.package_name, candidate.id):
                return candidate
        raise NotFoundError(f"no installed plugin {plugin!r}", plugin=plugin)

    @staticmethod
    def _install_wheels(meta: WagonMetadata, wheels_dir: Path, target: Path) -> None:
        """Install every wheel of the wagon into ``target`` (code) and ``target/bin``."""
        scheme = {
            "purelib": str(target),
            "platlib": str(target),
            "scripts": str(target / "bin"),
            "headers": str(target / "include"),
            "data": str(target / "data"),
        }
        destination = SchemeDictionaryDestination(
            scheme, interpreter=sys.executable, script_kind=get_launcher_kind()
        )
        for wheel in meta.wheels:
            try:
                with WheelFile.open(wheels_dir / wheel) as source:
                    install(source, destination, {"INSTALLER": b"datacatalog\n"})
            except (InvalidWheelSource, zipfile.BadZipFile, OSError, ValueError) as exc:
                raise InvalidPluginError(
                    f"plugin {meta.package_name} {meta.package_version}: wheel {wheel} does "
                    f"not install: {exc}"
                ) from exc


def _declared_workflows(python_dir: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    for dist in metadata.distributions(path=[str(python_dir)]):
        for ep in dist.entry_points:
            if ep.group == ENTRY_POINT_GROUP and _TARGET.match(ep.value):
                found[ep.name] = ep.value
    return found


def _append_path(env: MutableMapping[str, str], name: str, entry: str) -> None:
    parts = [p for p in env.get(name, "").split(os.pathsep) if p]
    if entry not in parts:
        parts.append(entry)
    env[name] = os.pathsep.join(parts)


def _read_wagon(path: Path) -> tuple[list[str], str, Any]:
    """The archive's member names, its metadata file's name and that file's JSON."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            bad = archive.testzip()
            if bad is not None:
                raise InvalidPluginError(f"{path}: the archive is corrupt (bad CRC in {bad})")
            candidates = [
                n
                for n in names
                if PurePosixPath(n).name == METADATA_FILE and len(PurePosixPath(n).parts) <= 2
            ]
            if not candidates:
                raise InvalidPluginError(
                    f"{path}: no {METADATA_FILE} at the root or in the top-level directory: "
                    "not a wagon"
                )
            member = sorted(candidates, key=len)[0]
            try:
                raw = json.loads(archive.read(member).decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InvalidPluginError(f"{path}: {member} is not JSON: {exc}") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidPluginError(f"{path}: cannot read the archive: {exc}") from None
    return names, member, raw


def _wagon_metadata(path: Path, names: list[str], member: str, raw: Any) -> WagonMetadata:
    """The wagon's metadata, checked: name, version, and wheels present in the archive."""
    root = str(PurePosixPath(member).parent) if "/" in member else ""
    if not isinstance(raw, dict):
        raise InvalidPluginError(f"{path}: {member} must hold a JSON object")
    name, version = raw.get("package_name"), raw.get("package_version")
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidPluginError(
            f"{path}: {member}: package_name is missing or malformed ({name!r})"
        )
    if not isinstance(version, str) or not version.strip() or "/" in version:
        raise InvalidPluginError(
            f"{path}: {member}: package_version is missing or malformed ({version!r})"
        )
    wheels = raw.get("wheels")
    if (
        not isinstance(wheels, list)
        or not wheels
        or not all(isinstance(w, str) and w.endswith(".whl") and "/" not in w for w in wheels)
    ):
        raise InvalidPluginError(f"{path}: {member}: wheels must list the wagon's .whl file names")
    prefix = f"{root}/wheels/" if root else "wheels/"
    missing = [w for w in wheels if prefix + w not in names]
    if missing:
        raise InvalidPluginError(
            f"{path}: wheel(s) listed but not in the archive: {', '.join(missing)}"
        )
    platform = raw.get("supported_platform", "any")
    return WagonMetadata(name, version, tuple(wheels), root, str(platform))

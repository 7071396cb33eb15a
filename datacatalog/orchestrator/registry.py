"""Where workflows are declared, and finding one by name.

A workflow name resolves, in this order, to

1. a workflow registered in this process with :func:`register_workflow`;
2. a workflow declared by an installed plugin (a wagon, :mod:`.plugin`);
3. a workflow declared by an installed Python package through the entry-point group
   ``datacatalog.workflows`` (``name = "package.module:function"``);
4. ``module:function`` itself, imported.

A name found nowhere is an :class:`UndeclaredWorkflowError`; a declared workflow whose
code cannot be imported is a :class:`WorkflowImplementationNotFoundError`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

from datacatalog.orchestrator.decorators import Workflow, import_object
from datacatalog.orchestrator.exceptions import (
    UndeclaredWorkflowError,
    WorkflowImplementationNotFoundError,
)

if TYPE_CHECKING:
    from datacatalog.orchestrator.plugin import PluginManager

ENTRY_POINT_GROUP = "datacatalog.workflows"

_REGISTERED: dict[str, Workflow] = {}
_REGISTERED_LOCK = threading.Lock()


@dataclass(frozen=True)
class WorkflowDeclaration:
    """A workflow's name, where its code is (``module:function``) and who declared it."""

    name: str
    target: str
    source: str  # "registered", "plugin <name>-<version>", "package <dist>", "import"
    plugin: str | None = None  # the plugin's "<name>-<version>", for plugins
    version: str | None = None  # the plugin's or package's version


def register_workflow(name: str, func: Workflow | Callable[..., Any]) -> Workflow:
    """Declare ``func`` (a ``@workflow``, or a plain ``f(ctx, graph, ...)``) as ``name``."""
    wf = func if isinstance(func, Workflow) else Workflow(func)
    with _REGISTERED_LOCK:
        _REGISTERED[name] = wf
    return wf


def unregister_workflow(name: str) -> None:
    """Forget a workflow registered with :func:`register_workflow`."""
    with _REGISTERED_LOCK:
        _REGISTERED.pop(name, None)


def entry_point_declarations() -> list[WorkflowDeclaration]:
    """Workflows declared by installed packages (entry-point group ``datacatalog.workflows``)."""
    found = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        who = f"package {dist.name}" if dist is not None else "package"
        version = dist.version if dist is not None else None
        found.append(WorkflowDeclaration(ep.name, ep.value, who, version=version))
    return found


def declarations(plugin_manager: PluginManager | None) -> list[WorkflowDeclaration]:
    """Every declared workflow (registered, from plugins, from packages), by name."""
    with _REGISTERED_LOCK:
        registered = [
            WorkflowDeclaration(name, wf.path, "registered") for name, wf in _REGISTERED.items()
        ]
    plugins = plugin_manager.workflow_declarations() if plugin_manager is not None else []
    seen: set[str] = set()
    result = []
    for declaration in [*registered, *plugins, *entry_point_declarations()]:
        if declaration.name not in seen:
            seen.add(declaration.name)
            result.append(declaration)
    return result


def resolve(name: str | Workflow, plugin_manager: PluginManager | None) -> tuple[str, Workflow]:
    """The workflow called ``name``, and the name to record for it.

    Raises:
        UndeclaredWorkflowError: Nothing declares ``name``.
        WorkflowImplementationNotFoundError: Its code cannot be imported.
    """
    if isinstance(name, Workflow):
        return name.path, name
    if not isinstance(name, str) or not name.strip():
        raise UndeclaredWorkflowError(f"a workflow name is a non-empty string, not {name!r}")
    with _REGISTERED_LOCK:
        registered = _REGISTERED.get(name)
    if registered is not None:
        return name, registered
    for declaration in declarations(plugin_manager):
        if declaration.name == name:
            if declaration.plugin is not None and plugin_manager is not None:
                plugin_manager.load_plugin(declaration.plugin)
            return name, _load(declaration.target, f"workflow {name!r} ({declaration.source})")
    if ":" in name:
        return name, _load(name, f"workflow {name!r}", undeclared=True)
    known = sorted(d.name for d in declarations(plugin_manager))
    raise UndeclaredWorkflowError(
        f"no workflow named {name!r} is declared; known workflows: "
        f"{', '.join(known) if known else 'none'} (or give module:function)",
        workflow=name,
    )


def workflow_version(
    name: str, workflow: Workflow, plugin_manager: PluginManager | None
) -> str | None:
    """The version of the code behind a workflow: its plugin's or package's, else that of
    the installed distribution holding its module; None when there is none."""
    for declaration in declarations(plugin_manager):
        if declaration.name == name and declaration.version is not None:
            return declaration.version
    top = workflow.func.__module__.partition(".")[0]
    for dist in metadata.packages_distributions().get(top, []):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _load(target: str, what: str, *, undeclared: bool = False) -> Workflow:
    try:
        found = import_object(target)
    except ModuleNotFoundError as exc:
        if undeclared and exc.name is not None and target.startswith(exc.name):
            raise UndeclaredWorkflowError(
                f"{what}: no module {exc.name!r} to import it from", workflow=target
            ) from exc
        raise WorkflowImplementationNotFoundError(
            f"{what}: its code {target} cannot be imported: {exc}", workflow=target
        ) from exc
    except (ImportError, AttributeError) as exc:
        raise WorkflowImplementationNotFoundError(
            f"{what}: its code {target} cannot be imported: {exc}", workflow=target
        ) from exc
    except Exception as exc:
        raise WorkflowImplementationNotFoundError(
            f"{what}: importing {target} failed: {type(exc).__name__}: {exc}", workflow=target
        ) from exc
    if isinstance(found, Workflow):
        return found
    if callable(found):
        try:
            return Workflow(found)
        except Exception as exc:
            raise WorkflowImplementationNotFoundError(f"{what}: {exc}", workflow=target) from exc
    raise WorkflowImplementationNotFoundError(
        f"{what}: {target} is a {type(found).__name__}, not a workflow function", workflow=target
    )

"""The task graph a workflow function builds: operations, their arguments and dependencies.

``graph.add(op, after=[...], name=None, **arguments)`` adds one task and returns its
:class:`TaskNode`; ``after`` lists nodes (or task names) that must succeed first. A task's
name is ``name`` when given, else the operation's name followed by its
``suffix_template`` formatted with the arguments; a repeated name gets ``-2``, ``-3``, ...
in the order tasks are added, so building the same workflow with the same inputs gives
the same names (a resume finds its tasks by name).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from datacatalog.errors import InvalidRequestError
from datacatalog.orchestrator.decorators import Operation


@dataclass(frozen=True)
class TaskNode:
    """One task of the graph."""

    name: str
    operation: Operation
    arguments: Mapping[str, Any]
    dependencies: tuple[str, ...] = field(default=())


class TaskGraph:
    """The tasks of one workflow, in the order they were added."""

    def __init__(self) -> None:
        self._nodes: dict[str, TaskNode] = {}

    def add(
        self,
        op: Operation,
        *,
        after: Iterable[TaskNode | str] = (),
        name: str | None = None,
        **arguments: Any,
    ) -> TaskNode:
        """Add a task running ``op`` with ``arguments`` once every task in ``after`` succeeded.

        Raises:
            InvalidRequestError: ``op`` is not an operation, the arguments do not fit it,
                a dependency is unknown or the name is taken.
        """
        if not isinstance(op, Operation):
            raise InvalidRequestError(
                f"graph.add needs an @operation, not {type(op).__name__} ({op!r})"
            )
        op.bind(arguments)
        dependencies: list[str] = []
        for dep in after if not isinstance(after, (str, TaskNode)) else [after]:
            dep_name = dep.name if isinstance(dep, TaskNode) else dep
            if dep_name not in self._nodes:
                raise InvalidRequestError(
                    f"task {name or op.name}: dependency {dep_name!r} is not in the graph "
                    "(add it first)"
                )
            if dep_name not in dependencies:
                dependencies.append(dep_name)
        task_name = name if name is not None else self._auto_name(op, arguments)
        if not isinstance(task_name, str) or not task_name:
            raise InvalidRequestError(f"task names are non-empty strings, not {task_name!r}")
        if task_name in self._nodes:
            raise InvalidRequestError(f"a task named {task_name!r} is in the graph already")
        node = TaskNode(task_name, op, dict(arguments), tuple(dependencies))
        self._nodes[task_name] = node
        return node

    def _auto_name(self, op: Operation, arguments: Mapping[str, Any]) -> str:
        base = op.name
        if op.suffix_template:
            try:
                base += op.suffix_template.format(**arguments)
            except (KeyError, IndexError, ValueError) as exc:
                raise InvalidRequestError(
                    f"operation {op.name}: suffix_template {op.suffix_template!r} does not fit "
                    f"the arguments: {exc}"
                ) from None
        candidate, number = base, 1
        while candidate in self._nodes:
            number += 1
            candidate = f"{base}-{number}"
        return candidate

    def __iter__(self) -> Iterator[TaskNode]:
        return iter(self._nodes.values())

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, name: object) -> bool:
        return name in self._nodes

    def __getitem__(self, name: str) -> TaskNode:
        return self._nodes[name]

    def dependants(self, name: str) -> list[str]:
        """Names of the tasks that list ``name`` as a dependency."""
        return [n.name for n in self._nodes.values() if name in n.dependencies]

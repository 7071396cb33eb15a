"""Workflow and operation decorators.

``@operation`` marks a function ``f(ctx, **arguments)`` as a unit of work; ``@workflow``
marks a function ``f(ctx, graph, **inputs)`` that adds operations to a graph. Both may be
used bare or with arguments::

    @operation(max_attempts=3, retry_interval=5)
    def align(ctx, sample):
        ...

    @workflow
    def analyse(ctx, graph, sample):
        first = graph.add(align, sample=sample)
        graph.add(count, after=[first])

The decorated objects stay callable (they call the function) and pickle by reference
when importable, so process and Dask workers import the same code.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, overload

from datacatalog.errors import InvalidRequestError

OPERATION_RESERVED = ("ctx", "toolbelt")
WORKFLOW_RESERVED = ("ctx", "graph")

F = TypeVar("F", bound=Callable[..., Any])


def qualified_name(func: Callable[..., Any]) -> str:
    """``module:qualname`` of a function, the form :func:`import_object` reads."""
    return f"{func.__module__}:{func.__qualname__}"


def import_object(path: str) -> Any:
    """Import ``module:attribute`` (or ``module.attribute``); ImportError if it is absent."""
    module_name, sep, attribute = path.partition(":")
    if not sep:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise ImportError(f"{path!r} is not of the form module:attribute")
    found: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found


def _by_reference(obj: Any) -> bool:
    """Whether ``obj`` can be found again by importing its qualified name.

    Code in ``__main__`` cannot: another process's ``__main__`` is another module.
    """
    if obj.__module__ == "__main__":
        return False
    try:
        return import_object(f"{obj.__module__}:{obj.__qualname__}") is obj
    except (ImportError, AttributeError):
        return False


def check_resources(resources: object, what: str) -> dict[str, float]:
    """``resources`` as ``{name: amount}``; InvalidRequestError naming what is wrong.

    Names are non-empty strings, amounts positive numbers (Dask's abstract resources).
    """
    if resources is None:
        return {}
    if not isinstance(resources, Mapping):
        raise InvalidRequestError(
            f"{what}: resources must be a mapping of names to amounts, "
            f"not {type(resources).__name__}"
        )
    checked: dict[str, float] = {}
    for name, amount in resources.items():
        if not isinstance(name, str) or not name.strip():
            raise InvalidRequestError(f"{what}: a resource name must be a non-empty string")
        if (
            isinstance(amount, bool)
            or not isinstance(amount, (int, float))
            or not amount > 0
            or amount == float("inf")
        ):
            raise InvalidRequestError(
                f"{what}: resource {name!r} must be a positive number, not {amount!r}"
            )
        checked[name] = float(amount)
    return checked


class _Marked:
    """A function marked by a decorator: it stands for the function (its name, module and
    docstring) and calls it."""

    #: What the decorator marks, as ``repr`` shows it.
    kind = "function"

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func
        self.name = func.__name__
        functools.update_wrapper(self, func, updated=())

    @property
    def path(self) -> str:
        """``module:qualname`` of the function."""
        return qualified_name(self.func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<{self.kind} {self.path}>"


class Operation(_Marked):
    """A function marked with :func:`operation`, and its options.

    ``max_attempts``, ``retry_interval`` and ``ignore_failure`` are None when not given:
    the runner's defaults then apply (0 is a value, not "not given"). ``resources`` are
    what an attempt needs of a Dask worker (``{"GPU": 1}``: the abstract resources
    workers declare with ``--resources``); other executors run every attempt as it comes.
    """

    kind = "operation"

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        toolbelt: bool = False,
        suffix_template: str = "",
        logging_handlers: Sequence[logging.Handler] | None = None,
        max_attempts: int | None = None,
        retry_interval: float | None = None,
        ignore_failure: bool | None = None,
        resources: Mapping[str, float] | None = None,
    ) -> None:
        if not callable(func):
            raise InvalidRequestError(f"@operation needs a function, not {type(func).__name__}")
        _check_first_parameter(func, "operation")
        if max_attempts is not None and (
            isinstance(max_attempts, bool)
            or not isinstance(max_attempts, int)
            or (max_attempts < 1 and max_attempts != -1)
        ):
            raise InvalidRequestError(
                f"operation {func.__name__}: max_attempts must be an integer of at least 1, "
                f"or -1 (retry until it succeeds), not {max_attempts!r}"
            )
        if retry_interval is not None and (
            isinstance(retry_interval, bool)
            or not isinstance(retry_interval, (int, float))
            or retry_interval < 0
        ):
            raise InvalidRequestError(
                f"operation {func.__name__}: retry_interval must be a number of seconds >= 0, "
                f"not {retry_interval!r}"
            )
        super().__init__(func)
        self.toolbelt = bool(toolbelt)
        self.suffix_template = suffix_template
        self.logging_handlers = list(logging_handlers or [])
        self.max_attempts = max_attempts
        self.retry_interval = None if retry_interval is None else float(retry_interval)
        self.ignore_failure = ignore_failure
        self.resources = check_resources(resources, f"operation {func.__name__}")

    def bind(self, arguments: Mapping[str, Any]) -> None:
        """Check that ``arguments`` fit the function; InvalidRequestError naming what does not."""
        reserved = sorted(set(arguments) & set(OPERATION_RESERVED))
        if reserved:
            raise InvalidRequestError(
                f"operation {self.name}: {', '.join(reserved)} is a reserved argument name"
            )
        extra = {"toolbelt": None} if self.toolbelt else {}
        try:
            inspect.signature(self.func).bind(None, **extra, **arguments)
        except TypeError as exc:
            raise InvalidRequestError(f"operation {self.name}: {exc}") from None

    def __reduce__(self) -> str | tuple[Any, ...]:
        # Importable operations travel by name, so a worker runs the code it imports.
        if _by_reference(self):
            return (import_object, (f"{self.func.__module__}:{self.func.__qualname__}",))
        return (
            _rebuild_operation,
            (
                self.func,
                self.toolbelt,
                self.suffix_template,
                self.max_attempts,
                self.retry_interval,
                self.ignore_failure,
                self.resources,
            ),
        )


def _rebuild_operation(
    func: Callable[..., Any],
    toolbelt: bool,
    suffix_template: str,
    max_attempts: int | None,
    retry_interval: float | None,
    ignore_failure: bool | None,
    resources: dict[str, float] | None = None,
) -> Operation:
    return Operation(
        func,
        toolbelt=toolbelt,
        suffix_template=suffix_template,
        max_attempts=max_attempts,
        retry_interval=retry_interval,
        ignore_failure=ignore_failure,
        resources=resources,
    )


class Workflow(_Marked):
    """A function marked with :func:`workflow`: ``f(ctx, graph, **inputs)`` builds a graph."""

    kind = "workflow"

    def __init__(self, func: Callable[..., Any], *, suffix_template: str = "") -> None:
        if not callable(func):
            raise InvalidRequestError(f"@workflow needs a function, not {type(func).__name__}")
        _check_first_parameter(func, "workflow", second="graph")
        super().__init__(func)
        self.suffix_template = suffix_template

    def display_name(self, inputs: Mapping[str, Any], name: str | None = None) -> str:
        """``name`` (default: the function's) followed by ``suffix_template`` formatted with
        the inputs (and defaults)."""
        base = self.name if name is None else name
        if not self.suffix_template:
            return base
        values = {
            key: param.default
            for key, param in inspect.signature(self.func).parameters.items()
            if param.default is not param.empty
        }
        values.update(inputs)
        try:
            return base + self.suffix_template.format(**values)
        except (KeyError, IndexError, ValueError) as exc:
            raise InvalidRequestError(
                f"workflow {self.name}: suffix_template {self.suffix_template!r} does not fit "
                f"the inputs: {exc}"
            ) from None

    def parameters(self) -> dict[str, bool]:
        """The inputs the workflow takes, each with whether it is required."""
        found: dict[str, bool] = {}
        for name, param in list(inspect.signature(self.func).parameters.items())[2:]:
            if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
                found[name] = param.default is param.empty
        return found

    def accepts_any_input(self) -> bool:
        """Whether the function takes ``**inputs``."""
        return any(
            p.kind is p.VAR_KEYWORD for p in inspect.signature(self.func).parameters.values()
        )

    def defaults(self) -> dict[str, Any]:
        """The declared default of each input that has one."""
        return {
            name: param.default
            for name, param in list(inspect.signature(self.func).parameters.items())[2:]
            if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
            and param.default is not param.empty
        }

    def effective_inputs(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """``inputs`` completed with the declared defaults: what the workflow runs with."""
        return {**self.defaults(), **inputs}

    def input_kinds(self) -> dict[str, tuple[type, ...]]:
        """The simple types each annotated input accepts (only inputs annotated with them).

        Simple: ``str``, ``int``, ``float``, ``bool``, ``list``, ``dict`` (``list[str]``
        counts as ``list``), and unions of them with ``None``. Other annotations are not
        checked.
        """
        try:
            hints = typing.get_type_hints(self.func)
        except Exception:  # an annotation that does not resolve: take the resolved ones
            hints = {
                name: param.annotation
                for name, param in inspect.signature(self.func).parameters.items()
                if param.annotation is not param.empty and not isinstance(param.annotation, str)
            }
        found: dict[str, tuple[type, ...]] = {}
        for name in self.parameters():
            kinds = _simple_kinds(hints.get(name, inspect.Parameter.empty))
            if kinds:
                found[name] = kinds
        return found

    def check_input_types(self, inputs: Mapping[str, Any]) -> list[str]:
        """Problems with the types of ``inputs`` against the simple annotations."""
        problems = []
        for name, kinds in self.input_kinds().items():
            if name in inputs and not any(_fits(inputs[name], kind) for kind in kinds):
                value = inputs[name]
                wanted = " or ".join("None" if k is type(None) else k.__name__ for k in kinds)
                shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
                problems.append(
                    f"input {name!r} must be {wanted}, not {type(value).__name__} ({shown})"
                )
        return problems

    def check_inputs(self, inputs: Mapping[str, Any]) -> list[str]:
        """Problems with ``inputs`` (unknown or missing names); empty when they fit."""
        problems: list[str] = []
        reserved = sorted(set(inputs) & set(WORKFLOW_RESERVED))
        if reserved:
            problems.append(f"{', '.join(reserved)} is a reserved name")
        params = self.parameters()
        unknown = sorted(set(inputs) - set(params) - set(WORKFLOW_RESERVED))
        if unknown and not self.accepts_any_input():
            problems.append(
                f"unknown input(s) {', '.join(unknown)}; it takes "
                f"{', '.join(params) if params else 'none'}"
            )
        missing = sorted(n for n, required in params.items() if required and n not in inputs)
        if missing:
            problems.append(f"missing required input(s) {', '.join(missing)}")
        return problems


SIMPLE_TYPES: tuple[type, ...] = (str, int, float, bool, list, dict)


def _simple_kinds(annotation: Any) -> tuple[type, ...]:
    """The simple types an annotation stands for; empty when it is not made only of them."""
    if annotation is None or annotation is type(None):
        return (type(None),)
    if annotation in SIMPLE_TYPES:
        return (annotation,)
    origin = typing.get_origin(annotation)
    if origin in (list, dict):
        return (origin,)
    if origin is typing.Union or origin is types.UnionType:
        kinds: list[type] = []
        for member in typing.get_args(annotation):
            found = _simple_kinds(member)
            if not found:
                return ()
            kinds.extend(k for k in found if k not in kinds)
        return tuple(kinds)
    return ()


def _fits(value: Any, kind: type) -> bool:
    """Whether ``value`` is of the simple type ``kind`` (an int is a float; a bool is neither)."""
    if kind is type(None):
        return value is None
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, (int, float))
    if kind is dict:
        return isinstance(value, Mapping)
    return isinstance(value, kind)


def _check_first_parameter(func: Callable[..., Any], what: str, second: str | None = None) -> None:
    try:
        params = list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return
    if not params or params[0] != "ctx":
        raise InvalidRequestError(
            f"@{what} {getattr(func, '__name__', func)!r}: the first parameter must be ctx"
        )
    if second is not None and (len(params) < 2 or params[1] != second):
        raise InvalidRequestError(
            f"@{what} {getattr(func, '__name__', func)!r}: the second parameter must be {second}"
        )


@overload
def operation(func: Callable[..., Any], /) -> Operation: ...


@overload
def operation(
    func: None = None,
    toolbelt: bool = False,
    suffix_template: str = "",
    logging_handlers: Sequence[logging.Handler] | None = None,
    *,
    max_attempts: int | None = None,
    retry_interval: float | None = None,
    ignore_failure: bool | None = None,
    resources: Mapping[str, float] | None = None,
) -> Callable[[Callable[..., Any]], Operation]: ...


def operation(
    func: Callable[..., Any] | None = None,
    toolbelt: bool = False,
    suffix_template: str = "",
    logging_handlers: Sequence[logging.Handler] | None = None,
    *,
    max_attempts: int | None = None,
    retry_interval: float | None = None,
    ignore_failure: bool | None = None,
    resources: Mapping[str, float] | None = None,
) -> Operation | Callable[[Callable[..., Any]], Operation]:
    """Operation decorator: mark ``func(ctx, **arguments)`` as a unit of work.

    Args:
        func: The function (when used bare).
        toolbelt: Also hand the function ``toolbelt``, helpers for the job.
        suffix_template: ``str.format`` template over the arguments, appended to the
            task's name (``"-{sample}"``).
        logging_handlers: Handlers added to the operation's logger.
        max_attempts: Executions in all, -1 for "until it succeeds" (None: the runner's
            ``task_max_attempts``).
        retry_interval: Seconds between attempts (None: the runner's).
        ignore_failure: The task runs once (never retried); its failure is recorded and
            fails this task alone: its dependants still run.
        resources: What an attempt needs of a Dask worker (``{"GPU": 1}``); a request no
            worker of the cluster can meet is refused before anything runs.
    """

    def wrap(target: Callable[..., Any]) -> Operation:
        return Operation(
            target,
            toolbelt=toolbelt,
            suffix_template=suffix_template,
            logging_handlers=logging_handlers,
            max_attempts=max_attempts,
            retry_interval=retry_interval,
            ignore_failure=ignore_failure,
            resources=resources,
        )

    return wrap(func) if func is not None else wrap


@overload
def workflow(func: Callable[..., Any], /) -> Workflow: ...


@overload
def workflow(
    func: None = None, suffix_template: str = ""
) -> Callable[[Callable[..., Any]], Workflow]: ...


def workflow(
    func: Callable[..., Any] | None = None, suffix_template: str = ""
) -> Workflow | Callable[[Callable[..., Any]], Workflow]:
    """Workflow decorator: mark ``func(ctx, graph, **inputs)`` as a workflow.

    Args:
        func: The function (when used bare).
        suffix_template: ``str.format`` template over the inputs, appended to the
            execution's display name.
    """

    def wrap(target: Callable[..., Any]) -> Workflow:
        return Workflow(target, suffix_template=suffix_template)

    return wrap(func) if func is not None else wrap

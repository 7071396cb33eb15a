"""A metadata selection: the entities of one level under some given ones.

``populate`` plans one job per selected entity and ``coverage`` draws one row per
selected entity. A selection names entities of one kind (an experiment, a design, a list
of samples ...) and the *level* wanted below them, one of the collection levels::

    experiment_design  <-  experiment  <-  sample  <-  measurement

``select(store, level="measurement", experiment_id="E")`` is every measurement of every
sample of experiment E. The level defaults to the kind given (the entities themselves).
Reading costs one resolution of the given ids and one query per level walked down,
whatever the number of entities.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from datacatalog.errors import InvalidRequestError
from datacatalog.metadata import ARGUMENTS, ID_FIELDS, LEVELS, MetadataRegistry
from datacatalog.store import Store


@dataclass(frozen=True)
class Entity:
    """One selected metadata entity: its UUID and canonical id."""

    uuid: str
    id: str


@dataclass(frozen=True)
class Selection:
    """The entities of one level (``kind``) under the entities given, ordered by id."""

    kind: str
    entities: tuple[Entity, ...]
    given: tuple[str, ...]  # the UUIDs the selection was made under
    given_kind: str
    given_names: tuple[str, ...] = ()  # the ids or UUIDs as they were given

    @property
    def uuids(self) -> list[str]:
        """The selected entities' UUIDs, in the selection's order."""
        return [e.uuid for e in self.entities]

    def describe(self) -> str:
        """``measurements under experiment E`` (for messages)."""
        names = self.given_names or self.given
        under = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "")
        if self.kind == self.given_kind:
            return f"{self.kind}s {under}"
        return f"{self.kind}s under {self.given_kind} {under}"


def check_level(level: str | None) -> str | None:
    """``level`` when it is a collection level (or None), else a clear error."""
    if level is not None and level not in LEVELS:
        raise InvalidRequestError(
            f"unknown level {level!r}; choose one of {', '.join(LEVELS)}", level=str(level)
        )
    return level


def select(
    store: Store,
    *,
    level: str | None = None,
    metadata: MetadataRegistry | None = None,
    **arguments: str | Iterable[str] | None,
) -> Selection:
    """The entities of ``level`` under the entities named by ``arguments``.

    Args:
        store: The catalog's store.
        level: The level selected (default: the kind of the arguments).
        metadata: A registry to resolve the ids with (it remembers them).
        **arguments: Exactly one of ``experiment_design_id``, ``experiment_id``,
            ``sample_id``, ``measurement_id``: an id or UUID, or a list of them.

    Raises:
        InvalidRequestError: An unknown level, a level above the kind given, or a
            selection holding no entity.
        NotFoundError: An id that does not resolve (every one is named).
    """
    check_level(level)
    registry = metadata or MetadataRegistry(store)
    given = registry.resolve(**arguments)
    (argument,) = [k for k, v in arguments.items() if v not in (None, "", [], ())]
    given_kind = ARGUMENTS[argument]
    wanted = level or given_kind
    if LEVELS.index(wanted) < LEVELS.index(given_kind):
        raise InvalidRequestError(
            f"level {wanted!r} is above the {given_kind}s given; choose {given_kind} or a "
            f"level below it ({', '.join(LEVELS[LEVELS.index(given_kind) + 1 :]) or 'none'})",
            level=wanted,
        )
    if wanted == given_kind:
        entities = _named(store, wanted, {"uuid": {"$in": list(given)}})
    else:
        frontier = list(given)
        path = LEVELS[LEVELS.index(given_kind) + 1 : LEVELS.index(wanted)]
        for below in path:  # the levels between: their UUIDs only
            docs = store.find(below, {"child_of": {"$in": frontier}}, projection={"uuid": 1})
            frontier = [d["uuid"] for d in docs]
        entities = _named(store, wanted, {"child_of": {"$in": frontier}}) if frontier else ()
    value = arguments[argument]
    names = (value,) if isinstance(value, str) else tuple(value or ())
    selection = Selection(
        kind=wanted,
        entities=entities,
        given=tuple(given),
        given_kind=given_kind,
        given_names=names,
    )
    if not entities:
        raise InvalidRequestError(
            f"the selection holds no {wanted}: nothing is recorded under "
            f"{given_kind} {', '.join(given)} at that level",
            level=wanted,
        )
    return selection


def _named(store: Store, kind: str, query: dict[str, Any]) -> tuple[Entity, ...]:
    """The entities matching ``query`` with their canonical ids, ordered by id (one query)."""
    id_field = ID_FIELDS[kind]
    docs = store.find(kind, query, projection={"uuid": 1, id_field: 1}, sort=[(id_field, 1)])
    return tuple(Entity(d["uuid"], d[id_field]) for d in docs)

"""ReactorManagedPipelineJob: a :class:`ManagedPipelineJob` configured from its host.

A pipeline agent usually runs inside a host object (an actor, a function runtime) that
carries its configuration and identity. Any object shaped like this works::

    host.settings.mongodb      # the catalog: URI, settings dict or Database
    host.settings.pipelines    # {"pipeline_uuid": ..., "service_url": ...}
    host.uid                   # the agent's id            -> the job's ``agent``
    host.execid                # this execution's id       -> the job's ``task``
    host.nickname              # a short session name      -> the job's ``session``
    host.client                # optional storage client   -> ``agave``

``host.settings`` may be a dict or an object with attributes. Keyword arguments given
to the constructor win over the values read from the host.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from datacatalog.errors import InvalidRequestError
from datacatalog.managers.pipelinejobs.store import ManagedPipelineJob
from datacatalog.store import Store

__all__ = ["ReactorManagedPipelineJob"]

_MISSING = object()


def _read(source: Any, name: str, default: Any = _MISSING) -> Any:
    if isinstance(source, Mapping):
        value = source.get(name, default)
    else:
        value = getattr(source, name, default)
    if value is _MISSING:
        raise InvalidRequestError(f"the host has no {name!r} setting", setting=name)
    return value


def _attributes(value: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(value).items() if not k.startswith("_")}


def _pipelines(value: Any) -> Any:
    """An attribute object (a namespace) becomes a dict; mappings are kept."""
    if value is None or isinstance(value, Mapping) or not hasattr(value, "__dict__"):
        return value
    return _attributes(value)


def _mongodb(value: Any) -> Any:
    """An attribute object naming ``uri`` or ``host`` becomes a settings dict; URIs,
    dicts, databases and stores are kept as they are."""
    if isinstance(value, (str, Mapping, Store)) or not hasattr(value, "__dict__"):
        return value
    if hasattr(value, "uri") or hasattr(value, "host"):
        return _attributes(value)
    return value


class ReactorManagedPipelineJob(ManagedPipelineJob):
    """A managed pipeline job whose catalog, pipeline and identity come from ``reactor``.

    Args:
        reactor: The host object (see the module docstring).
        data: The job's parameters.
        *args: Not accepted (kept in the signature for compatibility).
        **kwargs: As for :class:`ManagedPipelineJob` (metadata ids, ``archive_patterns``,
            ``instanced``, ``settings`` ...); they win over the host's values.

    Raises:
        InvalidRequestError: The host lacks ``settings.mongodb``, ``settings.pipelines``
            or ``uid``, or an argument is wrong.
    """

    def __init__(
        self, reactor: Any, data: Mapping[str, Any] | None = None, *args: Any, **kwargs: Any
    ) -> None:
        settings = _read(reactor, "settings")
        mongodb = _mongodb(_read(settings, "mongodb"))
        pipelines = _pipelines(_read(settings, "pipelines"))
        options: dict[str, Any] = {
            "agent": _read(reactor, "uid"),
            "task": _read(reactor, "execid", None),
            "session": _read(reactor, "nickname", None),
        }
        options.update(kwargs)
        agave = options.pop("agave", _read(reactor, "client", None))
        instanced = bool(options.pop("instanced", False))
        self.reactor = reactor
        super().__init__(mongodb, pipelines, instanced, agave, *args, data=data, **options)

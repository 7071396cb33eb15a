"""Validated configuration for pipeline agents.

A pipeline agent is configured with a small mapping, usually the ``pipelines`` section
of its settings file::

    pipelines:
      pipeline_uuid: 106c46ff-8186-5756-a934-071f4497b58d   # the pipeline this agent runs
      service_url: https://jobs.example.org                 # webhook base URL (optional)
      job_manager_id: ...                                   # optional, kept for reference
      job_manager_nonce: ...

:class:`PipelineJobsConfig` (for an agent running one pipeline: ``pipeline_uuid`` is
required) and :class:`PipelinesConfig` (every key optional) check the mapping when they
are built: a missing required key, an unknown key or a value of the wrong type is an
:class:`~datacatalog.errors.InvalidRequestError` naming the key. Both read like a
mapping (``cfg["pipeline_uuid"]``, ``cfg.get("service_url")``, ``dict(cfg)``) and like an
object (``cfg.pipeline_uuid``; an optional key that was not given reads as ``None``).
They are immutable.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from datacatalog.errors import InvalidRequestError
from datacatalog.identifiers import is_uuid, kind_of

__all__ = ["CorePipelinesConfig", "PipelineJobsConfig", "PipelinesConfig"]

KEYS: tuple[str, ...] = (
    "pipeline_uuid",
    "service_url",
    "job_manager_id",
    "job_manager_nonce",
    "job_indexer_id",
    "job_indexer_nonce",
    "pipeline_manager_id",
    "pipeline_manager_nonce",
)
"""Every key a pipelines configuration may hold."""


class CorePipelinesConfig(Mapping[str, Any]):
    """Base of the configuration objects: checks keys and values, then reads like a dict.

    Args:
        **kwargs: The configuration keys (see :data:`KEYS`).

    Raises:
        InvalidRequestError: A required key is missing, a key is unknown, or a value is
            not a string (``pipeline_uuid`` must also be a pipeline UUID and
            ``service_url`` an http(s) URL).
    """

    REQUIRED: ClassVar[tuple[str, ...]] = ()
    """Keys that must be present (and not empty)."""

    __slots__ = ("_values",)

    _values: dict[str, str]

    def __init__(self, **kwargs: Any) -> None:
        name = type(self).__name__
        unknown = sorted(set(kwargs) - set(KEYS))
        if unknown:
            raise InvalidRequestError(
                f"{name}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(KEYS)}",
                keys=unknown,
            )
        given = {k: v for k, v in kwargs.items() if v is not None}
        missing = [k for k in self.REQUIRED if k not in given or given[k] == ""]
        if missing:
            raise InvalidRequestError(
                f"{name}: missing required key(s) {', '.join(missing)}", keys=missing
            )
        for key, value in given.items():
            if not isinstance(value, str):
                raise InvalidRequestError(
                    f"{name}: {key} must be a string, not {type(value).__name__}", key=key
                )
        pipeline = given.get("pipeline_uuid")
        if pipeline is not None and not (is_uuid(pipeline) and kind_of(pipeline) == "pipeline"):
            raise InvalidRequestError(
                f"{name}: pipeline_uuid {pipeline!r} is not a pipeline UUID", key="pipeline_uuid"
            )
        url = given.get("service_url")
        if url is not None:
            if not url.startswith(("http://", "https://")):
                raise InvalidRequestError(
                    f"{name}: service_url {url!r} must be an http:// or https:// URL",
                    key="service_url",
                )
            given["service_url"] = url.rstrip("/")
        object.__setattr__(self, "_values", given)

    # -- mapping ---------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    # -- attributes ------------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name in KEYS:
            return self._values.get(name)
        raise AttributeError(f"{type(self).__name__} has no key {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __repr__(self) -> str:
        shown = {k: ("***" if k.endswith("_nonce") else v) for k, v in self._values.items()}
        return f"{type(self).__name__}({shown!r})"

    def to_dict(self) -> dict[str, str]:
        """A plain dict of the keys that were given."""
        return dict(self._values)


class PipelinesConfig(CorePipelinesConfig):
    """Configuration shared by pipeline tools; every key is optional."""

    __slots__ = ()


class PipelineJobsConfig(CorePipelinesConfig):
    """Configuration of an agent that runs one pipeline: ``pipeline_uuid`` is required."""

    __slots__ = ()

    REQUIRED: ClassVar[tuple[str, ...]] = ("pipeline_uuid",)

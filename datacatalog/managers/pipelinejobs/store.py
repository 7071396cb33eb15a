"""ManagedPipelineJob: create (or attach to) the job for one run of a pipeline.

The job's identity is what it computes: the pipeline, the metadata it is a
``child_of`` and its parameters (``data``). :meth:`ManagedPipelineJob.setup` plans the
job with :meth:`datacatalog.jobs.JobService.plan` and creates it with
:meth:`~datacatalog.jobs.JobService.create`; running the same setup again attaches to
the same job and changes nothing.

::

    job = ManagedPipelineJob(
        mongodb, {"pipeline_uuid": PIPELINE}, sample_id="sample.tacc.20001", data={"k": 3}
    ).setup()
    job.run().finish()
    job.build_webhook()   # for a remote task to send its own events

Exactly one kind of metadata id (``experiment_design_id``, ``experiment_id``,
``sample_id`` or ``measurement_id``; a string or a list; canonical ids or typed UUIDs)
must be given, and every id must resolve: the constructor checks everything (it plans
the job, which writes nothing) so a wrong argument fails before any work is done.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from datacatalog import archive
from datacatalog.errors import InvalidRequestError
from datacatalog.jobs import JobPlan, references_in
from datacatalog.managers.pipelinejobs.config import PipelineJobsConfig
from datacatalog.managers.pipelinejobs.jobmanager import JobManager, Param
from datacatalog.metadata import ARGUMENTS

__all__ = ["ManagedPipelineJob"]

_P = TypeVar("_P", bound="ManagedPipelineJob")

_OPTIONS: frozenset[str] = frozenset(
    {
        "data",
        "archive_path",
        "archive_system",
        "archive_patterns",
        "product_patterns",
        "setup_archive_path",
        "session",
        "agent",
        "task",
        "inputs",
        "generated_by",
        "pipeline_uuid",
        "archive_collection_level",
        "level_store",
        "settings",
        *ARGUMENTS,
    }
)


def pipelines_config(pipelines: Any, pipeline_uuid: str | None = None) -> PipelineJobsConfig:
    """Turn the ``pipelines`` argument into a checked :class:`PipelineJobsConfig`.

    Args:
        pipelines: A mapping (a dict, a ``PipelineJobsConfig``) or ``None``.
        pipeline_uuid: Overrides ``pipelines["pipeline_uuid"]`` when given.
    """
    if pipelines is None:
        values: dict[str, Any] = {}
    elif isinstance(pipelines, Mapping):
        values = dict(pipelines)
    else:
        raise InvalidRequestError(
            f"pipelines must be a dict or a PipelineJobsConfig, not {type(pipelines).__name__}"
        )
    if pipeline_uuid is not None:
        values["pipeline_uuid"] = pipeline_uuid
    return PipelineJobsConfig(**values)


class ManagedPipelineJob(JobManager):
    """The job of one pipeline run: its linkages, archive path, events and webhook.

    Args:
        mongodb: A MongoDB URI, a settings dict, a pymongo ``Database`` or a ``Store``.
        pipelines: A dict or :class:`PipelineJobsConfig` with ``pipeline_uuid`` (the
            registered pipeline this agent runs) and optionally ``service_url``.
        instanced: Extend the archive path with a ``<session>-<UTC time>`` directory.
        agave: Kept for compatibility; not required.
        *args: Not accepted (kept in the signature for compatibility).
        **kwargs: ``experiment_design_id``, ``experiment_id``, ``sample_id``,
            ``measurement_id`` (exactly one kind); ``data`` (the job's parameters);
            ``archive_path`` (overrides the computed path); ``archive_system``;
            ``archive_patterns`` / ``product_patterns`` (index requests);
            ``setup_archive_path`` (create the directory at setup, default True);
            ``session``; ``agent``; ``task``; ``inputs`` (files and references computed
            upon, besides those found in ``data``); ``generated_by`` (extra process
            UUIDs); ``pipeline_uuid`` (overrides the configured one);
            ``archive_collection_level``; ``settings`` (a
            :class:`~datacatalog.settings.Settings`).

    Raises:
        InvalidRequestError: A missing or doubled kind of metadata id, an unknown
            keyword, a bad value.
        NotFoundError: The pipeline or a metadata id is not in the catalog.
    """

    COLL_PARAMS: ClassVar[list[tuple[str, str]]] = [
        ("measurement_id", "measurement"),
        ("sample_id", "sample"),
        ("experiment_id", "experiment"),
    ]
    INIT_LINK_PARAMS: ClassVar[list[tuple[str, bool, str, Any, str, str]]] = [
        ("pipeline_uuid", True, "uuid", None, "pipeline", "child_of")
    ]
    LINK_FIELDS: ClassVar[list[str]] = ["child_of", "acted_on", "acted_using", "generated_by"]
    METADATA_ARG_NAMES: ClassVar[tuple[str, ...]] = (
        "experiment_design_id",
        "experiment_id",
        "sample_id",
        "measurement_id",
    )
    PARAMS: ClassVar[list[Param]] = [
        ("agent", False, "agent", None),
        ("task", False, "task", None),
        ("session", False, "session", None),
        ("data", False, "data", {}),
        ("level_store", False, "level_store", "product"),
        ("archive_path", False, "archive_path", None),
        ("setup_archive_path", False, "setup_archive_path", True),
        ("archive_system", False, "archive_system", "data-sd2e-community"),
        ("archive_patterns", False, "archive_patterns", []),
        ("product_patterns", False, "product_patterns", []),
        ("uuid", False, "uuid", None),
    ]

    def __init__(
        self,
        mongodb: Any,
        pipelines: Any,
        instanced: bool = False,
        agave: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:
        unknown = sorted(set(kwargs) - _OPTIONS)
        if unknown:
            raise InvalidRequestError(
                f"{type(self).__name__}: unknown keyword argument(s) {', '.join(unknown)}",
                arguments=unknown,
            )
        given = [n for n in self.METADATA_ARG_NAMES if kwargs.get(n) not in (None, "", [], ())]
        if len(given) != 1:
            raise InvalidRequestError(
                "exactly one kind of metadata id is required "
                f"({', '.join(self.METADATA_ARG_NAMES)}); "
                + (f"got {', '.join(given)}" if given else "none was given"),
                arguments=given,
            )
        data = kwargs.get("data")
        if data is not None and not isinstance(data, Mapping):
            raise InvalidRequestError(f"data must be a dict, not {type(data).__name__}")
        self.pipelines = pipelines_config(pipelines, kwargs.get("pipeline_uuid"))
        super().__init__(
            mongodb,
            agave,
            *args,
            settings=kwargs.get("settings"),
            agent=kwargs.get("agent"),
        )
        self.metadata: dict[str, Any] = {given[0]: copy.deepcopy(kwargs[given[0]])}
        self.data: dict[str, Any] = copy.deepcopy(dict(data or {}))
        self.inputs: Any = copy.deepcopy(kwargs.get("inputs"))
        self.instanced = bool(instanced)
        self.session: str | None = kwargs.get("session")
        self.task: str | None = kwargs.get("task")
        self.setup_archive_path = bool(kwargs.get("setup_archive_path", True))
        self.archive_collection_level: str | None = kwargs.get("archive_collection_level")
        self.level_store: str = kwargs.get("level_store") or "product"
        self.created: bool | None = None
        self._explicit_path: str | None = kwargs.get("archive_path")
        self._requested: dict[str, Any] = {
            name: copy.deepcopy(kwargs.get(name))
            for name in ("archive_system", "archive_patterns", "product_patterns", "generated_by")
        }
        self._instance: str | None = None  # the instanced directory, once drawn
        try:
            plan = self._plan(self.data)
        except BaseException:
            self.close()
            raise
        self.pipeline_uuid = plan.pipeline_uuid
        self.child_of = plan.child_of
        self.acted_on = plan.acted_on
        self.acted_using = plan.acted_using
        self.generated_by = plan.generated_by
        self.archive_system = plan.archive_system
        self.archive_patterns = plan.archive_patterns
        self.product_patterns = plan.product_patterns
        # Computed now, as the replaced API did (its users read it before setup()); an
        # instanced path is claimed at setup, where a collision draws a new instance.
        self.archive_path = plan.archive_path
        self._instance = plan.archive_path.rsplit("/", 1)[1] if plan.instanced else None

    def _plan(self, data: Mapping[str, Any]) -> JobPlan:
        assert self.pipelines.pipeline_uuid is not None
        return self.catalog.jobs.plan(
            pipeline=self.pipelines.pipeline_uuid,
            metadata=self.metadata,
            data=data,
            inputs=self.inputs,
            archive_path=self._explicit_path,
            archive_system=self._requested["archive_system"],
            archive_patterns=self._requested["archive_patterns"],
            product_patterns=self._requested["product_patterns"],
            instanced=self.instanced,
            session=self.session,
            agent=self.agent,
            task=self.task,
            generated_by=self._requested["generated_by"],
            archive_collection_level=self.archive_collection_level,
            instance=self._instance,
        )

    def setup(self: _P, data: Mapping[str, Any] | None = None) -> _P:
        """Create the job, or attach to it unchanged if it exists.

        Args:
            data: More parameters, merged over the constructor's ``data`` (its keys win).
                The merged data is the job's ``data``: it feeds the job UUID and the
                archive path.

        Returns:
            ``self``, with ``uuid``, ``archive_path``, ``state``, the linkages and
            ``token`` set, and ``created`` telling whether this call created the job.
            An instanced job claims the path computed at construction (with the merged
            data); if another job holds it, a new instance name is drawn and
            ``archive_path`` says which.
        """
        if data is not None and not isinstance(data, Mapping):
            raise InvalidRequestError(f"data must be a dict, not {type(data).__name__}")
        merged = {**self.data, **copy.deepcopy(dict(data or {}))}
        plan = self._plan(merged)
        job, created = self.catalog.jobs.create(plan, setup_archive_path=self.setup_archive_path)
        self._populate(job)
        self.data = copy.deepcopy(job.data)
        self.session = job.session
        self.created = created
        return self

    def get_archive_path(self, instanced: bool = True, *args: Any, **kwargs: Any) -> str:
        """The job's archive path.

        An explicit ``archive_path`` is returned as given. Otherwise the path is computed
        from the pipeline, ``child_of`` and ``data``; it ends in an instanced directory
        only when ``instanced`` is true *and* the job is instanced (after :meth:`setup`,
        the stored instanced path; before it, the one computed at construction). Extra
        arguments are accepted for compatibility and ignored.
        """
        if self._explicit_path is not None:
            return self._explicit_path
        if instanced and self.instanced and self._job is not None:
            return self._job.archive_path
        assert self.pipeline_uuid is not None
        base = archive.archive_path(self.pipeline_uuid, self.child_of, self.data)
        if instanced and self.instanced:
            return f"{base}/{self._instance or self.instanced_directory(self.session)}"
        return base

    def instanced_directory(self, session: str | None = None) -> str:
        """A new instanced directory name, ``<session>-<YYYYMMDDTHHMMSSZ>`` (UTC).

        Args:
            session: The session name (default: this job's session, else a fresh
                adjective-animal name).
        """
        return archive.instanced_directory(session if session is not None else self.session)

    def refs_from_data_dict(
        self, data: Mapping[str, Any] | None = None, store: str = "files"
    ) -> list[str]:
        """Files (``store="files"``) or references (``store="references"``) named in the
        ``inputs`` and ``parameters`` of ``data`` (default: this job's data).

        Raises:
            InvalidRequestError: ``data`` is not a dict, or ``store`` is unknown.
        """
        if data is not None and not isinstance(data, Mapping):
            raise InvalidRequestError(f"data must be a dict, not {type(data).__name__}")
        return references_in(self.data if data is None else data, store=store)

    def build_webhook(self) -> str:
        """The URL a remote task POSTs this job's events to.

        ``<service_url>/jobs/<uuid>/events?token=<job token>``; the base URL is the
        configured ``pipelines["service_url"]``, else the settings' ``service_url``.
        """
        return self.catalog.jobs.webhook_url(
            self._require_uuid(), base_url=self.pipelines.get("service_url")
        )

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(uuid={self.uuid!r}, pipeline_uuid={self.pipeline_uuid!r}, "
            f"state={self.state!r})"
        )

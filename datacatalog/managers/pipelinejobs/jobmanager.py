"""JobManager: a client for one job, driving it through the state machine.

A :class:`JobManager` holds a connection to the catalog and, once loaded, the job's
UUID and a few of its fields (``state``, ``last_event``, ``archive_path`` ...). Every
method is one call into :class:`datacatalog.jobs.JobService`; the state machine, the
token checks and the atomic updates all live there.

Tokens: a manager that created or loaded the job in this process is its owner and may
send events without a token; a token given anyway (to the constructor, to
:meth:`JobManager.load` or to an event method) is always checked. Administrative
actions (``reset``, ``ready``, ``delete``, ``purge``) need an admin token.

::

    manager = JobManager("mongodb://db.example.org/catalog").load(job_uuid)
    manager.run({"step": "align"}).finish()
    manager.state                # 'FINISHED'

``run()`` on a job that ran takes the re-run decision of :mod:`datacatalog.jobs.reruns`:
a FAILED job runs again, one whose outputs still verify is up to date (``up_to_date``,
``verification``) and nothing runs.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from datacatalog import tokens
from datacatalog.catalog import Catalog
from datacatalog.errors import InvalidRequestError
from datacatalog.jobs import Actor, Job, PurgeReport
from datacatalog.jobs.reruns import Decision, Verification, begin, decide, record_up_to_date
from datacatalog.settings import Settings
from datacatalog.store import Store, connect

__all__ = ["JobManager", "open_catalog"]

_M = TypeVar("_M", bound="JobManager")

Param = tuple[str, bool, str, Any]
"""A parameter of the replaced API: (name, required, attribute, default)."""


def open_catalog(
    mongodb: Any, *, settings: Settings | None = None, agent: str | None = None
) -> tuple[Catalog, bool]:
    """Open a :class:`~datacatalog.catalog.Catalog` on ``mongodb``.

    Args:
        mongodb: A URI string, a settings dict, a pymongo ``Database`` or a ``Store``;
            ``None`` uses the configured store (the local catalog by default).
        settings: The configuration (default: :meth:`Settings.load`).
        agent: Who events sent through this catalog come from.

    Returns:
        The catalog, and whether it owns its store (so closing it is ours to do).
    """
    resolved = settings if settings is not None else Settings.load()
    if mongodb is None:
        mongodb = resolved.store_target()
    database: str | None = None
    if isinstance(mongodb, str) and not _uri_names_database(mongodb):
        database = resolved.mongodb_database
    store = connect(
        mongodb,
        database=database,
        timeout_ms=max(1, round(resolved.mongodb_timeout * 1000)),
        lock_timeout=resolved.lock_timeout,
        failover_budget=resolved.mongodb_failover,
    )
    catalog = Catalog(store, settings=resolved, actor=Actor.current(agent))
    return catalog, store is not mongodb


def _uri_names_database(uri: str) -> bool:
    scheme = uri.partition("://")[0].lower()
    if scheme not in ("mongodb", "mongodb+srv"):
        return False
    return bool(urlsplit(uri).path.strip("/"))


def event_parts(
    event: str | Mapping[str, Any], data: Mapping[str, Any] | None
) -> tuple[str, Mapping[str, Any] | None, str | None, str | None]:
    """Split an event name or document into ``(name, data, event_id, token)``.

    A document is ``{"name": ..., "data": ..., "event_id": ...}``; ``"event"`` is
    accepted for ``"name"`` and ``"uuid"`` for ``"event_id"``, as the replaced system
    sent them, and a ``"token"`` key is read when present.
    """
    if isinstance(event, str):
        return event.strip().lower(), data, None, None
    if not isinstance(event, Mapping):
        raise InvalidRequestError(
            f"an event must be a name or a document, not {type(event).__name__}"
        )
    name = event.get("name", event.get("event"))
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequestError("the event document has no 'name'")
    payload = event.get("data")
    if payload is None:
        payload = data
    event_id = event.get("event_id", event.get("uuid"))
    token = event.get("token")
    return (
        name.strip().lower(),
        payload,
        None if event_id is None else str(event_id),
        None if token is None else str(token),
    )


class JobManager:
    """A client for an existing or new job.

    Args:
        mongodb: A MongoDB URI, a settings dict (``{"uri", "database"}`` or
            ``{"host", "port", "username", "password", "database"}``), a pymongo
            ``Database`` or a :class:`datacatalog.store.Store`.
        agave: Kept for compatibility; may carry a storage client. Not required.
        *args: Not accepted (kept in the signature for compatibility).
        **kwargs: ``settings`` (a :class:`~datacatalog.settings.Settings`), ``uuid``
            (the job to work with; :meth:`load` fetches it), ``token`` (the job token,
            checked when the job is loaded) and ``agent`` (who sends the events).

    Raises:
        InvalidRequestError: An unknown keyword or an unexpected positional argument.
    """

    ADMIN_EVENTS: ClassVar[list[str]] = ["reset", "ready", "delete", "purge"]
    PARAMS: ClassVar[list[Param]] = [
        ("archive_path", False, "archive_path", None),
        ("archive_patterns", False, "archive_patterns", []),
        ("archive_system", False, "archive_system", "data-sd2e-community"),
        ("pipeline_uuid", False, "pipeline_uuid", None),
        ("token", False, "token", None),
        ("uuid", False, "uuid", None),
        ("state", False, "state", None),
        ("last_event", False, "last_event", None),
    ]

    _KEYWORDS: ClassVar[frozenset[str]] = frozenset({"settings", "uuid", "token", "agent"})
    _ENFORCE_TOKEN: ClassVar[bool] = False

    uuid: str | None
    state: str | None
    last_event: str | None
    archive_path: str | None
    archive_system: str | None
    archive_patterns: list[dict[str, Any]]
    product_patterns: list[dict[str, Any]]
    pipeline_uuid: str | None
    child_of: list[str]
    acted_on: list[str]
    acted_using: list[str]
    generated_by: list[str]
    token: str | None
    up_to_date: bool

    def __init__(self, mongodb: Any, agave: Any = None, *args: Any, **kwargs: Any) -> None:
        if args:
            raise InvalidRequestError(
                f"{type(self).__name__} takes no extra positional arguments; got {len(args)}"
            )
        unknown = sorted(set(kwargs) - self._KEYWORDS)
        if unknown:
            raise InvalidRequestError(
                f"{type(self).__name__}: unknown keyword argument(s) {', '.join(unknown)}",
                arguments=unknown,
            )
        self.agave = agave
        self.agent: str | None = kwargs.get("agent")
        self.catalog, self._owns_store = open_catalog(
            mongodb, settings=kwargs.get("settings"), agent=self.agent
        )
        self.store: Store = self.catalog.store
        self._job: Job | None = None
        self._caller_token: str | None = kwargs.get("token")
        self.uuid = None
        self.state = None
        self.last_event = None
        self.archive_path = None
        self.archive_system = None
        self.archive_patterns = []
        self.product_patterns = []
        self.pipeline_uuid = None
        self.child_of = []
        self.acted_on = []
        self.acted_using = []
        self.generated_by = []
        self.token = None
        # What the last run() found (datacatalog.jobs.reruns).
        self.up_to_date = False
        self.verification: Verification | None = None
        self.decision: Decision | None = None
        if kwargs.get("uuid") is not None:
            self.uuid = str(kwargs["uuid"])

    # -- loading ---------------------------------------------------------------------------

    def load(self: _M, job_uuid: str | None = None, token: str | None = None) -> _M:
        """Populate this manager from the stored job.

        Args:
            job_uuid: The job (default: the UUID this manager already holds).
            token: The job token; when given it is checked now and used for later events.

        Returns:
            ``self``.

        Raises:
            InvalidRequestError: No job UUID is known.
            NotFoundError: The job does not exist (or is deleted).
            ForbiddenError: ``token`` is not the job's token.
        """
        target = job_uuid if job_uuid is not None else self.uuid
        if target is None:
            raise InvalidRequestError(f"{type(self).__name__}.load needs a job UUID")
        job = self.catalog.jobs.get(target)
        if token is not None:
            tokens.check_job_token(self.catalog.jobs.secret, job.uuid, token)
            self._caller_token = token
        elif self._caller_token is not None:
            tokens.check_job_token(self.catalog.jobs.secret, job.uuid, self._caller_token)
        self._populate(job)
        return self

    def attach(self: _M, token: str | None = None) -> _M:
        """Load the job this manager holds the UUID of (see :meth:`load`)."""
        return self.load(self.uuid, token=token)

    def _populate(self, job: Job) -> None:
        self._job = job
        self.uuid = job.uuid
        self.state = job.state
        self.last_event = job.last_event
        self.archive_path = job.archive_path
        self.archive_system = job.archive_system
        self.archive_patterns = copy.deepcopy(job.archive_patterns)
        self.product_patterns = copy.deepcopy(job.product_patterns)
        self.pipeline_uuid = job.pipeline_uuid
        self.child_of = list(job.child_of)
        self.acted_on = list(job.acted_on)
        self.acted_using = list(job.acted_using)
        self.generated_by = list(job.generated_by)
        if not self._ENFORCE_TOKEN:
            # The owner of the job in this process may hand its token on (webhooks).
            self.token = self.catalog.jobs.job_token(job.uuid)

    def _require_uuid(self) -> str:
        if self.uuid is None:
            raise InvalidRequestError(
                f"{type(self).__name__} has no job yet: call setup() or load() first"
            )
        return self.uuid

    @property
    def archive_dir(self) -> Path | None:
        """The local directory of ``archive_path``, where the pipeline writes its outputs;
        None before the path is known or when the job's storage system is not local.

        ``archive_path`` is a catalog path (``/products/v2/…``) inside the storage
        system's root, not a directory of this machine: write under this one.
        """
        if self.archive_path is None:
            return None
        return self.catalog.storage.local_dir(self.archive_system, self.archive_path)

    @property
    def job(self) -> Job:
        """The job as last read or written by this manager (loads it if needed)."""
        if self._job is None:
            self.load()
        assert self._job is not None
        return self._job

    def refresh(self: _M) -> _M:
        """Read the job again."""
        self._populate(self.catalog.jobs.get(self._require_uuid()))
        return self

    # -- events ----------------------------------------------------------------------------

    def _event(
        self: _M,
        name: str,
        data: Mapping[str, Any] | None,
        token: str | None,
        event_id: str | None = None,
    ) -> _M:
        result = self.catalog.jobs.send(
            self._require_uuid(),
            name,
            data=data,
            event_id=event_id,
            token=token if token is not None else self._caller_token,
            require_token=self._ENFORCE_TOKEN,
        )
        self._populate(result.job)
        return self

    def handle(
        self: _M,
        event_name_or_doc: str | Mapping[str, Any],
        data: Mapping[str, Any] | None = None,
        token: str | None = None,
    ) -> _M:
        """Send any event, by name or as a document.

        Args:
            event_name_or_doc: An event name (``"run"``) or a document
                ``{"name": ..., "data": ..., "event_id": ...}``.
            data: Event data, when not given in the document.
            token: The job token (for ``reset``, ``ready``, ``delete`` and ``purge``:
                an admin token). A ``"token"`` in the document is used when this is
                ``None``.

        Returns:
            ``self``. Administrative names call the method of that name (so ``"reset"``
            resets and readies, like :meth:`reset`).
        """
        name, payload, event_id, doc_token = event_parts(event_name_or_doc, data)
        chosen = token if token is not None else doc_token
        if name in self.ADMIN_EVENTS:
            if name == "purge":
                self.purge(token=chosen)
                return self
            admin = getattr(self, name)
            admin(token=chosen)
            return self
        return self._event(name, payload, chosen, event_id)

    def run(
        self: _M,
        data: Mapping[str, Any] | None = None,
        token: str | None = None,
        *,
        event_id: str | None = None,
        force: bool = False,
        if_stale: str = "error",
        verify: str = "sha256",
    ) -> _M:
        """Start a run of the job, or find it up to date (:mod:`datacatalog.jobs.reruns`).

        A CREATED (or RUNNING) job gets ``run``. A FAILED job runs again: ``retry``, a new
        execution whose archive directory is cleared of what the failed run left. A job
        that ran (FINISHED or later) whose indexed outputs verify is **up to date**:
        nothing is sent but a ``reuse`` record, the state stays, and :attr:`up_to_date`
        is True with :attr:`verification` saying what was checked. With ``force=True``
        (or ``if_stale="rerun"`` when its outputs are missing or changed) it runs again:
        ``rerun``, its earlier file records superseded.

        Args:
            data: Event data.
            token: The job token (checked when given; required by
                :class:`ManagedPipelineJobInstance`).
            event_id: Idempotency key of the event that begins the run.
            force: Run again even when up to date.
            if_stale: ``"error"`` or ``"rerun"`` for a job whose outputs do not verify.
            verify: ``"sha256"`` (hash the outputs again) or ``"size"``.

        Raises:
            StaleOutputsError: The outputs of a job that ran are missing or changed (the
                error names them), and ``if_stale`` is ``"error"``.
            ActiveExecutionsError: A live driver or workflow run holds the job.
            InvalidTransitionError: The job is RETIRED, RESET, deleted, or its outputs
                are being indexed or validated (the message says what to do).
        """
        job_uuid = self._require_uuid()
        chosen = token if token is not None else self._caller_token
        if self._ENFORCE_TOKEN or chosen is not None:
            tokens.check_job_token(self.catalog.jobs.secret, job_uuid, chosen)
        decision = decide(
            self.catalog,
            job_uuid,
            force=force,
            if_stale=if_stale,
            verify=verify,
        )
        decision.raise_for_outcome()
        self.decision = decision
        self.verification = decision.verification
        self.up_to_date = decision.up_to_date
        if decision.up_to_date:
            record_up_to_date(self.catalog, decision, token=chosen, holder=self.agent)
            self._populate(self.catalog.jobs.get(job_uuid))
            return self
        if decision.event == "run":
            return self._event("run", data, token, event_id)
        self._populate(begin(self.catalog, decision, token=chosen, data=data, event_id=event_id))
        return self

    def update(
        self: _M,
        data: Mapping[str, Any] | None = None,
        token: str | None = None,
        *,
        event_id: str | None = None,
    ) -> _M:
        """Send ``update``: record progress without changing the state."""
        return self._event("update", data, token, event_id)

    def resource(
        self: _M,
        data: Mapping[str, Any] | None = None,
        token: str | None = None,
        *,
        event_id: str | None = None,
    ) -> _M:
        """Send ``resource``: a scheduler status (queued, staging ...); state unchanged."""
        return self._event("resource", data, token, event_id)

    def fail(
        self: _M,
        data: Mapping[str, Any] | None = None,
        token: str | None = None,
        *,
        event_id: str | None = None,
    ) -> _M:
        """Send ``fail``: the run ended in an error (→ FAILED)."""
        return self._event("fail", data, token, event_id)

    def finish(
        self: _M,
        data: Mapping[str, Any] | None = None,
        token: str | None = None,
        *,
        event_id: str | None = None,
    ) -> _M:
        """Send ``finish``: the run ended and its outputs are archived (→ FINISHED)."""
        return self._event("finish", data, token, event_id)

    def index(
        self: _M,
        data: Mapping[str, Any] | None = None,
        token: str | None = None,
        *,
        event_id: str | None = None,
    ) -> _M:
        """Send ``index``: indexing of the outputs began (→ INDEXING)."""
        return self._event("index", data, token, event_id)

    def indexed(
        self: _M,
        data: Mapping[str, Any] | None = None,
        token: str | None = None,
        *,
        event_id: str | None = None,
    ) -> _M:
        """Send ``indexed``: indexing of the outputs ended (→ FINISHED)."""
        return self._event("indexed", data, token, event_id)

    def validate(
        self: _M,
        data: Mapping[str, Any] | None = None,
        token: str | None = None,
        *,
        event_id: str | None = None,
    ) -> _M:
        """Send ``validate``: validation of the outputs began (→ VALIDATING)."""
        return self._event("validate", data, token, event_id)

    def validated(
        self: _M,
        data: Mapping[str, Any] | None = None,
        token: str | None = None,
        *,
        event_id: str | None = None,
    ) -> _M:
        """Send ``validated``: the outputs passed validation (→ VALIDATED)."""
        return self._event("validated", data, token, event_id)

    def reject(
        self: _M,
        data: Mapping[str, Any] | None = None,
        token: str | None = None,
        *,
        event_id: str | None = None,
    ) -> _M:
        """Send ``reject``: the outputs failed validation (→ REJECTED)."""
        return self._event("reject", data, token, event_id)

    def finalize(
        self: _M,
        data: Mapping[str, Any] | None = None,
        token: str | None = None,
        *,
        event_id: str | None = None,
    ) -> _M:
        """Send ``finalize``: the outputs are released for use (→ FINALIZED)."""
        return self._event("finalize", data, token, event_id)

    def retire(
        self: _M,
        data: Mapping[str, Any] | None = None,
        token: str | None = None,
        *,
        event_id: str | None = None,
    ) -> _M:
        """Send ``retire``: kept for the record, no longer current (→ RETIRED)."""
        return self._event("retire", data, token, event_id)

    # -- administrative actions ------------------------------------------------------------

    def reset(self: _M, token: str | None = None, *, ready: bool = True) -> _M:
        """Reset the job (empty its archive directory, unlink its files), then ready it.

        Args:
            token: An admin token.
            ready: Also send ``ready`` (RESET → CREATED); ``False`` leaves it RESET.

        Raises:
            UnauthorizedError: No admin token (ForbiddenError: a wrong one).
        """
        job_uuid = self._require_uuid()
        job = self.catalog.jobs.reset(job_uuid, token=token)
        if ready:
            job = self.catalog.jobs.ready(job_uuid, token=token)
        self._populate(job)
        return self

    def ready(self: _M, token: str | None = None) -> _M:
        """Make a RESET job CREATED again (needs an admin token)."""
        self._populate(self.catalog.jobs.ready(self._require_uuid(), token=token))
        return self

    def delete(self: _M, token: str | None = None) -> _M:
        """Soft-delete the job (needs an admin token); :meth:`undelete` restores it."""
        self._populate(self.catalog.jobs.delete(self._require_uuid(), token=token))
        return self

    def undelete(self: _M, token: str | None = None) -> _M:
        """Restore a soft-deleted job (needs an admin token)."""
        self._populate(self.catalog.jobs.undelete(self._require_uuid(), token=token))
        return self

    def purge(self, token: str | None = None, dry_run: bool = False) -> PurgeReport:
        """Remove the job, its file records and its archive contents for good.

        Args:
            token: An admin token.
            dry_run: Remove nothing; report what would go.

        Returns:
            What was (or would be) removed.
        """
        return self.catalog.jobs.purge(self._require_uuid(), token=token, dry_run=dry_run)

    # -- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """Release the connection, if this manager opened it."""
        if self._owns_store:
            self.catalog.close()

    def __enter__(self: _M) -> _M:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(uuid={self.uuid!r}, state={self.state!r})"

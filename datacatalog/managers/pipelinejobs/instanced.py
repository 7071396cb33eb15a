"""ManagedPipelineJobInstance: work with an existing job from outside its owner.

This is what an event handler or an indexing task uses: it knows a job UUID and the
job's token, nothing else. The job token is **required** for every event and for
indexing through this class: a missing token is an
:class:`~datacatalog.errors.UnauthorizedError`, a wrong one a
:class:`~datacatalog.errors.ForbiddenError`, and neither changes anything::

    instance = ManagedPipelineJobInstance(mongodb, job_uuid)
    instance.handle({"name": "finish", "data": {}, "event_id": "attempt-1"}, token=token)
    instance.index(token=token, fixity=True, transition=True)   # INDEXING → FINISHED
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from datacatalog import tokens
from datacatalog.managers.pipelinejobs.indexer import Indexer
from datacatalog.managers.pipelinejobs.jobmanager import Param

if TYPE_CHECKING:
    from datacatalog.indexing import IndexReport

__all__ = ["ManagedPipelineJobInstance"]

_I = TypeVar("_I", bound="ManagedPipelineJobInstance")


class ManagedPipelineJobInstance(Indexer):
    """An existing job, by UUID; its token is enforced on every change.

    Args:
        mongodb: A MongoDB URI, a settings dict, a pymongo ``Database`` or a ``Store``.
        uuid: The job's UUID.
        agave: Kept for compatibility; not required.
        **kwargs: ``token`` (the job token, checked now and used when a method is given
            none), ``settings``, ``agent``.

    Raises:
        NotFoundError: The job does not exist.
        ForbiddenError: ``token`` is given and wrong.
    """

    PARAMS: ClassVar[list[Param]] = [
        ("state", False, "state", None),
        ("archive_path", False, "archive_path", None),
        ("archive_system", False, "archive_system", "data-sd2e-community"),
        ("archive_patterns", False, "archive_patterns", []),
        ("product_patterns", False, "product_patterns", []),
        ("generated_by", False, "generated_by", []),
        ("child_of", False, "child_of", []),
        ("acted_on", False, "acted_on", []),
        ("acted_using", False, "acted_using", []),
        ("pipeline_uuid", False, "pipeline_uuid", None),
        ("last_event", False, "last_event", None),
    ]

    _ENFORCE_TOKEN: ClassVar[bool] = True

    def __init__(self, mongodb: Any, uuid: str, agave: Any = None, **kwargs: Any) -> None:
        super().__init__(mongodb, agave, uuid=uuid, **kwargs)
        try:
            self.load(uuid)
        except BaseException:
            self.close()  # a connection this instance opened is not left behind
            raise

    def _token(self, token: str | None) -> str | None:
        chosen = token if token is not None else self._caller_token
        tokens.check_job_token(self.catalog.jobs.secret, self._require_uuid(), chosen)
        return chosen

    # The signatures below follow the replaced API, which differs from the event methods
    # of JobManager (``handle`` takes a document, ``index``/``indexed`` index files).

    def handle(  # type: ignore[override]
        self: _I, event_doc: Mapping[str, Any] | str, token: str | None = None
    ) -> _I:
        """Apply an event document ``{"name": ..., "data": ..., "event_id": ...}``.

        Args:
            event_doc: The event (``"uuid"`` is accepted for ``"event_id"``, and a bare
                event name is accepted too).
            token: The job token (an admin token for ``reset``, ``ready``, ``delete``,
                ``purge``); a ``"token"`` in the document is used when this is ``None``.

        Raises:
            UnauthorizedError: No token (ForbiddenError: a wrong one).
            InvalidTransitionError: The event is not allowed from the job's state.
        """
        return super().handle(event_doc, None, token)

    def index(  # type: ignore[override]
        self,
        token: str | None = None,
        transition: bool = False,
        level: str = "1",
        fixity: bool = False,
        filters: Sequence[str] | None = None,
        permissive: bool = False,
    ) -> IndexReport:
        """Index the job's archive path (see :meth:`datacatalog.indexing.IndexingService.index`).

        Args:
            token: The job token.
            transition: Send ``index`` before and ``indexed`` after (→ FINISHED).
            level: Processing level of files no index request of the job covers.
            fixity: Compute sha256 checksums.
            filters: Patterns limiting which files are indexed (one pattern may be
                given as a plain string).
            permissive: Skip ``derived_from`` references that do not resolve.

        Returns:
            What was indexed.
        """
        chosen = self._token(token)
        report = self.indexing.index(
            self._require_uuid(),
            token=chosen,
            transition=transition,
            level=level,
            fixity=fixity,
            filters=None if filters is None else _patterns(filters),
            permissive=permissive,
        )
        self.refresh()
        return report

    def indexed(self: _I, token: str | None = None) -> _I:  # type: ignore[override]
        """Send ``indexed``: indexing is over (INDEXING → FINISHED)."""
        chosen = self._token(token)
        self._populate(self.indexing.indexed(self._require_uuid(), token=chosen))
        return self


def _patterns(filters: Sequence[str] | str) -> list[str]:
    """``filters`` as a list; a lone string is one pattern, not a list of characters."""
    return [filters] if isinstance(filters, str) else list(filters)

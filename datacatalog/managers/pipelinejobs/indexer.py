"""Indexer: file records for a job's archive path, and resolution of references.

An :class:`Indexer` is a :class:`~datacatalog.managers.pipelinejobs.jobmanager.JobManager`
for one loaded job whose helpers delegate to
:class:`datacatalog.indexing.IndexingService` (listing, matching, checksums and bulk
writes all live there)::

    indexer = Indexer(mongodb, uuid=job_uuid).load()
    indexer.file_job_relative_path("out/counts.csv")   # -> the file's UUID
    indexer.resolve_derived_references(["/uploads/run1/reads.fastq"])
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from datacatalog.managers.pipelinejobs.jobmanager import JobManager

if TYPE_CHECKING:
    from datacatalog.indexing import FileRecord, IndexingService

__all__ = ["Indexer"]


class Indexer(JobManager):
    """Listing and indexing of one job's archive path.

    Args:
        mongodb: A MongoDB URI, a settings dict, a pymongo ``Database`` or a ``Store``.
        agave: Kept for compatibility; not required.
        *args: Not accepted (kept in the signature for compatibility).
        **kwargs: As for :class:`JobManager` (``uuid``, ``token``, ``settings``,
            ``agent``); with ``uuid`` the job is loaded when first needed.
    """

    def __init__(self, mongodb: Any, agave: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(mongodb, agave, *args, **kwargs)

    @property
    def indexing(self) -> IndexingService:
        """The catalog's indexing service."""
        return self.catalog.indexing

    def file_job_relative_path(self, string_reference: str, check_exists: bool = True) -> str:
        """The UUID of the file at ``string_reference``, a path relative to the job's
        archive path.

        Args:
            string_reference: ``"out/a.csv"`` or ``"./out/a.csv"``.
            check_exists: Require the file to exist on the job's storage system.

        Raises:
            InvalidIndexingRequest: The path is absolute or leaves the archive path.
            NotFoundError: ``check_exists`` and the file is not there.
        """
        return self.indexing.file_job_relative_path(
            self.job, string_reference, check_exists=check_exists
        )

    def file_or_ref_identifier(self, string_reference: str) -> str:
        """The UUID of the file or reference ``string_reference`` names.

        Accepts what :meth:`resolve_derived_references` accepts: a typed UUID, an
        absolute catalog path, a storage URI, the URI or name of a stored reference, or
        a path relative to the job's archive path.

        Raises:
            UnresolvedReference: The string names nothing the catalog knows.
        """
        return self.resolve_derived_references([string_reference])[0]

    def index_if_exists(
        self, abs_filename: str, storage_system: str | None = None, check_exists: bool = True
    ) -> FileRecord | None:
        """Index one file (level ``"1"``, linked to this job when one is loaded) if it exists.

        Args:
            abs_filename: The file's absolute catalog path.
            storage_system: Its storage system (default: the job's, else the default one).
            check_exists: Return ``None`` when the file does not exist; ``False`` indexes
                it without looking.

        Returns:
            The file record, or ``None`` when the file does not exist.
        """
        return self.indexing.index_if_exists(
            abs_filename,
            storage_system=storage_system,
            check_exists=check_exists,
            job=self.job if self.uuid is not None else None,
        )

    def resolve_derived_references(
        self, reference_set: Iterable[str], permissive: bool = False
    ) -> list[str]:
        """Resolve references (paths relative to the archive path, absolute paths,
        storage URIs, web addresses, UUIDs) to the UUIDs of catalogued files and
        references.

        Args:
            reference_set: The references.
            permissive: Skip references that do not resolve instead of raising.

        Raises:
            UnresolvedReference: A reference does not resolve (and ``permissive`` is
                false); it is an ``InvalidIndexingRequest``.
        """
        if isinstance(reference_set, str):
            reference_set = [reference_set]
        return self.indexing.resolve_derived_references(
            self.job, list(reference_set), permissive=permissive
        )

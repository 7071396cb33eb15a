"""Resolving the derived references of product index requests to UUIDs.

A ``derived_from`` / ``derived_using`` reference may be a typed UUID, a catalog path, a
storage URI, a stored reference's ``uri`` or ``name``, or a path relative to the job's
archive path; :class:`ReferenceResolver` works out what each one needs, answers them all
with two queries, and then checks storage only for the paths still unknown.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from datacatalog.errors import NotFoundError
from datacatalog.identifiers import file_uuid, is_uuid, kind_of, normalize_path
from datacatalog.indexing.lookups import stored_size, uri_path
from datacatalog.indexrequests import IndexRequest, InvalidIndexingRequest, ProductIndexRequest
from datacatalog.jobs import FILE_SCHEMES, Job
from datacatalog.storage import StorageRegistry
from datacatalog.store import Document, Store

DERIVED_KINDS: tuple[str, ...] = ("file", "reference", "product")
"""Kinds of typed UUID a ``derived_from`` / ``derived_using`` reference may name."""


class UnresolvedReference(InvalidIndexingRequest):
    """A ``derived_from`` / ``derived_using`` reference names nothing the catalog knows."""


@dataclass(frozen=True)
class _Reference:
    """How one derived reference resolves, worked out before any query.

    In order: a stored reference with this ``uri`` (or ``name``, when ``by_name``);
    else ``uuid``; else the file at ``path`` if it is indexed or on storage; else
    ``failure`` is raised.
    """

    reference: str
    uuid: str | None = None
    lookup: bool = False
    by_name: bool = False
    path: str | None = None
    failure: InvalidIndexingRequest | None = None


class ReferenceResolver:
    """Resolves derived references for the indexing service (reads only, never writes)."""

    def __init__(self, store: Store, storage: StorageRegistry) -> None:
        self.store = store
        self.storage = storage

    def resolve(
        self, job: Job, references: Sequence[str], permissive: bool
    ) -> tuple[list[str], list[tuple[str, str]]]:
        """Resolve references in order; two queries in all, not two per reference."""
        if isinstance(references, (str, bytes)) or not isinstance(references, Sequence):
            raise InvalidIndexingRequest("derived references must be a list of strings")
        plans = [self._plan_reference(job, reference) for reference in references]
        stored = self._stored_references(plans)
        known = self._known_files(plans)
        found: dict[str, None] = {}
        dropped: list[tuple[str, str]] = []
        for plan in plans:
            try:
                found.setdefault(self._settle(job, plan, stored, known), None)
            except UnresolvedReference as exc:
                if not permissive:
                    raise
                dropped.append((plan.reference, str(exc)))
        return list(found), dropped

    def _plan_reference(self, job: Job, reference: object) -> _Reference:
        """What it takes to resolve ``reference`` (no I/O); malformed ones are refused."""
        if not isinstance(reference, str) or not reference:
            raise InvalidIndexingRequest(
                f"a derived reference must be a non-empty string, not {reference!r}"
            )
        if is_uuid(reference):
            kind = kind_of(reference)
            if kind in DERIVED_KINDS:
                return _Reference(reference, uuid=reference)
            return _Reference(
                reference,
                failure=UnresolvedReference(
                    f"derived reference {reference!r} is a {kind or 'untyped'} UUID; "
                    f"expected a {', '.join(DERIVED_KINDS)} UUID",
                    reference=reference,
                ),
            )
        if "://" in reference or reference.startswith("doi:"):
            path = uri_path(reference) if reference.startswith(FILE_SCHEMES) else None
            return _Reference(
                reference,
                lookup=True,
                uuid=file_uuid(path) if path is not None else None,
                failure=_unresolved(reference, "no stored reference has this URI"),
            )
        if reference.startswith("/"):
            return _Reference(
                reference,
                path=normalize_path(reference),
                failure=_unresolved(
                    reference,
                    f"no indexed file has this name and it is not on {job.archive_system!r}",
                ),
            )
        by_name = not reference.startswith(("./", "../")) and reference not in (".", "..")
        try:
            path = job_path(job, reference)
        except InvalidIndexingRequest as exc:
            if not by_name:
                raise
            # A stored reference may carry this name; refused only if none does.
            return _Reference(reference, lookup=True, by_name=True, failure=exc)
        return _Reference(
            reference,
            lookup=by_name,
            by_name=by_name,
            path=path,
            failure=_unresolved(
                reference,
                f"not a stored reference, and {path!r} (relative to the archive path) does "
                "not exist",
            ),
        )

    def _settle(
        self,
        job: Job,
        plan: _Reference,
        stored: Mapping[str, list[Document]],
        known: set[str],
    ) -> str:
        """The UUID ``plan`` resolves to, given the stored references and known files."""
        if plan.lookup:
            value = plan.reference
            by_uri = [d for d in stored.get(value, []) if d.get("uri") == value]
            by_name = [d for d in stored.get(value, []) if d.get("name") == value]
            if by_uri:
                return str(by_uri[0]["uuid"])
            if plan.by_name and len(by_name) > 1:
                raise _unresolved(value, "more than one stored reference has this name")
            if plan.by_name and by_name:
                return str(by_name[0]["uuid"])
        if plan.uuid is not None:
            return plan.uuid
        if plan.path is not None:
            uuid = file_uuid(plan.path)
            if uuid in known or self._exists(job.archive_system, plan.path):
                return uuid
        assert plan.failure is not None
        raise plan.failure

    def _stored_references(self, plans: Sequence[_Reference]) -> dict[str, list[Document]]:
        """Stored references whose ``uri`` (or, where allowed, ``name``) is looked up."""
        uris = sorted({p.reference for p in plans if p.lookup})
        names = sorted({p.reference for p in plans if p.lookup and p.by_name})
        if not uris:
            return {}
        query: dict[str, Any] = {"uri": {"$in": uris}}
        if names:
            query = {"$or": [query, {"name": {"$in": names}}]}
        found: dict[str, list[Document]] = {}
        docs = self.store.find("reference", query, projection={"uuid": 1, "uri": 1, "name": 1})
        for doc in docs:
            for value in {doc.get("uri"), doc.get("name")}:
                if isinstance(value, str):
                    found.setdefault(value, []).append(doc)
        return found

    def _known_files(self, plans: Sequence[_Reference]) -> set[str]:
        """UUIDs of the planned paths that have a file record."""
        uuids = sorted({file_uuid(p.path) for p in plans if p.path is not None})
        if not uuids:
            return set()
        docs = self.store.find("file", {"uuid": {"$in": uuids}}, projection={"uuid": 1})
        return {str(d["uuid"]) for d in docs}

    def _exists(self, system_name: str, path: str) -> bool:
        return stored_size(self.storage.get(system_name), path) is not None

    def file_job_relative_path(self, job: Job, reference: str, *, check_exists: bool = True) -> str:
        """Return the file UUID of ``reference``, a path relative to the job's archive path.

        Args:
            job: The job.
            reference: A relative path such as ``./out/x.csv`` or ``out/x.csv``.
            check_exists: Require the file to exist on the job's storage system.

        Raises:
            InvalidIndexingRequest: The path is absolute or leaves the archive path.
            NotFoundError: ``check_exists`` and the file is not there.
        """
        path = job_path(job, reference)
        if check_exists and not self._exists(job.archive_system, path):
            raise NotFoundError(
                f"{reference!r} ({path}) does not exist on storage system {job.archive_system!r}",
                path=path,
                system=job.archive_system,
            )
        return file_uuid(path)


def check_relative_references(job: Job, request: IndexRequest) -> None:
    """Refuse job-relative references that leave the archive path (no I/O)."""
    if not isinstance(request, ProductIndexRequest):
        return
    for reference in (*request.derived_from, *request.derived_using):
        if reference.startswith(("./", "../")) or reference in (".", ".."):
            job_path(job, reference)


def job_path(job: Job, reference: str) -> str:
    """The absolute catalog path of ``reference``, relative to the job's archive path."""
    if not isinstance(reference, str) or not reference or "\x00" in reference:
        raise InvalidIndexingRequest(f"invalid job-relative path {reference!r}")
    if reference.startswith("/") or "://" in reference:
        raise InvalidIndexingRequest(
            f"{reference!r} is not a path relative to the archive path", reference=reference
        )
    root = job.archive_path
    path = posixpath.normpath(posixpath.join(root, reference))
    prefix = root if root.endswith("/") else root + "/"
    if not path.startswith(prefix):
        raise InvalidIndexingRequest(
            f"reference {reference!r} leaves the archive path {root} of job {job.uuid}",
            reference=reference,
            archive_path=root,
        )
    return path


def _unresolved(reference: str, why: str) -> UnresolvedReference:
    return UnresolvedReference(
        f"derived reference {reference!r} does not resolve: {why}", reference=reference
    )

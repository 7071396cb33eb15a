"""Index rules: the requests of one run with its defaults applied, and the upsert a rule
makes for each file it matches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from datacatalog.clock import utc_now
from datacatalog.identifiers import kind_of
from datacatalog.indexing.records import infer_type
from datacatalog.indexrequests import (
    ArchiveIndexRequest,
    IndexRequest,
    InvalidIndexingRequest,
    ProductIndexRequest,
    index_request_from,
)
from datacatalog.jobs import Job
from datacatalog.storage import StorageSystem, StoredFile
from datacatalog.store import Document


@dataclass(frozen=True)
class Rule:
    """One index request, with the run's defaults applied and its references resolved."""

    request: IndexRequest
    level: str
    fixity: bool
    derived_from: tuple[str, ...] = ()
    derived_using: tuple[str, ...] = ()

    @property
    def product(self) -> bool:
        return isinstance(self.request, ProductIndexRequest)


def build_rules(
    job: Job,
    *,
    requests: Sequence[IndexRequest] | None,
    filters: Sequence[str] | None,
    level: str,
    fixity: bool,
) -> list[Rule]:
    """The rules of one run: ``requests``, else one request of ``filters``, else the
    job's own requests, else one that matches everything."""
    # Building the match-everything request checks the level once, for every rule.
    fallback = ArchiveIndexRequest(patterns=[], level=level, fixity=fixity)
    chosen: list[IndexRequest]
    if requests is not None:
        if not isinstance(requests, (list, tuple)):
            raise InvalidIndexingRequest("requests must be a list of index requests")
        chosen = [index_request_from(r) for r in requests]
    elif filters is not None:
        chosen = [ArchiveIndexRequest(patterns=filters, level=level, fixity=fixity)]
    else:
        chosen = job.index_requests() or [fallback]
    rules = []
    for request in chosen:
        for generator in request.generated_by:
            if kind_of(generator) is None:
                raise InvalidIndexingRequest(
                    f"generated_by {generator!r} of an index request is not a typed UUID",
                    value=generator,
                )
        rule_level = request.level if isinstance(request, ArchiveIndexRequest) else fallback.level
        rules.append(Rule(request, rule_level, request.fixity or fixity))
    return rules


def file_update(
    job: Job,
    system: StorageSystem,
    stored: StoredFile,
    rule: Rule,
    digest: str | None,
    uuid: str,
) -> Document:
    """The upsert that writes one file record (``uuid``: its UUID; links only ever added)."""
    fields: Document = {
        "name": stored.path,
        "storage_system": system.name,
        "size": stored.size,
        "level": rule.level,
        "type": infer_type(stored.path),
        "modified_date": stored.modified,
    }
    on_insert: Document = {"uuid": uuid, "_visible": True}
    if digest is not None:
        fields["sha256"] = digest
        fields["fixity_date"] = utc_now()
    else:
        # Indexing without fixity must not erase a checksum an earlier run recorded.
        on_insert["sha256"] = None
        on_insert["fixity_date"] = None
    if rule.request.note is not None:
        fields["note"] = rule.request.note
    else:
        on_insert["note"] = None
    links: Document = {
        "generated_by": {"$each": [job.uuid, *rule.request.generated_by]},
        "child_of": {"$each": list(job.child_of)},
    }
    if rule.product:
        links["derived_from"] = {"$each": list(rule.derived_from)}
        links["derived_using"] = {"$each": list(rule.derived_using)}
    else:
        on_insert["derived_from"] = []
        on_insert["derived_using"] = []
    return {"$set": fields, "$setOnInsert": on_insert, "$addToSet": links}

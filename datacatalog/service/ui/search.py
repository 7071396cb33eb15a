"""The search box: any UUID, canonical id or file path, to the page that shows it.

* a typed UUID is looked up in the collection of its kind (jobs, files, pipelines,
  metadata);
* an absolute path or a storage URI (``s3://bucket/...``) is a file's catalog path;
* anything else is a canonical id: an experiment design, experiment, sample or
  measurement id, or a pipeline id (every registration of it);
* when none of those names anything, the text is a fragment: files whose path holds it
  and jobs whose task holds it (any case; at most :data:`MAX_FRAGMENT_MATCHES` of each).

One match goes straight to its page; several are listed; none is a not-found page that
offers to search the jobs' UUIDs and tasks instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from datacatalog.errors import InvalidRequestError, NotFoundError
from datacatalog.identifiers import is_uuid, kind_of
from datacatalog.indexing import file_document
from datacatalog.metadata import ID_FIELDS, LEVELS
from datacatalog.service.ui.queries import MAX_SEARCH_CHARS
from datacatalog.store import Store

PAGES: dict[str, str] = {
    "pipelinejob": "/jobs/",
    "file": "/files/",
    "pipeline": "/pipelines/",
    **{kind: "/metadata/" for kind in LEVELS},
}
"""The dashboard path (under its mount point) of each kind that has a page."""

MAX_FRAGMENT_MATCHES = 50
"""Most files, and most jobs, a fragment search lists."""


@dataclass(frozen=True)
class Match:
    """One thing the search text names."""

    kind: str
    uuid: str
    label: str

    @property
    def path(self) -> str:
        """The match's page, relative to the dashboard's mount point."""
        return PAGES[self.kind] + self.uuid


def page_path(uuid: str) -> str | None:
    """The page of a typed UUID (None for kinds without one)."""
    kind = kind_of(uuid)
    return PAGES[kind] + uuid if kind in PAGES else None


def search(store: Store, text: str) -> list[Match]:
    """Everything ``text`` names, by kind and label.

    Raises:
        InvalidRequestError: ``text`` is empty or over the length limit.
    """
    text = text.strip()
    if not text:
        raise InvalidRequestError("type a UUID, a canonical id or a file path to search for")
    if len(text) > MAX_SEARCH_CHARS:
        raise InvalidRequestError(f"the search text is over {MAX_SEARCH_CHARS} characters")
    if is_uuid(text):
        return _by_uuid(store, text)
    exact = _exact(store, text)
    return exact if exact else _fragments(store, text)


def _exact(store: Store, text: str) -> list[Match]:
    if text.startswith("/") or "://" in text:
        try:
            record = file_document(store, text)
        except (NotFoundError, InvalidRequestError):
            return []
        return [Match("file", record["uuid"], record["name"])]
    matches = []
    for kind in LEVELS:
        field = ID_FIELDS[kind]
        for doc in store.find(kind, {field: text}, projection={"uuid": 1, field: 1}):
            matches.append(Match(kind, doc["uuid"], doc[field]))
    for doc in store.find(
        "pipeline", {"id": text}, sort=[("uuid", 1)], projection={"uuid": 1, "id": 1}
    ):
        matches.append(Match("pipeline", doc["uuid"], doc["id"]))
    return matches


def _fragments(store: Store, text: str) -> list[Match]:
    """Files whose catalog path holds ``text`` and jobs whose task does (any case)."""
    pattern = {"$regex": re.escape(text), "$options": "i"}
    files = store.find(
        "file",
        {"name": pattern, "_visible": True},
        sort=[("name", 1)],
        limit=MAX_FRAGMENT_MATCHES,
        projection={"uuid": 1, "name": 1},
    )
    jobs = store.find(
        "job",
        {"task": pattern, "_visible": True},
        sort=[("_properties.created_date", -1), ("uuid", 1)],
        limit=MAX_FRAGMENT_MATCHES,
        projection={"uuid": 1, "task": 1},
    )
    return [Match("file", d["uuid"], d["name"]) for d in files] + [
        Match("pipelinejob", d["uuid"], d["task"]) for d in jobs
    ]


def _by_uuid(store: Store, uuid: str) -> list[Match]:
    kind = kind_of(uuid)
    if kind == "pipelinejob":
        docs = store.find("job", {"uuid": uuid, "_visible": True}, projection={"uuid": 1})
        return [Match(kind, uuid, uuid)] if docs else []
    if kind == "file":
        docs = store.find("file", {"uuid": uuid}, projection={"uuid": 1, "name": 1})
        return [Match(kind, uuid, docs[0]["name"])] if docs else []
    if kind == "pipeline":
        docs = store.find("pipeline", {"uuid": uuid}, projection={"uuid": 1, "id": 1})
        return [Match(kind, uuid, docs[0]["id"])] if docs else []
    if kind in LEVELS:
        field = ID_FIELDS[kind]
        docs = store.find(kind, {"uuid": uuid}, projection={"uuid": 1, field: 1})
        return [Match(kind, uuid, docs[0][field])] if docs else []
    return []

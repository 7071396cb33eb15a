"""Why two jobs are different jobs: which identity inputs (pipeline, metadata, data) differ."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from datacatalog.jobs import job_document
from datacatalog.store import Store


@dataclass(frozen=True)
class JobDiff:
    """Why two jobs have different identities."""

    left: str
    right: str
    pipeline: tuple[str, str] | None
    child_of_only_left: list[str]
    child_of_only_right: list[str]
    data: dict[str, tuple[Any, Any]]

    @property
    def same_identity(self) -> bool:
        """True when the identity inputs are equal (the jobs are the same job)."""
        return (
            self.pipeline is None
            and not self.child_of_only_left
            and not self.child_of_only_right
            and not self.data
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "left": self.left,
            "right": self.right,
            "same_identity": self.same_identity,
            "pipeline": list(self.pipeline) if self.pipeline else None,
            "child_of": {
                "only_left": self.child_of_only_left,
                "only_right": self.child_of_only_right,
            },
            "data": {k: {"left": a, "right": b} for k, (a, b) in self.data.items()},
        }


_MISSING = "<absent>"


def diff_jobs(store: Store, left: str, right: str) -> JobDiff:
    """Compare the identity inputs of two jobs."""
    a, b = job_document(store, left), job_document(store, right)
    changed: dict[str, tuple[Any, Any]] = {}
    _diff_values(a.get("data", {}), b.get("data", {}), "data", changed)
    return JobDiff(
        left=left,
        right=right,
        pipeline=None
        if a["pipeline_uuid"] == b["pipeline_uuid"]
        else (a["pipeline_uuid"], b["pipeline_uuid"]),
        child_of_only_left=sorted(set(a["child_of"]) - set(b["child_of"])),
        child_of_only_right=sorted(set(b["child_of"]) - set(a["child_of"])),
        data=changed,
    )


def _diff_values(a: Any, b: Any, path: str, out: dict[str, tuple[Any, Any]]) -> None:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in sorted(set(a) | set(b)):
            _diff_values(a.get(key, _MISSING), b.get(key, _MISSING), f"{path}.{key}", out)
    elif a != b or type(a) is not type(b):
        out[path] = (a, b)

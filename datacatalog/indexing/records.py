"""The values indexing produces: file records, progress and the reports of a run.

Also the file type a record gets from its name (:func:`infer_type`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from datacatalog.schemas.fields import json_values, record_values

_COMPRESSIONS: dict[str, str] = {".gz": "GZIP", ".bz2": "BZIP2", ".xz": "XZ", ".zst": "ZSTD"}

FILE_TYPES: dict[str, str] = {
    ".bam": "BAM",
    ".bed": "BED",
    ".cram": "CRAM",
    ".csv": "CSV",
    ".fa": "FASTA",
    ".fasta": "FASTA",
    ".fastq": "FASTQ",
    ".fcs": "FCS",
    ".fq": "FASTQ",
    ".gb": "GENBANK",
    ".gff": "GFF",
    ".gff3": "GFF",
    ".gif": "GIF",
    ".gtf": "GTF",
    ".h5": "HDF5",
    ".hdf5": "HDF5",
    ".html": "HTML",
    ".jpeg": "JPEG",
    ".jpg": "JPEG",
    ".json": "JSON",
    ".log": "PLAIN",
    ".md": "MARKDOWN",
    ".mzml": "MZML",
    ".nc": "NETCDF",
    ".parquet": "PARQUET",
    ".pdf": "PDF",
    ".png": "PNG",
    ".sam": "SAM",
    ".sbol": "SBOL",
    ".tar": "TAR",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".tsv": "TSV",
    ".txt": "PLAIN",
    ".vcf": "VCF",
    ".xls": "XLS",
    ".xlsx": "XLSX",
    ".xml": "XML",
    ".yaml": "YAML",
    ".yml": "YAML",
    ".zip": "ZIP",
}
"""File type by name suffix (lower case); compressed files take their inner suffix's type."""

UNKNOWN_TYPE = "UNKNOWN"


def infer_type(name: str) -> str:
    """Return the file type of ``name`` from its suffix (``UNKNOWN`` if not in the table).

    ``reads.fastq.gz`` is ``FASTQ``; a compressed file with an unknown inner suffix is
    typed by its compression (``GZIP``, ``BZIP2``, ...).
    """
    base = posixpath.basename(name).lower()
    stem, suffix = posixpath.splitext(base)
    if suffix in _COMPRESSIONS:
        inner = posixpath.splitext(stem)[1]
        return FILE_TYPES.get(inner, _COMPRESSIONS[suffix])
    return FILE_TYPES.get(suffix, UNKNOWN_TYPE)


# -- value objects ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexProgress:
    """How far an indexing (or verify) run has got.

    Attributes:
        seen: Files looked at so far.
        matched: Of those, files an index request selected (verify: files that match
            their record).
        written: File records written so far (verify: fixity dates stamped).
        total: Files in the listing (verify: records to check), when known.
    """

    seen: int
    matched: int
    written: int
    total: int | None


@dataclass(frozen=True)
class FileRecord:
    """A file record as stored: the fields of ``schemas/file.json`` but the bookkeeping.

    Reading a document and writing JSON follow the schema
    (:mod:`datacatalog.schemas.fields`): its linkage lists are new lists (empty when
    absent), its dates ISO 8601 in JSON.
    """

    uuid: str
    name: str
    storage_system: str
    size: int | None
    sha256: str | None
    level: str
    type: str
    generated_by: list[str]
    derived_from: list[str]
    derived_using: list[str]
    child_of: list[str]
    modified_date: datetime | None
    fixity_date: datetime | None
    note: str | None

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> FileRecord:
        """Build from a stored document."""
        return cls(**record_values("file", doc))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return json_values("file", {f.name: getattr(self, f.name) for f in fields(self)})


@dataclass(frozen=True)
class IndexReport:
    """What one :meth:`IndexingService.index` run did.

    Attributes:
        job_uuid: The job.
        seen: Files listed under the archive path.
        matched: Files an index request selected.
        written: File records written (matched minus files that could not be read).
        files: UUIDs of the records written, in path order.
        skipped: ``(path, reason)`` of entries the listing left out (links out of the
            storage root, broken links, special files, unreadable directories).
        errors: ``(path or reference, message)`` of files that could not be read and of
            references dropped by a permissive run.
        batches: Bulk writes sent (database round trips for the records).
        state: The job's state at the end.
    """

    job_uuid: str
    seen: int
    matched: int
    written: int
    files: list[str]
    skipped: list[tuple[str, str]]
    errors: list[tuple[str, str]]
    batches: int
    state: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "job_uuid": self.job_uuid,
            "seen": self.seen,
            "matched": self.matched,
            "written": self.written,
            "files": list(self.files),
            "skipped": [{"path": path, "reason": reason} for path, reason in self.skipped],
            "errors": [{"path": path, "message": message} for path, message in self.errors],
            "batches": self.batches,
            "state": self.state,
        }


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of re-reading a job's indexed files (file UUIDs in each list).

    Attributes:
        job_uuid: The job.
        unchanged: The SHA-256 matches the record.
        changed: The SHA-256 differs, or the size does when no hash was recorded.
        missing: Gone from storage (or no longer readable).
        unhashed: No hash recorded and the size matches: present, content unchecked.
    """

    job_uuid: str
    unchanged: list[str]
    changed: list[str]
    missing: list[str]
    unhashed: list[str]

    @property
    def ok(self) -> bool:
        """True when no file changed or went missing."""
        return not self.changed and not self.missing

    def counts(self) -> dict[str, int]:
        """How many files fell in each list."""
        return {
            "unchanged": len(self.unchanged),
            "changed": len(self.changed),
            "missing": len(self.missing),
            "unhashed": len(self.unhashed),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "job_uuid": self.job_uuid,
            "ok": self.ok,
            "unchanged": list(self.unchanged),
            "changed": list(self.changed),
            "missing": list(self.missing),
            "unhashed": list(self.unhashed),
        }

"""Indexing: turning the files a job left in its archive path into catalog records.

After a job has run, its outputs sit under its archive path on its storage system.
Indexing lists that directory tree, picks files with index requests
(:mod:`datacatalog.indexrequests`) and upserts one *file record* per picked file::

    job 107…   archive path /products/v2/A/B/C on storage system "local"
      out/a.png  matches ArchiveIndexRequest([r"\\.png$"], level="1")
                 -> file 105…  name=/products/v2/A/B/C/out/a.png  level=1  type=PNG
                    sha256=…  generated_by=[job]  child_of=[the job's measurements]
      out/b.csv  matches ProductIndexRequest([r"\\.csv$"], derived_from=["./out/a.png"])
                 -> file 105…  … derived_from=[the file UUID of out/a.png]

:class:`IndexingService` is the entry point. The package's modules, one concept each:

- :mod:`~datacatalog.indexing.service`: the service (what :meth:`IndexingService.index`
  does, step by step);
- :mod:`~datacatalog.indexing.run`: one run over the archive path: listing, matching,
  hashing, batches, the report;
- :mod:`~datacatalog.indexing.writer`: the batch writer, one bulk write per batch, the
  next batch hashed while one is written;
- :mod:`~datacatalog.indexing.completion`: how a run ends (the one end write of an
  execution, a failure in the history) and how it stops when the job is reset, deleted
  or purged meanwhile;
- :mod:`~datacatalog.indexing.rules`: a run's index requests as rules, and the upsert a
  rule makes for a file;
- :mod:`~datacatalog.indexing.references`: resolving ``derived_from`` /
  ``derived_using`` references to UUIDs;
- :mod:`~datacatalog.indexing.verify`: reading indexed files again and comparing them
  with their records (:meth:`IndexingService.verify`);
- :mod:`~datacatalog.indexing.records`: file records, progress and reports, file types;
- :mod:`~datacatalog.indexing.lookups`: finding a file record by UUID, path or URI;
- :mod:`~datacatalog.indexing.fixity`: the pool of threads that hash files.
"""

from __future__ import annotations

# The names in ``__all__`` and, re-exported with ``as``, the constants callers import.
from datacatalog.indexing.fixity import DEFAULT_HASH_WORKERS as DEFAULT_HASH_WORKERS
from datacatalog.indexing.lookups import file_document as file_document
from datacatalog.indexing.records import FILE_TYPES as FILE_TYPES
from datacatalog.indexing.records import UNKNOWN_TYPE as UNKNOWN_TYPE
from datacatalog.indexing.records import (
    FileRecord,
    IndexProgress,
    IndexReport,
    VerifyReport,
    infer_type,
)
from datacatalog.indexing.references import DERIVED_KINDS, UnresolvedReference
from datacatalog.indexing.service import MAX_BATCH_SIZE as MAX_BATCH_SIZE
from datacatalog.indexing.service import MAX_ERROR_CHARS as MAX_ERROR_CHARS
from datacatalog.indexing.service import IndexingService
from datacatalog.indexing.verify import VERIFY_PROGRESS_EVERY as VERIFY_PROGRESS_EVERY

__all__ = [
    "DERIVED_KINDS",
    "FileRecord",
    "IndexProgress",
    "IndexReport",
    "IndexingService",
    "UnresolvedReference",
    "VerifyReport",
    "infer_type",
]

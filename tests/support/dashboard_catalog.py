"""A small catalog for the dashboard's tests, with hostile names and event data in it.

Pipelines ``tests.count`` (registered twice, two component lists) and ``tests.plot``; the
metadata chain design → experiment → samples S1, S2 → measurements M1, M2; and jobs:

* ``running``: sample S1, RUNNING, with event data holding a ``<script>`` tag;
* ``indexed``: measurement M2, FINISHED and indexed with sha256 and verified: a text file
  whose name holds a ``<script>`` tag and a CSV derived from it;
* ``failed``: the second ``tests.count`` registration, FAILED, another agent;
* ``reader``: reads the indexed text file (``acted_on``), CREATED.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datacatalog.catalog import Catalog
from datacatalog.identifiers import typed_uuid
from datacatalog.indexing import FileRecord
from datacatalog.indexrequests import ArchiveIndexRequest, ProductIndexRequest
from datacatalog.jobs import Job
from datacatalog.service import create_app
from datacatalog.settings import Settings
from datacatalog.store import Store

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

SECRET = "d" * 32
HOSTILE_NAME = "<script>alert('name')<script> & <b>x.txt"  # a file name has no "/"
HOSTILE_DATA = "<script>alert('event')</script>"
HOSTILE_TASK = "<img src=x onerror=alert('task')>"
METADATA = [
    {"experiment_design_id": "design.ui"},
    {"experiment_id": "experiment.ui", "experiment_design_id": "design.ui", "title": "<b>bold</b>"},
    {"sample_id": "sample.ui.1", "experiment_id": "experiment.ui"},
    {"sample_id": "sample.ui.2", "experiment_id": "experiment.ui"},
    {"measurement_id": "measurement.ui.1", "sample_id": "sample.ui.1"},
    {"measurement_id": "measurement.ui.2", "sample_id": "sample.ui.2"},
]
DESIGN = typed_uuid("design.ui", "experiment_design")
EXPERIMENT = typed_uuid("experiment.ui", "experiment")
S1 = typed_uuid("sample.ui.1", "sample")
S2 = typed_uuid("sample.ui.2", "sample")
M1 = typed_uuid("measurement.ui.1", "measurement")
M2 = typed_uuid("measurement.ui.2", "measurement")


@dataclass
class Built:
    """The catalog and what was put in it."""

    catalog: Catalog
    count_uuid: str
    count_v2_uuid: str
    plot_uuid: str
    running: Job
    indexed: Job
    failed: Job
    reader: Job
    text_file: FileRecord
    csv_file: FileRecord

    @property
    def store(self) -> Store:
        return self.catalog.store

    def job(self, data: dict[str, object], *, sample: str = "sample.ui.1") -> Job:
        plan = self.catalog.jobs.plan(
            pipeline=self.count_uuid, metadata={"sample_id": sample}, data=data, agent="agent.a"
        )
        job, _ = self.catalog.jobs.create(plan)
        return job


def build(store: Store, tmp_path: Path) -> Built:
    """Fill ``store`` with the catalog described in the module docstring."""
    settings = Settings.load(env={}, data_dir=tmp_path, secret=SECRET)
    catalog = Catalog(store, settings=settings)
    count, _ = catalog.pipelines.register(
        {"id": "tests.count", "components": [{"image": "count:1"}], "name": "Count reads"}
    )
    count_v2, _ = catalog.pipelines.register(
        {"id": "tests.count", "components": [{"image": "count:2"}]}
    )
    plot, _ = catalog.pipelines.register({"id": "tests.plot", "components": [{"image": "plot:1"}]})
    catalog.metadata.load(METADATA)
    jobs = catalog.jobs

    def create(
        pipeline: str, metadata: dict[str, str], data: dict[str, object], **kw: object
    ) -> Job:
        plan = jobs.plan(pipeline=pipeline, metadata=metadata, data=data, **kw)  # type: ignore[arg-type]
        return jobs.create(plan)[0]

    running = create(
        count.uuid, {"sample_id": "sample.ui.1"}, {"k": 1}, agent="agent.a", task="count reads"
    )
    jobs.send(running.uuid, "run", data={"note": HOSTILE_DATA})
    running = jobs.get(running.uuid)

    indexed = create(
        plot.uuid, {"measurement_id": "measurement.ui.2"}, {"bins": 8}, agent="agent.a",
        task=HOSTILE_TASK,
    )  # fmt: skip
    folder = Path(catalog.storage.get(indexed.archive_system).resolve(indexed.archive_path))
    (folder / HOSTILE_NAME).write_text("hello\n", encoding="utf-8")
    (folder / "table.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    jobs.send(indexed.uuid, "run")
    jobs.send(indexed.uuid, "finish")
    catalog.indexing.index(
        indexed.uuid,
        fixity=True,
        transition=True,
        requests=[
            ArchiveIndexRequest([r"\.txt$"], level="1"),
            ProductIndexRequest([r"\.csv$"], derived_from=[f"./{HOSTILE_NAME}"]),
        ],
    )
    catalog.indexing.verify(indexed.uuid)
    indexed = jobs.get(indexed.uuid)
    files = {f.name.rsplit("/", 1)[1]: f for f in catalog.indexing.files(indexed.uuid)}

    failed = create(count_v2.uuid, {"sample_id": "sample.ui.2"}, {}, agent="agent.b")
    jobs.send(failed.uuid, "fail", data={"error": "boom"})
    failed = jobs.get(failed.uuid)

    reader = create(
        count.uuid,
        {"measurement_id": "measurement.ui.1"},
        {"inputs": [files[HOSTILE_NAME].name]},
        agent="agent.c",
    )
    return Built(
        catalog=catalog,
        count_uuid=count.uuid,
        count_v2_uuid=count_v2.uuid,
        plot_uuid=plot.uuid,
        running=running,
        indexed=indexed,
        failed=failed,
        reader=reader,
        text_file=files[HOSTILE_NAME],
        csv_file=files["table.csv"],
    )


JOB_ROW = re.compile(r'<tr data-job="(107[0-9a-f-]{33})"')


class UI:
    """A client of the service over a built catalog."""

    def __init__(self, built: Built, client: TestClient) -> None:
        self.built = built
        self.client = client

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get("/ui" + path, params=params, follow_redirects=False)

    def listed(self, **params: Any) -> list[str]:
        response = self.get("/", **params)
        assert response.status_code == 200, response.text
        return JOB_ROW.findall(response.text)


@contextmanager
def dashboard(store: Store, data_dir: Path) -> Iterator[UI]:
    """The catalog :func:`build` makes, served as ``datacatalog serve`` mounts it (the
    ``ui`` fixture of ``tests/conftest.py``)."""
    built = build(store, data_dir)
    with TestClient(create_app(built.catalog)) as client:
        yield UI(built, client)


def is_page(response: Any, status: int = 200) -> str:
    """Assert an HTML page of ``status`` with the security headers; return its text."""
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    return str(response.text)

"""The dashboard's pages through FastAPI's test client, on both engines.

Every page is rendered over the catalog of :mod:`tests.support.dashboard_catalog` (hostile file
names, tasks and event data included) as ``datacatalog serve`` mounts it, under ``/ui``.
"""

from __future__ import annotations

import html
import json
import re
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from markupsafe import escape

from datacatalog.errors import InvalidRequestError
from datacatalog.jobs import Job
from datacatalog.service import create_app
from datacatalog.service.ui import create_ui
from tests.support.dashboard_catalog import (
    DESIGN,
    EXPERIMENT,
    HOSTILE_DATA,
    HOSTILE_NAME,
    HOSTILE_TASK,
    JOB_ROW,
    M1,
    M2,
    S1,
    UI,
    is_page,
)

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


def every_page(ui: UI) -> list[str]:
    b = ui.built
    jobs = [b.running, b.indexed, b.failed, b.reader]
    return [
        "/",
        *(f"/jobs/{j.uuid}" for j in jobs),
        f"/files/{b.text_file.uuid}",
        f"/files/{b.csv_file.uuid}",
        "/pipelines",
        *(f"/pipelines/{p}" for p in (b.count_uuid, b.count_v2_uuid, b.plot_uuid)),
        "/metadata",
        *(f"/metadata/{e}" for e in (DESIGN, EXPERIMENT, S1, M1, M2)),
    ]


# -- every page ------------------------------------------------------------------------------


def test_every_page_renders_with_security_headers(ui: UI) -> None:
    for path in every_page(ui):
        text = is_page(ui.get(path))
        assert "<title>" in text and "datacatalog" in text, path
    css = ui.get("/static/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    script = ui.get("/static/dashboard.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]


def test_the_mount_point_without_a_slash_redirects_to_the_jobs_page(ui: UI) -> None:
    response = ui.client.get("/ui", follow_redirects=False)
    assert response.status_code in (307, 308)
    assert response.headers["location"].endswith("/ui/")


def test_pages_link_only_to_the_dashboard_and_its_own_static_files(ui: UI) -> None:
    for path in every_page(ui):
        text = ui.get(path).text
        for target in re.findall(r'(?:href|src|action)="([^"]*)"', text):
            assert target.startswith("/ui/") or target.startswith("/ui?"), (path, target)
        assert "<script>" not in text, path  # no inline script: the CSP forbids it anyway


def test_touring_every_page_writes_nothing(ui: UI) -> None:
    store = ui.built.store
    kinds = ("job", "file", "pipeline", "sample", "measurement", "audit")
    before = {kind: store.find(kind, {}, sort=[("uuid", 1)]) for kind in kinds}
    for path in every_page(ui):
        ui.get(path)
    ui.get("/search", q="sample.ui.1")
    ui.get(f"/jobs/{ui.built.indexed.uuid}/prov.json")
    ui.get("/api/states", uuid=[ui.built.running.uuid])
    assert {kind: store.find(kind, {}, sort=[("uuid", 1)]) for kind in kinds} == before


# -- the jobs page ---------------------------------------------------------------------------


def test_jobs_page_lists_visible_jobs_newest_first(ui: UI) -> None:
    b = ui.built
    assert ui.listed() == [b.reader.uuid, b.failed.uuid, b.indexed.uuid, b.running.uuid]
    text = ui.get("/").text
    for label in ("tests.count", "tests.plot", "sample.ui.1", "measurement.ui.2", "agent.b"):
        assert label in text
    admin = b.catalog.jobs.admin_token()
    b.catalog.jobs.delete(b.failed.uuid, token=admin)
    assert b.failed.uuid not in ui.listed()


def test_jobs_page_shows_file_counts(ui: UI) -> None:
    text = ui.get("/").text
    row = text.split(f'data-job="{ui.built.indexed.uuid}"', 1)[1].split("</tr>", 1)[0]
    assert re.search(r'<td class="num">2</td>', row)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"state": "running"}, ["running"]),
        ({"state": "FAILED"}, ["failed"]),
        ({"pipeline": "tests.count"}, ["reader", "failed", "running"]),
        ({"pipeline": "tests.plot"}, ["indexed"]),
        ({"design": "design.ui"}, ["reader", "failed", "indexed", "running"]),
        ({"experiment": "experiment.ui"}, ["reader", "failed", "indexed", "running"]),
        ({"sample": "sample.ui.1"}, ["reader", "running"]),
        ({"sample": S1}, ["reader", "running"]),
        ({"measurement": "measurement.ui.2"}, ["indexed"]),
        ({"agent": "agent.b"}, ["failed"]),
        ({"q": "COUNT READS"}, ["running"]),
        ({"q": "onerror"}, ["indexed"]),
        ({"state": "CREATED", "sample": "sample.ui.1"}, ["reader"]),
        ({"state": "FINISHED", "pipeline": "tests.count"}, []),
    ],
)
def test_jobs_page_filters(ui: UI, params: dict[str, str], expected: list[str]) -> None:
    names = {getattr(ui.built, n).uuid: n for n in ("running", "indexed", "failed", "reader")}
    assert [names[u] for u in ui.listed(**params)] == expected


def test_jobs_page_filters_by_a_pipeline_uuid_and_a_uuid_prefix(ui: UI) -> None:
    b = ui.built
    assert ui.listed(pipeline=b.count_v2_uuid) == [b.failed.uuid]
    assert ui.listed(q=b.indexed.uuid[:12]) == [b.indexed.uuid]
    assert ui.listed(q=b.indexed.uuid.upper()) == [b.indexed.uuid]


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"state": "bogus"}, 400, "state &#39;BOGUS&#39; is not a job state"),
        ({"sort": "size"}, 400, "sort &#39;size&#39; is not one of"),
        ({"order": "sideways"}, 400, "order &#39;sideways&#39; must be"),
        ({"limit": "7"}, 400, "limit &#39;7&#39; must be one of"),
        ({"q": "x" * 201}, 400, "over 200 characters"),
        ({"sample": "sample.nowhere"}, 404, "unknown sample: sample.nowhere"),
        ({"pipeline": "tests.nothing"}, 404, "pipeline &#39;tests.nothing&#39; is not registered"),
        ({"measurement": S1}, 400, "is a sample UUID, not a measurement UUID"),
        ({"after": "not-a-cursor"}, 400, "after is not a paging cursor"),
        ({"after": "WyJ4Il0", "before": "WyJ4Il0"}, 400, "not both"),
    ],
)
def test_jobs_page_explains_a_bad_filter_on_the_page(
    ui: UI, params: dict[str, str], status: int, message: str
) -> None:
    text = is_page(ui.get("/", **params), status)
    assert message in text
    assert 'id="filters"' in text  # the form is there to fix it
    assert JOB_ROW.findall(text) == []


def test_jobs_page_sorts(ui: UI) -> None:
    b = ui.built
    newest_first = ui.listed()
    assert ui.listed(order="asc") == list(reversed(newest_first))
    by_state = ui.listed(sort="state")
    states = [b.catalog.jobs.get(u).state for u in by_state]
    assert states == sorted(states)
    assert ui.listed(sort="state", order="desc") == list(reversed(by_state))
    b.catalog.jobs.send(b.running.uuid, "update", data={"progress": 1})
    assert ui.listed(sort="modified")[0] == b.running.uuid


def test_sort_links_flip_the_order_and_keep_the_filters(ui: UI) -> None:
    text = html.unescape(ui.get("/", state="RUNNING").text)
    assert 'href="/ui/?state=RUNNING&sort=modified"' in text
    text = html.unescape(ui.get("/", sort="modified").text)
    assert 'href="/ui/?sort=modified&order=asc"' in text


def _pages(ui: UI, params: dict[str, str]) -> tuple[list[list[str]], list[str]]:
    """Follow the Next links from the first page; return each page's jobs and the links."""
    pages, links = [], []
    current = dict(params)
    while True:
        text = ui.get("/", **current).text
        pages.append(JOB_ROW.findall(text))
        found = re.search(r'<a rel="next" href="/ui/\?([^"]+)"', text)
        if found is None:
            return pages, links
        links.append(html.unescape(found.group(1)))
        current = dict(p.split("=", 1) for p in links[-1].split("&"))


def test_paging_walks_every_job_once_both_ways(ui: UI) -> None:
    b = ui.built
    for i in range(56):
        b.job({"i": i}, sample="sample.ui.2" if i % 2 else "sample.ui.1")
    for sort in ("created", "modified", "state"):
        everything = ui.listed(sort=sort, limit="200")
        assert len(everything) == 60
        pages, links = _pages(ui, {"sort": sort, "limit": "25"})
        assert [len(p) for p in pages] == [25, 25, 10], sort
        assert [u for p in pages for u in p] == everything, sort
        # Back again from the last page, through the Previous links.
        last = dict(p.split("=", 1) for p in links[-1].split("&"))
        text = ui.get("/", **last).text
        seen = [JOB_ROW.findall(text)]
        while (found := re.search(r'<a rel="prev" href="/ui/\?([^"]+)"', text)) is not None:
            params = dict(p.split("=", 1) for p in html.unescape(found.group(1)).split("&"))
            text = ui.get("/", **params).text
            seen.insert(0, JOB_ROW.findall(text))
        assert seen == pages, sort


def test_paging_with_a_filter(ui: UI) -> None:
    b = ui.built
    for i in range(30):
        b.job({"i": i}, sample="sample.ui.2")
    pages, _ = _pages(ui, {"sample": "sample.ui.2", "limit": "25"})
    # 30 new, the failed job (sample 2) and the indexed one (its measurement 2)
    assert [len(p) for p in pages] == [25, 7]


def test_a_page_reads_one_page_of_jobs_and_counts_a_bounded_number(
    ui: UI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datacatalog.service.ui.queries import MAX_COUNT

    b = ui.built
    for i in range(40):
        b.job({"i": i})
    store = b.store
    reads: list[int] = []
    counts: list[Any] = []
    original, original_aggregate = store.find, store.aggregate

    def find(kind: str, query: Any, **options: Any) -> Any:
        if kind == "job":
            reads.append(options.get("limit", 0))
        return original(kind, query, **options)

    def aggregate(kind: str, pipeline: Any) -> Any:
        if kind == "job":
            counts.append(pipeline)
        return original_aggregate(kind, pipeline)

    def count(*_: Any, **__: Any) -> int:
        raise AssertionError("the jobs page counted a whole collection")

    monkeypatch.setattr(store, "find", find)
    monkeypatch.setattr(store, "aggregate", aggregate)
    monkeypatch.setattr(store, "count", count)
    pages, _ = _pages(ui, {"limit": "25"})
    assert len(pages) == 2
    assert reads and all(0 < n <= 26 for n in reads), reads
    # The count for the filter stops at MAX_COUNT + 1 documents.
    assert counts and all({"$limit": MAX_COUNT + 1} in p for p in counts)


def test_the_jobs_page_counts_what_its_filter_matches(
    ui: UI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datacatalog.service.ui import queries

    b = ui.built
    everything = len(ui.listed(limit="200"))
    assert f"data-total>{everything} in all<" in ui.get("/").text
    failed = ui.get("/", state="FAILED").text
    assert "data-total>1 matching<" in failed
    monkeypatch.setattr(queries, "MAX_COUNT", 2)
    assert "data-total>2+ in all<" in ui.get("/").text
    assert b.failed.uuid in failed


# -- a job -----------------------------------------------------------------------------------


def test_job_page_shows_identity_state_and_history(ui: UI) -> None:
    b = ui.built
    text = is_page(ui.get(f"/jobs/{b.running.uuid}"))
    for expected in (
        b.running.uuid,
        "tests.count",
        "Count reads",
        "sample.ui.1",
        "experiment.ui",
        "design.ui",
        b.running.archive_path,
        "count reads",
        "agent.a",
        "RUNNING",
        "the pipeline is computing",
        "Held by",
    ):
        assert expected in text, expected
    # Only what a person can do: the running pipeline's own events are not offered.
    allowed = re.findall(r"<li><code>(\w+)</code>", text)
    assert allowed == ["reset"]
    assert f"datacatalog admin reset {b.running.uuid}" in text
    assert re.findall(r'<code class="event-name">(\w+)</code>', text) == ["create", "run"]
    assert "data-live-job" in text  # a running job's page refreshes itself


@pytest.mark.parametrize(
    ("state", "offered"),
    [
        ("CREATED", ["run", "reset"]),
        ("RUNNING", ["reset"]),
        ("FINISHED", ["index", "validate", "retire", "rerun", "reset"]),
        ("INDEXING", ["index", "rerun", "reset"]),
        ("VALIDATING", ["validated", "reject", "retire", "rerun", "reset"]),
        ("FAILED", ["retire", "retry", "reset"]),
        ("RESET", ["reset", "ready"]),
        ("RETIRED", ["reset"]),
    ],
)
def test_allowed_next_lists_what_a_person_can_do(state: str, offered: list[str]) -> None:
    from datacatalog.service.ui.details import next_events

    events = next_events(state, "107x")
    assert [e.name for e in events] == offered
    assert all("107x" in e.command and e.command.startswith("datacatalog ") for e in events)


def test_job_page_escapes_event_data_and_tasks(ui: UI) -> None:
    b = ui.built
    text = ui.get(f"/jobs/{b.running.uuid}").text
    assert HOSTILE_DATA not in text
    assert escape(HOSTILE_DATA) in text
    listing = ui.get("/").text
    assert HOSTILE_TASK not in listing
    assert "&lt;img src=x onerror=alert(&#39;task&#39;)&gt;" in listing


def test_job_page_lists_files_with_checksums_and_the_last_verify(ui: UI) -> None:
    b = ui.built
    text = is_page(ui.get(f"/jobs/{b.indexed.uuid}"))
    assert HOSTILE_NAME not in text
    assert escape(HOSTILE_NAME) in text
    assert "table.csv" in text
    assert b.text_file.sha256 is not None and b.text_file.sha256 in text
    assert text.count(b.text_file.fixity_date.strftime("%Y-%m-%d %H:%M:%S UTC")) >= 1
    assert "last matched its size and SHA-256" in text
    assert f'href="/ui/files/{b.text_file.uuid}"' in text
    assert "6 B" in text  # "hello\n"
    assert "data-live-job" not in text  # FINISHED: nothing to refresh


def test_job_page_shows_the_verify_counts_recorded_in_the_history(ui: UI) -> None:
    b = ui.built
    jobs = b.catalog.jobs
    jobs.send(b.indexed.uuid, "index")  # INDEXING takes update events, where verify reports
    folder = Path(b.catalog.storage.get(b.indexed.archive_system).resolve(b.indexed.archive_path))
    (folder / "table.csv").write_text("changed\n", encoding="utf-8")
    b.catalog.indexing.verify(b.indexed.uuid)
    text = ui.get(f"/jobs/{b.indexed.uuid}").text
    found = re.search(r'<p class="verify bad">Last verify (.*?)</p>', text, re.S)
    assert found is not None
    assert re.sub(r"\s+", " ", found.group(1)).endswith(
        "1 unchanged, 1 changed, 0 missing, 0 unhashed"
    )


def test_job_page_pages_through_many_files(ui: UI, monkeypatch: pytest.MonkeyPatch) -> None:
    from datacatalog.service.ui import pages

    monkeypatch.setattr(pages, "FILES_PER_PAGE", 1)
    b = ui.built
    first = ui.get(f"/jobs/{b.indexed.uuid}").text
    link = re.search(r'href="(/ui/jobs/[^"]+files_after=[^"]+)"', first)
    assert link is not None
    second = ui.client.get(html.unescape(link.group(1))).text
    assert "table.csv" not in first.split('<table class="files">')[1].split("</table>")[0]
    assert "table.csv" in second.split('<table class="files">')[1].split("</table>")[0]


def test_job_page_shows_the_lease_holder(ui: UI) -> None:
    from datacatalog.clock import utc_now

    b = ui.built
    held = ui.get(f"/jobs/{b.running.uuid}").text.split("Held by", 1)[1].split("</dd>", 1)[0]
    assert "(run event)" in held  # no lease recorded: whoever sent run
    # A lease as the stage driver records it on the job (datacatalog.jobs.leases), whose
    # holder stopped renewing it a second ago.
    now = utc_now()
    lease = {"holder": "driver-<1>", "kind": "driver", "host": "node7", "pid": 42,
             "since": now - timedelta(seconds=31), "renewed": now - timedelta(seconds=31),
             "expires": now - timedelta(seconds=1), "ttl": 30.0, "taken_over": None}  # fmt: skip
    b.store.update("job", {"uuid": b.running.uuid}, {"$set": {"lease": lease}})
    text = ui.get(f"/jobs/{b.running.uuid}").text
    held = text.split("Held by", 1)[1].split("</dd>", 1)[0]
    assert "driver-&lt;1&gt;" in held and "node7" in held and "(lease)" in held
    assert "the lease has lapsed" in held


def test_job_page_shows_the_workflow_executions_a_real_run_recorded(
    ui: UI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datacatalog.orchestrator.exceptions import WorkflowFailedError
    from datacatalog.orchestrator.executors import ThreadExecutor
    from datacatalog.orchestrator.workflow_runner import WorkflowRunner
    from tests.support import orchestrator_ops as ops
    from tests.support.clocks import FakeClock
    from tests.support.jobs import make_world

    b = ui.built
    assert "Workflow executions" not in ui.get(f"/jobs/{b.running.uuid}").text
    # A workflow run on a job of the same store, by the runner itself: the first task
    # fails twice with markup in its error, so its dependant never starts.
    world = make_world(b.store, tmp_path / "runner")
    job = world.new_job({"dashboard": "workflow"})
    runner = WorkflowRunner(
        world.catalog,
        None,
        None,
        service_id=job.uuid,
        workflow_name=ops.hostile_then_more,
        executor=ThreadExecutor(pool_size=2),
        task_retry_interval=0,
        clock=FakeClock(),
    )
    with pytest.raises(WorkflowFailedError):
        runner.execute()
    monkeypatch.setenv("PATH", "")  # no system Graphviz: the WebAssembly one draws
    text = is_page(ui.get(f"/jobs/{job.uuid}"))
    section = text.split('<section class="executions">', 1)[1].split("</section>", 1)[0]
    assert "hostile_then_more" in section and runner.execution_id in section
    assert "task_failed" in section
    assert re.findall(r'<tr data-task="([\w-]+)">', section) == [t.name for t in runner.tasks]
    failed, never = runner.tasks
    assert (failed.status, failed.attempts, never.status) == ("failed", 2, "pending")
    assert "2 / 2" in section
    after_row = section.split(f'<tr data-task="{never.name}">', 1)[1].split("</tr>", 1)[0]
    assert failed.name in after_row  # its dependency
    assert "&lt;script&gt;bad&lt;/script&gt;" in section and "<script>bad" not in section
    graph = re.search(r"data-task-graph>(.*?)</div>", section, re.S)
    assert graph is not None and never.name in graph.group(1)
    assert "failed · attempts 2/2" in graph.group(1) and "<script>bad" not in graph.group(1)
    assert "Workflow executions" not in ui.get(f"/jobs/{b.indexed.uuid}").text


def test_job_prov_download(ui: UI) -> None:
    b = ui.built
    response = ui.get(f"/jobs/{b.indexed.uuid}/prov.json")
    assert response.status_code == 200
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{b.indexed.uuid}.prov.json"'
    )
    document = json.loads(response.text)
    assert f"dc:{b.indexed.uuid}" in document["activity"]


def test_job_exports_openlineage_and_ro_crate(ui: UI) -> None:
    b = ui.built
    events = ui.get(f"/jobs/{b.indexed.uuid}/openlineage.jsonl")
    assert events.status_code == 200
    assert events.headers["content-disposition"].startswith("attachment;")
    lines = [json.loads(line) for line in events.text.splitlines()]
    assert [e["eventType"] for e in lines][:2] == ["START", "COMPLETE"]
    assert {e["run"]["runId"] for e in lines} == {b.indexed.uuid}
    crate = ui.get(f"/jobs/{b.indexed.uuid}/ro-crate.zip")
    assert crate.status_code == 200 and crate.headers["content-type"] == "application/zip"
    assert crate.content[:2] == b"PK"
    text = ui.get(f"/jobs/{b.indexed.uuid}").text
    assert f'href="/ui/jobs/{b.indexed.uuid}/ro-crate.zip"' in text
    # A run that is not over has no crate: the link is not offered, the route explains.
    assert "ro-crate.zip" not in ui.get(f"/jobs/{b.running.uuid}").text
    assert "an RO-Crate describes a finished run" in is_page(
        ui.get(f"/jobs/{b.running.uuid}/ro-crate.zip"), 409
    )


def test_unknown_deleted_and_malformed_jobs_get_clear_pages(ui: UI) -> None:
    b = ui.built
    missing = "107" + b.running.uuid[3:-4] + "0000"
    text = is_page(ui.get(f"/jobs/{missing}"), 404)
    assert f"job {missing} not found" in text
    b.catalog.jobs.delete(b.failed.uuid, token=b.catalog.jobs.admin_token())
    is_page(ui.get(f"/jobs/{b.failed.uuid}"), 404)
    is_page(ui.get(f"/jobs/{b.failed.uuid}/prov.json"), 404)
    text = is_page(ui.get(f"/jobs/{b.text_file.uuid}"), 400)
    assert "not a pipelinejob UUID" in text or "job" in text
    text = is_page(ui.get("/jobs/<script>"), 400)
    assert "<script>" not in text.replace('<script src="/ui/static/dashboard.js" defer>', "")


# -- lineage pictures ------------------------------------------------------------------------


def picture_links(text: str) -> list[str]:
    found = re.search(
        r"<div class=\"lineage-picture\" data-lineage-picture>(.*?)</div>", text, re.S
    )
    assert found is not None, "no lineage picture"
    svg = found.group(1)
    assert "<script" not in svg.lower()
    return re.findall(r'xlink:href="([^"]+)"', svg)


def test_job_page_draws_its_lineage_with_each_node_linked(
    ui: UI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "")  # no system Graphviz: the WebAssembly one draws
    b = ui.built
    text = ui.get(f"/jobs/{b.indexed.uuid}").text
    links = picture_links(text)
    for target in (
        f"/ui/files/{b.text_file.uuid}",
        f"/ui/files/{b.csv_file.uuid}",
        f"/ui/pipelines/{b.plot_uuid}",
        f"/ui/metadata/{M2}",
        f"/ui/jobs/{b.reader.uuid}",  # downstream: it reads the text file
    ):
        assert target in links, target
    # The hostile file name is SVG text, escaped, never markup.
    assert "&lt;script&gt;alert(&#39;name&#39;)&lt;script&gt; &amp; &lt;b&gt;x.txt" in text


def test_file_page_draws_its_lineage(ui: UI) -> None:
    b = ui.built
    links = picture_links(ui.get(f"/files/{b.csv_file.uuid}").text)
    assert f"/ui/files/{b.text_file.uuid}" in links
    assert f"/ui/jobs/{b.indexed.uuid}" in links


def test_without_graphviz_the_pages_keep_their_lists(
    ui: UI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datacatalog import provenance
    from datacatalog.errors import UnavailableError

    def no_dot(*_: Any, **__: Any) -> str:
        raise UnavailableError("Graphviz could not draw the lineage graph")

    monkeypatch.setattr(provenance, "to_svg", no_dot)
    b = ui.built
    text = is_page(ui.get(f"/jobs/{b.indexed.uuid}"))
    assert "data-lineage-picture" not in text
    assert "No picture: Graphviz could not draw the lineage graph" in text
    assert f'href="/ui/files/{b.csv_file.uuid}"' in text.split("<h3>Downstream</h3>", 1)[1]


# -- a file ----------------------------------------------------------------------------------


def test_file_page_shows_the_record_storage_and_lineage(ui: UI) -> None:
    b = ui.built
    record = b.text_file
    text = is_page(ui.get(f"/files/{record.uuid}"))
    assert escape(record.name) in text and record.name not in text
    root = b.catalog.storage.get(record.storage_system).url.rstrip("/")
    assert escape(root + record.name) in text
    assert record.sha256 is not None and record.sha256 in text
    for expected in (b.indexed.uuid, "tests.plot", "measurement.ui.2", "sample.ui.2"):
        assert expected in text, expected
    # Downstream: the CSV made from it, and the job that reads it.
    assert f'href="/ui/files/{b.csv_file.uuid}"' in text
    assert f'href="/ui/jobs/{b.reader.uuid}"' in text


def test_file_page_of_a_derived_file_links_upstream(ui: UI) -> None:
    b = ui.built
    text = ui.get(f"/files/{b.csv_file.uuid}").text
    upstream = text.split("<h3>Upstream</h3>", 1)[1].split("<h3>Downstream</h3>", 1)[0]
    assert f'href="/ui/files/{b.text_file.uuid}"' in upstream
    assert "nothing was made from this file" in text


def test_unknown_files_get_not_found_pages(ui: UI) -> None:
    missing = "105" + ui.built.text_file.uuid[3:-4] + "0000"
    assert f"file {missing!r}".replace("'", "&#39;") in is_page(ui.get(f"/files/{missing}"), 404)
    is_page(ui.get(f"/files/{ui.built.running.uuid}"), 400)


# -- pipelines and metadata ------------------------------------------------------------------


def test_pipelines_pages(ui: UI) -> None:
    b = ui.built
    text = is_page(ui.get("/pipelines"))
    for uuid in (b.count_uuid, b.count_v2_uuid, b.plot_uuid):
        assert f'href="/ui/pipelines/{uuid}"' in text
    text = is_page(ui.get(f"/pipelines/{b.count_uuid}"))
    assert "count:1" in text and "Count reads" in text
    assert JOB_ROW.findall(text) == [b.reader.uuid, b.running.uuid]
    assert f'href="/ui/?pipeline={b.count_uuid}"' in text
    is_page(ui.get("/pipelines/106" + b.count_uuid[3:-4] + "0000"), 404)


def test_metadata_pages_walk_the_tree(ui: UI) -> None:
    b = ui.built
    text = is_page(ui.get("/metadata"))
    assert f'href="/ui/metadata/{DESIGN}"' in text
    text = is_page(ui.get(f"/metadata/{DESIGN}"))
    assert f'href="/ui/metadata/{EXPERIMENT}"' in text
    text = is_page(ui.get(f"/metadata/{EXPERIMENT}"))
    assert f'href="/ui/metadata/{S1}"' in text and "sample.ui.2" in text
    assert "&lt;b&gt;bold&lt;/b&gt;" in text and "<b>bold</b>" not in text
    assert f'href="/ui/?experiment={EXPERIMENT}"' in text
    text = is_page(ui.get(f"/metadata/{S1}"))
    assert f'href="/ui/metadata/{M1}"' in text
    assert JOB_ROW.findall(text) == [b.running.uuid]
    breadcrumb = text.split('class="breadcrumb"', 1)[1].split("</nav>", 1)[0]
    assert "design.ui" in breadcrumb and "experiment.ui" in breadcrumb
    text = is_page(ui.get(f"/metadata/{M1}"))
    assert JOB_ROW.findall(text) == [b.reader.uuid]
    is_page(ui.get(f"/metadata/{b.running.uuid}"), 400)
    is_page(ui.get("/metadata/104" + M2[3:-4] + "0000"), 404)


# -- search ----------------------------------------------------------------------------------


def test_search_goes_to_the_one_match(ui: UI) -> None:
    b = ui.built
    cases = {
        b.running.uuid: f"/ui/jobs/{b.running.uuid}",
        b.text_file.uuid: f"/ui/files/{b.text_file.uuid}",
        b.text_file.name: f"/ui/files/{b.text_file.uuid}",
        f"local://{b.csv_file.name}": f"/ui/files/{b.csv_file.uuid}",
        "sample.ui.2": f"/ui/metadata/{typed('sample.ui.2', 'sample')}",
        M2: f"/ui/metadata/{M2}",
        "tests.plot": f"/ui/pipelines/{b.plot_uuid}",
        f"  {b.plot_uuid} ": f"/ui/pipelines/{b.plot_uuid}",
    }
    for text, target in cases.items():
        response = ui.get("/search", q=text)
        assert response.status_code == 303, (text, response.text[:500])
        assert response.headers["location"] == target


def typed(text: str, kind: str) -> str:
    from datacatalog.identifiers import typed_uuid

    return typed_uuid(text, kind)


def test_search_lists_several_matches_and_explains_none(ui: UI) -> None:
    b = ui.built
    text = is_page(ui.get("/search", q="tests.count"))
    assert f'href="/ui/pipelines/{b.count_uuid}"' in text
    assert f'href="/ui/pipelines/{b.count_v2_uuid}"' in text
    text = is_page(ui.get("/search", q="<script>nothing"), 404)
    assert "&lt;script&gt;nothing" in text and "<script>nothing" not in text
    assert 'href="/ui/?q=%3Cscript%3Enothing"' in text
    b.catalog.jobs.delete(b.failed.uuid, token=b.catalog.jobs.admin_token())
    is_page(ui.get("/search", q=b.failed.uuid), 404)
    is_page(ui.get("/search", q="/no/such/file"), 404)
    assert "type a UUID" in is_page(ui.get("/search", q="  "), 400)
    assert "over 200 characters" in is_page(ui.get("/search", q="x" * 300), 400)


# -- live states, errors ---------------------------------------------------------------------


def test_live_states(ui: UI) -> None:
    b = ui.built
    response = ui.get("/api/states", uuid=[b.running.uuid, b.indexed.uuid])
    assert response.status_code == 200
    assert response.headers["content-security-policy"]
    jobs = {j["uuid"]: j for j in response.json()["jobs"]}
    assert jobs[b.running.uuid]["state"] == "RUNNING" and jobs[b.running.uuid]["live"]
    assert jobs[b.indexed.uuid]["state"] == "FINISHED" and not jobs[b.indexed.uuid]["live"]
    b.catalog.jobs.send(b.running.uuid, "finish")
    (job,) = ui.get("/api/states", uuid=[b.running.uuid]).json()["jobs"]
    assert job["state"] == "FINISHED" and job["revision"] > jobs[b.running.uuid]["revision"]
    is_page(ui.get("/api/states", uuid=["nonsense"]), 400)
    is_page(ui.get("/api/states", uuid=[b.running.uuid] * 201), 400)
    is_page(ui.get("/api/states"), 400)


def test_unknown_pages_and_methods_get_html_error_pages(ui: UI) -> None:
    text = is_page(ui.get("/no/such/page"), 404)
    assert "there is no page at /ui/no/such/page" in text
    text = is_page(ui.client.post("/ui/"), 405)
    assert "Method not allowed" in text
    # The API beside the dashboard keeps its JSON errors.
    api = ui.client.get("/jobs/not-a-uuid")
    assert api.headers["content-type"].startswith("application/json")


def test_an_unexpected_failure_is_a_plain_500_page(ui: UI, monkeypatch: pytest.MonkeyPatch) -> None:
    from datacatalog.service.ui import lookups

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(lookups, "metadata_entity", broken)
    with TestClient(create_app(ui.built.catalog), raise_server_exceptions=False) as client:
        response = client.get(f"/ui/metadata/{S1}")
    text = is_page(response, 500)
    assert "secret internals" not in text
    assert "the service log has the details" in text


def test_the_refresh_interval_must_be_positive(ui: UI) -> None:
    for bad in (0, -1.0, "5"):
        with pytest.raises(InvalidRequestError, match="refresh interval"):
            create_ui(ui.built.catalog, refresh_seconds=bad)  # type: ignore[arg-type]


# -- why a job failed, and how long jobs took --------------------------------------------------


def _failed_command(ui: UI) -> Job:
    """A job failed by the stage driver: its command ended with exit code 3."""
    from datacatalog.cli.run import CommandFailed
    from datacatalog.driver import Driver

    stderr = [f"line {i}" for i in range(30)] + ["<script>alert('err')</script>", "Killed"]

    def execute(_driver: Any, _payload: Any) -> None:
        raise CommandFailed(["python3", "analyze.py"], 3, stderr)

    job = ui.built.job({"fails": True})
    driver = Driver(job.uuid, catalog=ui.built.catalog, execute=execute)
    driver.start()
    driver.wait_for_completion(timeout=30)
    return ui.built.catalog.jobs.get(job.uuid)


def test_a_failed_jobs_page_says_why_at_the_top(ui: UI) -> None:
    job = _failed_command(ui)
    assert job.state == "FAILED"
    text = is_page(ui.get(f"/jobs/{job.uuid}"))
    section = text.split('<section class="failure" role="alert" data-failure>', 1)[1]
    section = section.split("</section>", 1)[0]
    # Before every other section of the page.
    assert text.index("data-failure>") < text.index("<h2>Identity</h2>")
    assert "<code>callback_raised</code> in the <code>execute</code> phase" in section
    assert "Exit code</dt><dd><code>3</code>" in section
    assert "CommandFailed: python3 ended with exit code 3" in section
    tail = re.search(r"<pre class=\"tail\" data-failure-tail>(.*?)</pre>", section, re.S)
    assert tail is not None and "End of the stderr" in section
    lines = tail.group(1).splitlines()
    assert len(lines) == 20 and lines[-1] == "Killed"  # the end, not all of it
    assert "&lt;script&gt;alert(&#39;err&#39;)&lt;/script&gt;" in lines[-2]
    # Other pages' jobs show nothing of the kind.
    assert "data-failure" not in ui.get(f"/jobs/{ui.built.running.uuid}").text


def test_the_jobs_list_shows_a_failure_line_and_durations(ui: UI) -> None:
    job = _failed_command(ui)
    listing = ui.get("/", state="FAILED").text
    row = listing.split(f'<tr data-job="{job.uuid}"', 1)[1].split("</tr>", 1)[0]
    line = re.search(r'<div class="failure-line" title="([^"]*)" data-failure>', row)
    assert line is not None
    summary = html.unescape(line.group(1))
    assert summary == (
        "callback_raised in execute (exit code 3): CommandFailed: python3 ended with exit code 3"
    )
    # The job built as failed by a bare event says what its data holds.
    other = listing.split(f'<tr data-job="{ui.built.failed.uuid}"', 1)[1].split("</tr>", 1)[0]
    assert 'title="failed: boom"' in other
    durations = re.findall(r'<td class="num duration">([^<]*)</td>', listing)
    assert durations and all(re.fullmatch(r"\d+ s|\d+ min( \d+ s)?", d) for d in durations)


def test_failure_and_duration_units() -> None:
    from datetime import datetime, timedelta, timezone

    from datacatalog.service.ui.details import duration, failure_of
    from datacatalog.service.ui.render import span

    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    traceback = (
        "Traceback (most recent call last):\n"
        + "\n".join(f'  File "x.py", line {i}' for i in range(40))
        + "\nValueError: bad input"
    )
    found = failure_of(
        when,
        {"reason": "prepare_failed", "phase": "prepare", "attempts": 1,
         "error": {"type": "ValueError", "message": "bad input", "traceback": traceback}},
    )  # fmt: skip
    assert (found.reason, found.phase, found.exit_code) == ("prepare_failed", "prepare", None)
    assert found.tail_kind == "traceback" and found.tail is not None
    assert found.tail.splitlines()[-1] == "ValueError: bad input"
    assert len(found.tail.splitlines()) == 20
    assert found.summary == "prepare_failed in prepare: ValueError: bad input"
    assert failure_of(when, {}).summary == "failed"
    long = failure_of(when, {"reason": "x" * 500})
    assert len(long.summary) == 160 and long.summary.endswith("…")
    # A workflow run's failure: a reason and an error record with a traceback.
    flow = failure_of(when, {"reason": "task_failed", "error": {"message": "task t1 failed"}})
    assert flow.summary == "task_failed: task t1 failed"

    start = when
    assert duration(start, start + timedelta(seconds=75), live=False, now=when) == timedelta(
        seconds=75
    )
    assert duration(start, start, live=True, now=start + timedelta(hours=2)) == timedelta(hours=2)
    assert duration(None, start, live=False, now=start) is None
    assert [span(timedelta(seconds=s)) for s in (5, 60, 125, 3600, 3720, 90000)] == [
        "5 s", "1 min", "2 min 5 s", "1 h", "1 h 2 min", "1 d 1 h",
    ]  # fmt: skip


# -- search by fragments, a file's content ----------------------------------------------------


def test_search_finds_files_by_a_part_of_their_path_and_jobs_by_task_text(ui: UI) -> None:
    b = ui.built
    one = ui.get("/search", q="TABLE.c")  # any case
    assert one.status_code == 303 and one.headers["location"] == f"/ui/files/{b.csv_file.uuid}"
    task = ui.get("/search", q="count rea")
    assert task.status_code == 303 and task.headers["location"] == f"/ui/jobs/{b.running.uuid}"
    other = b.job({"again": 1})
    b.catalog.store.update("job", {"uuid": other.uuid}, {"$set": {"task": "count reads again"}})
    text = is_page(ui.get("/search", q="count reads"))
    assert f'href="/ui/jobs/{b.running.uuid}"' in text and f'href="/ui/jobs/{other.uuid}"' in text
    # A part of the archive path finds every file under it.
    text = is_page(ui.get("/search", q=b.indexed.archive_path[-12:]))
    assert f'href="/ui/files/{b.text_file.uuid}"' in text
    assert f'href="/ui/files/{b.csv_file.uuid}"' in text
    # Regular-expression characters are text.
    is_page(ui.get("/search", q=".*"), 404)


def test_a_local_files_page_offers_its_download_and_a_preview(ui: UI) -> None:
    b = ui.built
    text = is_page(ui.get(f"/files/{b.csv_file.uuid}"))
    assert f'href="/ui/files/{b.csv_file.uuid}/content" download data-download' in text
    preview = re.search(r'<pre class="preview" data-preview>(.*?)</pre>', text, re.S)
    assert preview is not None and preview.group(1).splitlines() == ["a,b", "1,2"]
    assert "the whole file" in text
    download = ui.get(f"/files/{b.text_file.uuid}/content")
    assert download.status_code == 200 and download.content == b"hello\n"
    assert download.headers["content-type"] == "application/octet-stream"
    disposition = download.headers["content-disposition"]
    quoted = quote(HOSTILE_NAME, safe="")
    assert disposition == f"attachment; filename=\"{HOSTILE_NAME}\"; filename*=UTF-8''{quoted}"
    # The hostile file name's preview is text, escaped.
    assert "hello" in is_page(ui.get(f"/files/{b.text_file.uuid}"))


def test_a_preview_is_the_beginning_of_text_and_none_for_binary(tmp_path: Path) -> None:
    from datacatalog.service.ui.lookups import PREVIEW_LINES, content
    from datacatalog.storage import StorageRegistry

    registry = StorageRegistry(
        systems={"local": f"file://{tmp_path}", "far": "memory://dashboard-preview-test"}
    )
    (tmp_path / "long.txt").write_text("\n".join(f"row {i}" for i in range(100)), encoding="utf-8")
    (tmp_path / "blob.bin").write_bytes(b"\x89PNG\r\n\x1a\n\0\0")
    (tmp_path / "accent.txt").write_bytes(("é" * 3000).encode("utf-8"))  # cut inside a character

    def record(name: str, system: str = "local") -> dict[str, Any]:
        return {"name": name, "storage_system": system}

    long = content(registry, record("/long.txt"))
    assert long.downloadable and long.cut and long.preview is not None
    assert long.preview.splitlines() == [f"row {i}" for i in range(PREVIEW_LINES)]
    blob = content(registry, record("/blob.bin"))
    assert blob.downloadable and blob.preview is None
    accent = content(registry, record("/accent.txt"))
    assert accent.cut and accent.preview is not None and set(accent.preview) == {"é"}
    far = content(registry, record("/x.txt", "far"))
    assert not far.downloadable and "not local" in (far.problem or "")
    gone = content(registry, record("/x.txt", "elsewhere"))
    assert not gone.downloadable and "not configured" in (gone.problem or "")
    missing = content(registry, record("/missing.txt"))
    assert not missing.downloadable and missing.problem


def test_a_files_content_is_not_served_from_elsewhere(ui: UI) -> None:
    b = ui.built
    b.catalog.store.update(
        "file", {"uuid": b.csv_file.uuid}, {"$set": {"storage_system": "remote"}}
    )
    text = is_page(ui.get(f"/files/{b.csv_file.uuid}"))
    assert "data-download" not in text and "data-preview" not in text
    assert "storage system &#39;remote&#39; is not configured" in text
    is_page(ui.get(f"/files/{b.csv_file.uuid}/content"), 404)
    is_page(ui.get(f"/files/{b.running.uuid}/content"), 400)

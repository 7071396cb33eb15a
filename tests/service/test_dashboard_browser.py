"""The dashboard in a real browser: Debian's Chromium driven by Playwright, on both engines.

The service (:func:`datacatalog.service.create_app`, the dashboard at ``/ui``) runs under
uvicorn on a free loopback port over the catalog of :mod:`tests.support.dashboard_catalog`. The
tests load the jobs page, filter by state, open a job, read its history and files, click
a node of its lineage and land on that file's page, and watch a running job's state
change without reloading; every page must load without a console error (a Content
Security Policy violation is one). Screenshots of each page go to the artifacts folder
(``DATACATALOG_TEST_ARTIFACTS``, default ``.artifacts/`` in the checkout).

Marked ``browser``. Without Chromium the tests are skipped, except under ``CI=true``,
where a missing browser fails them (``.ci/run`` installs it). With
``DATACATALOG_DOCS_SCREENSHOTS=1`` the jobs and job screenshots of a demo catalog are
also written to ``docs/`` for the README.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from datacatalog import demo
from datacatalog.catalog import Catalog
from datacatalog.jobs import Actor
from datacatalog.provenance import node_id
from datacatalog.service import create_app
from datacatalog.service.server import listen
from datacatalog.settings import Settings
from datacatalog.store import Store
from tests.support.dashboard_catalog import HOSTILE_NAME, M1, S1, S2, Built, build

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("DATACATALOG_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 900}
TIMEOUT_MS = 15_000


def artifacts() -> Path:
    folder = Path(os.environ.get("DATACATALOG_TEST_ARTIFACTS", ROOT / ".artifacts")) / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module."""
    if not CHROMIUM.exists():
        message = (
            f"the dashboard's browser tests need Chromium, and there is none at {CHROMIUM} "
            "(apt-get install chromium, or name one in DATACATALOG_TEST_CHROMIUM)"
        )
        if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and the browser tests cannot run: {message}")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Served:
    """A running service over a catalog."""

    url: str
    catalog: Catalog


@contextmanager
def serve(catalog: Catalog) -> Iterator[Served]:
    """Run the service over ``catalog`` on a free loopback port until the caller is done."""
    sock = listen("127.0.0.1", 0)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(catalog), log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # waiting for a real server to come up: nothing to inject
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.02)
    try:
        yield Served(f"http://127.0.0.1:{port}", catalog)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@pytest.fixture
def built(store: Store, tmp_path: Path) -> Built:
    return build(store, tmp_path)


@pytest.fixture
def served(built: Built) -> Iterator[Served]:
    with serve(built.catalog) as running:
        yield running


class Tab:
    """A browser page that records console errors and failed requests."""

    def __init__(self, browser: Any, base: str, engine: str) -> None:
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.base = base
        self.engine = engine
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, path: str) -> Any:
        response = self.page.goto(self.base + path)
        assert response is not None and response.ok, (path, response and response.status)
        return response

    def shot(self, name: str, *, full_page: bool = True) -> Path:
        target = artifacts() / f"{name}-{self.engine}.png"
        self.page.screenshot(path=str(target), full_page=full_page)
        assert target.stat().st_size > 10_000
        return target

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any, served: Served, engine: str) -> Iterator[Tab]:
    opened = Tab(browser, served.url, engine)
    try:
        yield opened
        assert opened.errors == [], opened.errors
    finally:
        opened.close()


def rows(tab: Tab) -> list[str]:
    return [
        str(r.get_attribute("data-job"))
        for r in tab.page.locator("table.jobs tbody tr[data-job]").all()
    ]


# -- the journey -----------------------------------------------------------------------------


def test_jobs_filter_job_history_files_and_a_file_page(tab: Tab, built: Built) -> None:
    from playwright.sync_api import expect

    page = tab.page
    tab.open("/ui/")
    expect(page.locator("h1")).to_contain_text("Jobs")
    expect(page.locator("h1 [data-total]")).to_have_text("4 in all")
    assert rows(tab) == [
        built.reader.uuid,
        built.failed.uuid,
        built.indexed.uuid,
        built.running.uuid,
    ]
    tab.shot("jobs")

    # Choosing a state submits the filter form by itself.
    page.select_option("select[name=state]", "FINISHED")
    page.wait_for_url(re.compile(r"state=FINISHED"))
    assert rows(tab) == [built.indexed.uuid]
    expect(page.locator("h1 [data-total]")).to_have_text("1 matching")
    tab.shot("jobs-finished")

    page.locator(f'tr[data-job="{built.indexed.uuid}"] a.job-link').click()
    page.wait_for_url(f"**/ui/jobs/{built.indexed.uuid}")
    events = page.locator("ol.timeline code.event-name").all_inner_texts()
    assert events == ["create", "run", "finish", "index", "indexed"]
    names = page.locator("table.files a.file-link").all_inner_texts()
    assert names == [HOSTILE_NAME, "table.csv"]  # shown as text, never run as markup
    expect(page.locator(".state-line [data-badge]")).to_have_text("FINISHED")
    tab.shot("job")

    # The job's lineage picture: click its output's node, land on the file's page.
    picture = page.locator("[data-lineage-picture] svg")
    expect(picture).to_be_visible()
    page.locator(f"[data-lineage-picture] g#{node_id(built.csv_file.uuid)} a").click()
    page.wait_for_url(f"**/ui/files/{built.csv_file.uuid}")
    expect(page.locator("h1")).to_contain_text("table.csv")
    expect(page.locator("dd code.hash")).to_have_text(str(built.csv_file.sha256))
    tab.shot("file")

    # Upstream from there, in its own picture: the file it was derived from, whose
    # hostile name is drawn as text.
    node = page.locator(f"[data-lineage-picture] g#{node_id(built.text_file.uuid)}")
    expect(node.locator("text")).to_have_text(HOSTILE_NAME)
    node.locator("a").click()
    page.wait_for_url(f"**/ui/files/{built.text_file.uuid}")
    expect(page.locator("h1 code.path")).to_have_text(built.text_file.name)
    assert page.evaluate("document.querySelectorAll('script').length") == 1  # ours only


def test_pipelines_metadata_and_search_pages(tab: Tab, built: Built) -> None:
    from playwright.sync_api import expect

    page = tab.page
    tab.open("/ui/pipelines")
    expect(page.locator("table tbody tr")).to_have_count(3)
    tab.shot("pipelines")
    page.locator("a", has_text="tests.plot").first.click()
    expect(page.locator("h1")).to_have_text("Pipeline tests.plot")
    tab.shot("pipeline")

    tab.open("/ui/metadata")
    page.locator("a", has_text="design.ui").click()
    page.locator("a", has_text="experiment.ui").first.click()
    page.locator("ul.entities a", has_text="sample.ui.1").click()
    expect(page.locator("h1")).to_contain_text("sample.ui.1")
    assert rows(tab) == [built.running.uuid]
    tab.shot("metadata")

    page.fill("header input[name=q]", "measurement.ui.2")
    page.press("header input[name=q]", "Enter")
    page.wait_for_url("**/ui/metadata/104*")
    expect(page.locator("h1")).to_contain_text("measurement.ui.2")

    page.fill("header input[name=q]", "no.such.thing")
    page.press("header input[name=q]", "Enter")
    expect(page.locator(".problem")).to_contain_text("no.such.thing")
    tab.errors = [e for e in tab.errors if "404" not in e]  # the not-found page itself
    tab.shot("search-not-found")


def test_a_running_jobs_state_refreshes_without_a_reload(tab: Tab, built: Built) -> None:
    from playwright.sync_api import expect

    page = tab.page
    page.clock.install()  # the page's timers run on a clock the test moves
    tab.open("/ui/")
    badge = page.locator(f'tr[data-job="{built.running.uuid}"] [data-badge]')
    expect(badge).to_have_text("RUNNING")
    expect(page.locator("[data-live-note]")).to_be_visible()
    page.evaluate("window.__marker = 'not reloaded'")
    built.catalog.jobs.send(built.running.uuid, "finish")
    page.clock.run_for(6_000)
    expect(badge).to_have_text("FINISHED")
    assert page.evaluate("window.__marker") == "not reloaded"

    # A running job's own page says when it changed.
    job = built.job({"live": True})
    built.catalog.jobs.send(job.uuid, "run")
    tab.open(f"/ui/jobs/{job.uuid}")
    notice = page.locator("[data-changed]")
    expect(notice).to_be_hidden()
    built.catalog.jobs.send(job.uuid, "fail", data={"error": "stopped"})
    page.clock.run_for(6_000)
    expect(notice).to_be_visible()
    expect(page.locator(".state-line [data-badge]")).to_have_text("FAILED")


# -- why a job failed, how long jobs took, its runs, what to do next --------------------------

STDERR = (*(f"reading plate {i}" for i in range(25)), "ValueError: plate 7 is cut short", "Killed")
SUMMARY = "callback_raised in execute (exit code 3): CommandFailed: python3 ended with exit code 3"


def drive(
    catalog: Catalog,
    job_uuid: str,
    *,
    fail: bool,
    stderr: tuple[str, ...] = STDERR,
    status: int = 3,
) -> None:
    """Run the job under a stage driver: its command ends with ``status`` having written
    ``stderr``, or succeeds."""
    from datacatalog.cli.run import CommandFailed
    from datacatalog.driver import Driver

    def execute(_driver: Any, _payload: Any) -> bool:
        if fail:
            raise CommandFailed(["python3", "analyze.py"], status, list(stderr))
        return True

    driver = Driver(job_uuid, catalog=catalog, execute=execute)
    driver.start()
    result = driver.wait_for_completion(timeout=30)
    assert result.succeeded is not fail, result


def next_steps(tab: Tab) -> list[str]:
    return tab.page.locator("[data-next-events] li > code:first-child").all_inner_texts()


def test_a_failed_job_says_why_in_the_list_and_on_its_page(tab: Tab, built: Built) -> None:
    from playwright.sync_api import expect

    page = tab.page
    job = built.job({"fails": True})
    drive(built.catalog, job.uuid, fail=True)

    tab.open("/ui/?state=FAILED")
    expect(page.locator("h1 [data-total]")).to_have_text("2 matching")
    assert rows(tab) == [job.uuid, built.failed.uuid]
    line = page.locator(f'tr[data-job="{job.uuid}"] [data-failure]')
    expect(line).to_have_text(SUMMARY)
    expect(line).to_have_attribute("title", SUMMARY)  # the whole line on hover
    expect(page.locator(f'tr[data-job="{built.failed.uuid}"] [data-failure]')).to_have_text(
        "failed: boom"
    )
    expect(page.locator("table.jobs thead th").nth(7)).to_have_text("Duration")
    for duration in page.locator("table.jobs td.duration").all_inner_texts():
        assert re.fullmatch(r"\d+ s|\d+ min( \d+ s)?", duration), duration
    tab.shot("jobs-failed")

    page.locator(f'tr[data-job="{job.uuid}"] a.job-link').click()
    page.wait_for_url(f"**/ui/jobs/{job.uuid}")
    failure = page.locator("section[data-failure]")
    expect(failure).to_be_visible()
    expect(failure).to_contain_text("callback_raised")
    expect(failure.locator("dd code").nth(1)).to_have_text("execute")  # the phase
    expect(failure.locator("dt:has-text('Exit code') + dd")).to_have_text("3")
    tail = failure.locator("[data-failure-tail]").inner_text()
    assert tail.splitlines() == list(STDERR[-20:])  # the end of the stderr, not all of it
    identity = page.get_by_role("heading", name="Identity")
    assert failure.bounding_box()["y"] < identity.bounding_box()["y"]  # at the top
    # A failed job runs again with its token: no administrator needed.
    assert next_steps(tab) == ["retire", "retry", "reset"]
    retry = page.locator("[data-next-events] li", has_text="retry")
    expect(retry.locator("code.command")).to_have_text(
        f"datacatalog run --job {job.uuid} -- COMMAND"
    )
    expect(page.locator("[data-next-events] li", has_text="reset")).to_contain_text("(admin)")
    runs = page.locator("table.runs tbody tr")
    expect(runs).to_have_count(1)
    expect(runs.locator("td").nth(6)).to_have_text("failed")
    tab.shot("failed-job")

    # Run again, it succeeds: no failure at the top, both executions under "Runs".
    drive(built.catalog, job.uuid, fail=False)
    tab.open(f"/ui/jobs/{job.uuid}")
    expect(page.locator(".state-line [data-badge]")).to_have_text("FINISHED")
    expect(page.locator("section[data-failure]")).to_have_count(0)
    expect(page.get_by_role("heading", name="Runs")).to_contain_text("2")
    runs = page.locator("table.runs tbody tr")
    expect(runs).to_have_count(2)
    cells = [r.locator("td").all_inner_texts() for r in runs.all()]
    assert [(c[0], c[2], c[6]) for c in cells] == [
        ("0", "run", "failed"),
        ("1", "retry", "finished"),
    ]
    assert all(c[1].endswith("…") for c in cells)  # each execution has its own run id
    assert cells[0][1] != cells[1][1]
    assert next_steps(tab) == ["index", "validate", "retire", "rerun", "reset"]
    expect(
        page.locator("[data-next-events] li", has_text="rerun").locator("code.command")
    ).to_have_text(f"datacatalog run --job {job.uuid} --force -- COMMAND")
    tab.shot("runs")


def test_allowed_next_offers_only_what_a_person_can_do(tab: Tab, built: Built) -> None:
    tab.open(f"/ui/jobs/{built.reader.uuid}")
    assert next_steps(tab) == ["run", "reset"]
    tab.open(f"/ui/jobs/{built.running.uuid}")  # its pipeline is at work
    assert next_steps(tab) == ["reset"]
    tab.open(f"/ui/jobs/{built.indexed.uuid}")
    assert next_steps(tab) == ["index", "validate", "retire", "rerun", "reset"]
    built.catalog.jobs.send(built.failed.uuid, "retire")
    tab.open(f"/ui/jobs/{built.failed.uuid}")  # kept for the record: only an administrator
    assert next_steps(tab) == ["reset"]


# -- search by fragment, a file's contents, coverage --------------------------------------------


def test_search_finds_files_by_path_fragment_and_jobs_by_task_text(tab: Tab, built: Built) -> None:
    from playwright.sync_api import expect

    page = tab.page
    plan = built.catalog.jobs.plan(
        pipeline=built.plot_uuid, metadata={"sample_id": "sample.ui.1"}, data={},
        agent="agent.d", task="plot the Table again",
    )  # fmt: skip
    job, _ = built.catalog.jobs.create(plan)

    def search(text: str) -> None:
        page.fill("header input[name=q]", text)
        page.press("header input[name=q]", "Enter")
        page.wait_for_load_state()

    tab.open("/ui/")
    search("TABLE")  # a fragment, any case: a file's path and a job's task hold it
    expect(page.locator("h1")).to_have_text("Search")
    matches = page.locator("ul.matches li")
    expect(matches).to_have_count(2)
    assert [m.locator(".kind").inner_text() for m in matches.all()] == ["file", "job"]
    expect(matches.nth(0).locator("a")).to_have_text(built.csv_file.name)
    expect(matches.nth(1).locator("a")).to_have_text("plot the Table again")
    tab.shot("search-fragment")
    matches.nth(1).locator("a").click()
    page.wait_for_url(f"**/ui/jobs/{job.uuid}")

    search("count READS")  # one match goes straight to its page
    page.wait_for_url(f"**/ui/jobs/{built.running.uuid}")
    tail = built.csv_file.name.rsplit("/", 2)[-2][-6:] + "/table"  # across a "/" too
    search(tail)
    page.wait_for_url(f"**/ui/files/{built.csv_file.uuid}")
    expect(page.locator("h1 code.path")).to_have_text(built.csv_file.name)


def test_a_file_page_offers_its_download_and_a_text_preview(tab: Tab, built: Built) -> None:
    from playwright.sync_api import expect

    page = tab.page
    tab.open(f"/ui/files/{built.csv_file.uuid}")
    preview = page.locator("[data-preview]")
    expect(preview).to_be_visible()
    assert preview.inner_text().splitlines() == ["a,b", "1,2"]
    expect(page.get_by_role("heading", name="Preview")).to_contain_text("the whole file")
    with page.expect_download() as info:
        page.locator("[data-download]").click()
    download = info.value
    assert download.suggested_filename == "table.csv"
    assert Path(download.path()).read_bytes() == b"a,b\n1,2\n"
    tab.shot("file-preview")

    # The hostile name is text on the page and a safe name for the download.
    tab.open(f"/ui/files/{built.text_file.uuid}")
    assert page.locator("[data-preview]").inner_text().splitlines() == ["hello"]
    with page.expect_download() as info:
        page.locator("[data-download]").click()
    saved_as = info.value.suggested_filename  # the browser makes the name safe to save
    assert saved_as.endswith("x.txt") and "<" not in saved_as and ">" not in saved_as
    assert Path(info.value.path()).read_bytes() == b"hello\n"


def test_the_coverage_page_shows_entities_against_pipelines(tab: Tab, built: Built) -> None:
    from playwright.sync_api import expect

    page = tab.page
    tab.open("/ui/metadata")
    page.locator("a", has_text="design.ui").click()
    page.locator("a", has_text="experiment.ui").first.click()
    page.locator("[data-coverage]").click()  # an entity's page links to its coverage
    page.wait_for_url(re.compile(r"/ui/coverage\?"))
    expect(page.locator("header nav a.active")).to_have_text("Coverage")
    expect(page.locator("main h2")).to_have_text("2 sample(s), 2 column(s)")
    table = page.locator("table.coverage")
    assert table.locator("thead th").all_inner_texts()[0] == "Sample"
    cells = {
        row.get_attribute("data-entity"): row.locator("td.state").all_inner_texts()
        for row in table.locator("tbody tr").all()
    }
    assert cells == {S1: ["RUNNING", "—"], S2: ["—", "FAILED"]}, cells
    counts = page.locator("table.coverage-counts tbody tr")
    expect(counts).to_have_count(2)
    # tests.count is registered twice: each column says which registration it is.
    shown = sorted(counts.locator("[data-registration]").all_inner_texts())
    assert shown == sorted([built.count_uuid[:13] + "…", built.count_v2_uuid[:13] + "…"])
    tab.shot("coverage")
    table.locator(f'a[data-job="{built.failed.uuid}"]').click()
    page.wait_for_url(f"**/ui/jobs/{built.failed.uuid}")

    # The form: measurements under the experiment, one pipeline; a bad id is explained.
    tab.open("/ui/coverage")
    page.fill("input[name=ids]", "experiment.ui")
    page.select_option("select[name=level]", "measurement")
    page.fill("input[name=pipeline]", "tests.plot")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(re.compile(r"level=measurement"))
    expect(page.locator("main h2")).to_contain_text("2 measurement(s)")
    expect(page.locator("main h2")).to_contain_text("1 column(s)")
    indexed = table.locator(f'a[data-job="{built.indexed.uuid}"]')
    expect(indexed).to_have_text("FINISHED")
    row = table.locator(f'tr[data-entity="{M1}"] td.state')
    expect(row).to_have_text("—")  # no job of it yet
    page.fill("input[name=ids]", "no.such.experiment")
    page.get_by_role("button", name="Show").click()
    expect(page.locator(".problem")).to_contain_text("no.such.experiment")
    tab.errors = [e for e in tab.errors if "404" not in e]  # the page says not found


# -- the README's pictures -------------------------------------------------------------------


DEMO_STDERR = (
    "reading /uploads/demo/plate-1a.csv",
    "Traceback (most recent call last):",
    '  File "analyze.py", line 41, in <module>',
    "    curve = fit(read_plate(path), bins=args.bins)",
    '  File "analyze.py", line 18, in read_plate',
    '    raise ValueError(f"{path}: row {n} has {len(cells)} of 96 wells")',
    "ValueError: /uploads/demo/plate-1a.csv: row 57 has 41 of 96 wells",
)


@dataclass
class Showcase:
    """The demo's catalog with more jobs of its pipeline, in other states."""

    catalog: Catalog
    job: str  # the demo's own job (FINISHED, indexed: a full lineage)
    failed: str  # a job whose command failed


def showcase(store: Store, tmp_path: Path) -> Showcase:
    """The demo's catalog, plus jobs of its pipeline in other states."""
    settings = Settings.load(env={}, data_dir=tmp_path, secret="s" * 32)
    catalog = Catalog(store, settings=settings, actor=Actor.current(agent="demo-agent"))
    result = demo.run(catalog)
    steps: dict[str, list[str]] = {
        "sample.demo.2": ["run"],
        "measurement.demo.1.a": ["drive"],
        "measurement.demo.1.b": [],
        "measurement.demo.2.a": ["run", "finish"],
    }
    failed = ""
    for ident, events in steps.items():
        kind = "sample_id" if ident.startswith("sample") else "measurement_id"
        plan = catalog.jobs.plan(
            pipeline=result.pipeline.uuid,
            metadata={kind: ident},
            data={"bins": 8},
            agent="demo-agent",
            task="growth statistics",
        )
        job, _ = catalog.jobs.create(plan)
        for event in events:
            if event == "drive":  # its command fails, as datacatalog run records it
                drive(catalog, job.uuid, fail=True, stderr=DEMO_STDERR, status=1)
                failed = job.uuid
            else:
                catalog.jobs.send(job.uuid, event)
    return Showcase(catalog, result.job.uuid, failed)


def test_screenshots_for_the_docs(browser: Any, store: Store, tmp_path: Path, engine: str) -> None:
    from playwright.sync_api import expect

    shown = showcase(store, tmp_path)
    with serve(shown.catalog) as running:
        tab = Tab(browser, running.url, engine)
        page = tab.page
        try:
            tab.open("/ui/")
            expect(page.locator("table.jobs tbody tr[data-job]")).to_have_count(5)
            expect(page.locator(f'tr[data-job="{shown.failed}"] [data-failure]')).to_be_visible()
            jobs = tab.shot("docs-jobs")
            tab.open(f"/ui/jobs/{shown.job}")
            expect(page.locator("table.files a.file-link").first).to_be_visible()
            expect(page.locator("[data-lineage-picture] svg")).to_be_visible()
            job = tab.shot("docs-job")
            tab.open(f"/ui/jobs/{shown.failed}")
            expect(page.locator("[data-failure-tail]")).to_contain_text("41 of 96 wells")
            failed = tab.shot("docs-failed-job", full_page=False)  # the top: why it failed
            tab.open("/ui/coverage?under=experiment&ids=experiment.demo.1&level=measurement")
            expect(page.locator("table.coverage tbody tr")).to_have_count(4)
            coverage = tab.shot("docs-coverage", full_page=False)
            assert tab.errors == [], tab.errors
        finally:
            tab.close()
    if os.environ.get("DATACATALOG_DOCS_SCREENSHOTS") == "1" and engine == "memory":
        shutil.copyfile(jobs, ROOT / "docs" / "dashboard-jobs.png")
        shutil.copyfile(job, ROOT / "docs" / "dashboard-job.png")
        shutil.copyfile(failed, ROOT / "docs" / "dashboard-failed-job.png")
        shutil.copyfile(coverage, ROOT / "docs" / "dashboard-coverage.png")

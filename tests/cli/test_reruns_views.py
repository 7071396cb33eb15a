"""Every execution of a job, and every up-to-date check, where people look at a job:
``datacatalog jobs show``, ``GET /jobs/{uuid}`` and the dashboard's job page.

Each test runs on both engines.
"""

from __future__ import annotations

import html

import pytest

from datacatalog.jobs.executions import run_id
from datacatalog.jobs.reruns import begin, decide, record_up_to_date
from tests.support.cli import CLI, SAMPLE
from tests.support.dashboard_catalog import UI, is_page
from tests.support.service import Service

pytestmark = pytest.mark.usefixtures("no_configuration")


def test_jobs_show_lists_every_execution_and_the_up_to_date_checks(world: CLI) -> None:
    job = world.json("jobs", "create", "--pipeline", "demo-stats", "--sample-id", SAMPLE)["job"]
    uuid = job["uuid"]
    world.json("jobs", "event", uuid, "run")
    world.json("jobs", "event", uuid, "fail", "--data", '{"reason": "timeout"}')
    retried = world("run", "--job", uuid, "--", "true")
    assert retried.exit_code == 0, retried.stderr
    again = world("run", "--job", uuid, "--", "true")
    assert again.exit_code == 0 and "up to date" in again.stdout
    shown = world.json("jobs", "show", uuid)
    listed = [(e["number"], e["began_with"], e["outcome"]) for e in shown["executions"]]
    assert listed == [(0, "run", "failed"), (1, "retry", "finished"), (None, "reuse", "up_to_date")]
    first, second, check = shown["executions"]
    assert (first["run_id"], first["reason"]) == (uuid, "timeout")
    assert second["run_id"] == run_id(uuid, 1) and second["holder"].startswith("driver-")
    assert second["started"] and second["ended"] and second["host"]
    assert check["run_id"] is None and check["details"]["mode"] == "sha256"
    assert shown["job"]["state"] == "FINISHED"
    human = world("jobs", "show", uuid).stdout
    assert "executions" in human and "retry" in human and "up_to_date" in human


def test_get_job_lists_the_executions(service: Service) -> None:
    catalog, job = service.catalog, service.job
    catalog.jobs.send(job.uuid, "run", data={"driver": "driver-1"})
    catalog.jobs.send(job.uuid, "fail", data={"reason": "callback_raised"})
    begin(catalog, decide(catalog, job.uuid), data={"driver": "driver-2"})
    catalog.jobs.send(job.uuid, "finish")
    record_up_to_date(catalog, decide(catalog, job.uuid), holder="driver-3")
    body = service.client.get(f"/jobs/{job.uuid}").json()
    assert body["state"] == "FINISHED"
    assert [(e["holder"], e["outcome"]) for e in body["executions"]] == [
        ("driver-1", "failed"),
        ("driver-2", "finished"),
        ("driver-3", "up_to_date"),
    ]
    assert [e["run_id"] for e in body["executions"]] == [job.uuid, run_id(job.uuid, 1), None]
    listing = service.client.get("/jobs").json()["jobs"]
    assert all(j.get("executions") is None for j in listing)
    schema = service.client.get("/openapi.json").json()["components"]["schemas"]
    assert "executions" in schema["JobModel"]["properties"]


def test_the_job_page_lists_the_runs(ui: UI) -> None:
    catalog, job = ui.built.catalog, ui.built.indexed
    decision = decide(catalog, job.uuid)
    assert decision.up_to_date
    record_up_to_date(catalog, decision, holder="driver-cached")
    text = html.unescape(is_page(ui.get(f"/jobs/{job.uuid}")))
    runs = text.split("<h2>Runs", 1)[1].split("</section>", 1)[0]
    assert "finished" in runs and "up_to_date" in runs and "driver-cached" in runs
    assert f'title="{job.uuid}"' in runs  # the first execution's run id is the job's UUID
    never = html.unescape(is_page(ui.get(f"/jobs/{ui.built.reader.uuid}")))
    assert "Never ran." in never.split("<h2>Runs", 1)[1].split("</section>", 1)[0]

"""The service's workflow routes: a job's executions and one execution with its tasks."""

from __future__ import annotations

from datacatalog.orchestrator.executors import ThreadExecutor
from datacatalog.orchestrator.workflow_runner import WorkflowRunner
from tests.support import orchestrator_ops as ops
from tests.support.clocks import FakeClock
from tests.support.service import Service


def test_executions_of_a_job_and_one_execution(service: Service) -> None:
    runner = WorkflowRunner(
        service.catalog, None, None, service_id=service.job.uuid, workflow_name=ops.chain,
        inputs={"key": "svc", "steps": 2}, executor=ThreadExecutor(1), clock=FakeClock(),
    )  # fmt: skip
    runner.execute()
    listed = service.client.get(f"/jobs/{service.job.uuid}/executions")
    assert listed.status_code == 200
    body = listed.json()
    assert [e["id"] for e in body["executions"]] == [runner.execution_id]
    assert body["executions"][0]["status"] == "succeeded"
    one = service.client.get(f"/executions/{runner.execution_id}").json()
    assert [t["name"] for t in one["tasks"]] == ["step0", "step1"]
    assert one["tasks"][0]["attempt_log"][0]["outcome"] == "success"


def test_unknown_or_malformed_execution_ids(service: Service) -> None:
    missing = service.client.get("/executions/100b8d4e-2f55-5c1a-9a77-0d1c2f3e4a5b")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    bad = service.client.get("/executions/not-an-id")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"
    unknown_job = service.client.get("/jobs/107b8d4e-2f55-5c1a-9a77-0d1c2f3e4a5b/executions")
    assert unknown_job.status_code == 404

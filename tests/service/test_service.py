"""Tests for datacatalog.service: every route through FastAPI's TestClient, on both engines.

Each test builds a catalog on the ``store`` fixture with one pipeline, a small metadata
chain and a job, and talks to :func:`datacatalog.service.create_app` over it. Refusals are
checked to leave the job's document exactly as it was.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from starlette.types import Message

from datacatalog.errors import UnavailableError
from datacatalog.identifiers import typed_uuid
from datacatalog.indexing.records import FileRecord
from datacatalog.jobs import Job
from datacatalog.schemas import schema_for
from datacatalog.service import create_app
from datacatalog.service.limits import BodySizeLimit
from datacatalog.service.responses import FileRecordModel
from tests.support.service import M1, M2, MAX_BODY, Service

with warnings.catch_warnings():
    # Starlette would rather the test client used a fork of httpx; httpx is what we ship.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


@contextmanager
def nothing_written(service: Service, job: Job | None = None) -> Iterator[None]:
    """Check that the block leaves the job's document and the job and file counts as they were."""
    before = service.document(job)
    counts = (service.store.count("job", {}), service.store.count("file", {}))
    yield
    assert service.document(job) == before
    assert (service.store.count("job", {}), service.store.count("file", {})) == counts


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    """Assert the response is an error of ``status``/``code`` in the one error shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return dict(body["error"])


def events_url(service: Service, job: Job | None = None) -> str:
    return f"/jobs/{(job or service.job).uuid}/events"


# -- events ------------------------------------------------------------------------------


def test_the_webhook_url_works_verbatim(service: Service) -> None:
    url = service.catalog.jobs.webhook_url(service.job.uuid)
    assert url.startswith(service.catalog.settings.service_url + "/jobs/")

    response = service.client.post(url, json={"name": "run", "data": {"node": "c-101"}})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["applied"] is True
    assert body["job"]["uuid"] == service.job.uuid
    assert body["job"]["state"] == "RUNNING"
    assert body["entry"]["name"] == "run"
    assert body["entry"]["data"] == {"node": "c-101"}
    assert service.events() == ["create", "run"]


def test_a_bearer_token_works_like_the_query_token(service: Service) -> None:
    headers = {"Authorization": f"Bearer {service.token()}"}
    response = service.client.post(events_url(service), json={"name": "run"}, headers=headers)
    assert response.status_code == 200, response.text
    same = service.client.post(
        f"{events_url(service)}?token={service.token()}",
        json={"name": "update", "data": None},
        headers=headers,
    )
    assert same.status_code == 200, same.text
    assert service.events() == ["create", "run", "update"]


def test_a_resent_event_id_changes_nothing(service: Service) -> None:
    url = service.catalog.jobs.webhook_url(service.job.uuid)
    first = service.client.post(url, json={"name": "run", "event_id": "attempt-1"})
    again = service.client.post(url, json={"name": "run", "event_id": "attempt-1"})
    assert first.json()["applied"] is True
    assert again.status_code == 200
    assert again.json()["applied"] is False
    assert again.json()["entry"]["uuid"] == first.json()["entry"]["uuid"]
    assert service.events() == ["create", "run"]


def test_history_entries_record_the_callers_address(service: Service) -> None:
    url = service.catalog.jobs.webhook_url(service.job.uuid)
    entry = service.client.post(url, json={"name": "run"}).json()["entry"]
    assert entry["host"] == "testclient"


@pytest.mark.parametrize(
    ("headers", "query", "status", "code"),
    [
        ({}, "", 401, "unauthorized"),
        ({}, "?token=", 401, "unauthorized"),
        ({}, "?token=" + "0" * 64, 403, "forbidden"),
        ({"Authorization": "Bearer " + "0" * 64}, "", 403, "forbidden"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "", 401, "unauthorized"),
    ],
    ids=["missing", "empty", "wrong-query", "wrong-bearer", "not-bearer"],
)
def test_a_missing_or_wrong_token_writes_nothing(
    service: Service, headers: dict[str, str], query: str, status: int, code: str
) -> None:
    with nothing_written(service):
        response = service.client.post(
            events_url(service) + query, json={"name": "run"}, headers=headers
        )
        error_of(response, status, code)
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"


def test_another_jobs_token_is_refused(service: Service) -> None:
    other = service.new_job({"n": 1})
    with nothing_written(service):
        response = service.client.post(
            f"{events_url(service)}?token={service.token(other)}", json={"name": "run"}
        )
        error_of(response, 403, "forbidden")


def test_two_different_tokens_are_refused(service: Service) -> None:
    with nothing_written(service):
        response = service.client.post(
            f"{events_url(service)}?token={service.token()}",
            json={"name": "run"},
            headers={"Authorization": "Bearer " + "0" * 64},
        )
        # At most one of them is right: refused as a wrong token is (the OpenAPI document
        # offers both ways, so a client may well send both).
        error_of(response, 403, "forbidden")


@pytest.mark.parametrize(
    "content",
    [
        b'{"name": "run"',
        b"not json at all",
        b"",
        b"[]",
        b'"run"',
        b"{}",
        b'{"name": 5}',
        b'{"name": "run", "data": [1, 2]}',
        b'{"name": "run", "data": "text"}',
        b'{"name": "run", "event_id": 7}',
        b'{"name": "run", "event_id": ""}',
        b'{"name": "run", "colour": "blue"}',
    ],
    ids=[
        "truncated",
        "not-json",
        "empty",
        "list",
        "string",
        "no-name",
        "name-int",
        "data-list",
        "data-string",
        "event-id-int",
        "event-id-empty",
        "unknown-field",
    ],
)
def test_malformed_event_bodies_are_400(service: Service, content: bytes) -> None:
    with nothing_written(service):
        response = service.client.post(
            f"{events_url(service)}?token={service.token()}",
            content=content,
            headers={"Content-Type": "application/json"},
        )
        error = error_of(response, 400, "invalid_request")
    assert error["details"]["problems"]


def test_malformed_json_is_named_as_such(service: Service) -> None:
    body = '{"name": "run",}'
    # The reason and the position are the json module's, and its wording differs between
    # Python versions (3.13 names the trailing comma and points at it).
    with pytest.raises(json.JSONDecodeError) as parsed:
        json.loads(body)
    with nothing_written(service):
        response = service.client.post(
            f"{events_url(service)}?token={service.token()}",
            content=body.encode(),
            headers={"Content-Type": "application/json"},
        )
        error = error_of(response, 400, "invalid_request")
    reason = f"not valid JSON: {parsed.value.msg} (at character {parsed.value.pos})"
    assert error["message"] == f"invalid request: body: {reason}"
    assert error["details"]["problems"][0]["where"] == "body"
    assert error["details"]["problems"][0]["message"] == reason


@pytest.mark.parametrize(
    ("query", "repeated"),
    [
        ("status=RUNNING&event_id=first&event_id=second", "event_id"),
        ("status=RUNNING&status=FINISHED", "status"),
        ("status=RUNNING&token={token}", "token"),  # beside the token added below
    ],
)
def test_a_repeated_query_parameter_is_refused_and_named(
    service: Service, query: str, repeated: str
) -> None:
    # Every parameter takes one value: reading one of several would act on a value the
    # caller may not have meant (FastAPI alone keeps the last).
    token = service.token()
    url = f"/jobs/{service.job.uuid}/status?{query.format(token=token)}&token={token}"
    with nothing_written(service):
        response = service.client.post(url, json={})
        error = error_of(response, 400, "invalid_request")
    problem = f"query.{repeated}: given 2 times; it takes one value"
    assert error["message"] == f"invalid request: {problem}"
    assert [p["where"] for p in error["details"]["problems"]] == [f"query.{repeated}"]


def test_a_query_parameter_given_once_is_read(service: Service) -> None:
    response = service.client.post(
        f"/jobs/{service.job.uuid}/status?status=RUNNING&event_id=only&token={service.token()}",
        json={},
    )
    assert response.status_code == 200, response.text
    assert service.document()["history"][-1]["event_id"] == "only"


def test_a_body_sent_as_a_form_is_400_and_says_to_send_json(service: Service) -> None:
    with nothing_written(service):
        response = service.client.post(
            f"{events_url(service)}?token={service.token()}",
            content=b'{"name": "run"}',
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        error = error_of(response, 400, "invalid_request")
    assert "Content-Type: application/json" in error["message"]


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ({"name": "explode"}, "unknown event"),
        ({"name": "run", "data": {"$where": 1}}, "$where"),
        ({"name": "run", "data": {"a.b": 1}}, "a.b"),
        ({"name": "reset"}, "administrative"),
        ({"name": "ready"}, "administrative"),
    ],
    ids=["unknown-event", "dollar-key", "dotted-key", "reset", "ready"],
)
def test_refused_events_are_400(service: Service, body: dict[str, Any], word: str) -> None:
    with nothing_written(service):
        response = service.client.post(f"{events_url(service)}?token={service.token()}", json=body)
        error = error_of(response, 400, "invalid_request")
    assert word in error["message"]


def test_an_unknown_job_is_404(service: Service) -> None:
    missing = typed_uuid("no such job", "pipelinejob")
    url = service.catalog.jobs.webhook_url(missing)
    with nothing_written(service):
        error = error_of(service.client.post(url, json={"name": "run"}), 404, "not_found")
    assert missing in error["message"]
    for path in ("", "/history", "/files"):
        error_of(service.client.get(f"/jobs/{missing}{path}"), 404, "not_found")


def test_a_uuid_of_the_wrong_kind_is_400(service: Service) -> None:
    error_of(service.client.get(f"/jobs/{M1}"), 400, "invalid_request")
    error_of(service.client.get("/jobs/not-a-uuid"), 400, "invalid_request")


def test_an_invalid_transition_is_409_and_names_the_state(service: Service) -> None:
    with nothing_written(service):
        response = service.client.post(
            f"{events_url(service)}?token={service.token()}", json={"name": "finish"}
        )
        error = error_of(response, 409, "invalid_transition")
    assert error["details"]["state"] == "CREATED"
    assert error["details"]["event"] == "finish"
    assert "run" in error["details"]["allowed"]


# -- body size limit ----------------------------------------------------------------------


def test_an_oversized_body_is_413_before_parsing(service: Service) -> None:
    big = {"name": "run", "data": {"blob": "x" * (MAX_BODY + 10)}}
    with nothing_written(service):
        response = service.client.post(f"{events_url(service)}?token={service.token()}", json=big)
        error = error_of(response, 413, "payload_too_large")
    assert error["details"]["limit"] == MAX_BODY


def test_an_oversized_body_is_refused_even_without_a_valid_token(service: Service) -> None:
    with nothing_written(service):
        response = service.client.post(events_url(service), content=b"{" * (MAX_BODY + 1))
        error_of(response, 413, "payload_too_large")


def test_an_oversized_chunked_body_is_413(service: Service) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "run", "data": {"blob": "'
        yield b"x" * MAX_BODY
        yield b'"}}'

    with nothing_written(service):
        response = service.client.post(
            f"{events_url(service)}?token={service.token()}",
            content=chunks(),
            headers={"Content-Type": "application/json"},
        )
        error_of(response, 413, "payload_too_large")


def test_a_body_just_under_the_limit_is_accepted(service: Service) -> None:
    body = {"name": "run", "data": {"blob": ""}}
    room = MAX_BODY - len(json.dumps(body).encode())
    body["data"]["blob"] = "x" * room
    content = json.dumps(body).encode()
    assert len(content) == MAX_BODY
    response = service.client.post(
        f"{events_url(service)}?token={service.token()}",
        content=content,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text


def test_an_invalid_content_length_is_400(service: Service) -> None:
    app_called = False

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal app_called
        app_called = True

    sent = run_middleware(app, [b"{}"], headers=[(b"content-length", b"ten")])
    assert not app_called
    assert sent[0]["status"] == 400
    assert json.loads(sent[1]["body"])["error"]["code"] == "invalid_request"


def test_the_limit_counts_streamed_chunks() -> None:
    """Chunks without a Content-Length are counted; the app never sees an oversized body."""
    received: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        received.append(message["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent = run_middleware(app, [b"a" * 60, b"b" * 60], max_bytes=100)
    assert sent[0]["status"] == 413
    assert received == []
    assert (b"connection", b"close") in sent[0]["headers"]

    sent = run_middleware(app, [b"a" * 50, b"b" * 50], max_bytes=100)
    assert sent[0]["status"] == 200
    assert received == [b"a" * 50 + b"b" * 50]


def run_middleware(
    app: Any,
    chunks: list[bytes],
    *,
    max_bytes: int = 100,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> list[Message]:
    """Drive :class:`BodySizeLimit` with ``chunks`` as the request body; return what it sent."""
    messages: list[Message] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers or []}
    asyncio.run(BodySizeLimit(app, max_bytes=max_bytes)(scope, receive, send))
    return sent


# -- scheduler statuses ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "event", "state"),
    [
        ("RUNNING", "run", "RUNNING"),
        ("running", "run", "RUNNING"),
        ("FAILED", "fail", "FAILED"),
        ("STOPPED", "fail", "FAILED"),
        ("HEARTBEAT", "update", "CREATED"),
        ("QUEUED", "resource", "CREATED"),
        ("STAGING_INPUTS", "resource", "CREATED"),
        ("SOMETHING_NEW", "resource", "CREATED"),
    ],
)
def test_scheduler_statuses_map_to_events(
    service: Service, status: str, event: str, state: str
) -> None:
    response = service.client.post(
        f"/jobs/{service.job.uuid}/status",
        params={"status": status, "token": service.token()},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["entry"]["name"] == event
    assert body["entry"]["data"] == {"status": status.upper()}
    assert body["job"]["state"] == state
    assert service.events() == ["create", event]


def test_a_status_body_becomes_event_data(service: Service) -> None:
    service.send("run")
    response = service.client.post(
        f"/jobs/{service.job.uuid}/status",
        params={"status": "FINISHED", "event_id": "done-1"},
        headers={"Authorization": f"Bearer {service.token()}"},
        json={"exit_code": 0},
    )
    assert response.status_code == 200, response.text
    assert response.json()["job"]["state"] == "FINISHED"
    assert response.json()["entry"]["data"] == {"exit_code": 0, "status": "FINISHED"}
    assert response.json()["entry"]["event_id"] == "done-1"


@pytest.mark.parametrize(
    ("params", "content", "status", "code"),
    [
        ({}, None, 400, "invalid_request"),
        ({"status": ""}, None, 400, "invalid_request"),
        ({"status": "   "}, None, 400, "invalid_request"),
        ({"status": "RUNNING"}, b"[1]", 400, "invalid_request"),
        ({"status": "RUNNING"}, b"{oops", 400, "invalid_request"),
        ({"status": "FINISHED"}, None, 409, "invalid_transition"),
    ],
    ids=["no-status", "empty", "blank", "list-body", "bad-json", "invalid-transition"],
)
def test_bad_status_reports_write_nothing(
    service: Service, params: dict[str, str], content: bytes | None, status: int, code: str
) -> None:
    with nothing_written(service):
        response = service.client.post(
            f"/jobs/{service.job.uuid}/status",
            params={**params, "token": service.token()},
            content=content,
            headers={"Content-Type": "application/json"} if content else {},
        )
        error_of(response, status, code)


def test_a_status_report_needs_the_token(service: Service) -> None:
    with nothing_written(service):
        response = service.client.post(
            f"/jobs/{service.job.uuid}/status", params={"status": "RUNNING"}
        )
        error_of(response, 401, "unauthorized")
        response = service.client.post(
            f"/jobs/{service.job.uuid}/status", params={"status": "RUNNING", "token": "bad"}
        )
        error_of(response, 403, "forbidden")


# -- reads --------------------------------------------------------------------------------


def test_get_a_job_and_its_history(service: Service) -> None:
    service.send("run")
    job = service.client.get(f"/jobs/{service.job.uuid}")
    assert job.status_code == 200
    assert job.json()["uuid"] == service.job.uuid
    assert job.json()["state"] == "RUNNING"
    assert job.json()["archive_path"] == service.job.archive_path

    history = service.client.get(f"/jobs/{service.job.uuid}/history")
    assert history.status_code == 200
    assert history.json()["job"] == service.job.uuid
    assert [e["name"] for e in history.json()["history"]] == ["create", "run"]


def test_reads_reveal_no_token(service: Service) -> None:
    token = service.token()
    admin = service.admin()
    for path in ("/jobs", f"/jobs/{service.job.uuid}", f"/jobs/{service.job.uuid}/history"):
        response = service.client.get(path)
        assert response.status_code == 200
        assert token not in response.text
        assert admin not in response.text


def test_list_jobs_with_filters(service: Service) -> None:
    second = service.new_job({"n": 2}, measurement="measurement.service.2")
    service.send("run", second)

    def uuids(**params: Any) -> list[str]:
        response = service.client.get("/jobs", params=params)
        assert response.status_code == 200, response.text
        return [j["uuid"] for j in response.json()["jobs"]]

    assert sorted(uuids()) == sorted([service.job.uuid, second.uuid])
    assert uuids(state="RUNNING") == [second.uuid]
    assert uuids(state="running") == [second.uuid]  # as on the command line, any case
    assert uuids(state="CREATED") == [service.job.uuid]
    assert uuids(metadata=M2) == [second.uuid]
    assert sorted(uuids(pipeline="tests.service")) == sorted([service.job.uuid, second.uuid])
    assert sorted(uuids(pipeline=service.pipeline_uuid, agent="tests.agent")) == sorted(
        [service.job.uuid, second.uuid]
    )
    assert uuids(agent="somebody else") == []
    page = service.client.get("/jobs", params={"limit": 1, "skip": 1}).json()
    assert (page["limit"], page["skip"], len(page["jobs"])) == (1, 1, 1)
    assert set(uuids(limit=1) + uuids(limit=1, skip=1)) == {service.job.uuid, second.uuid}


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"state": "SLEEPING"}, 400, "invalid_request"),
        ({"limit": 5000}, 400, "invalid_request"),
        ({"limit": "many"}, 400, "invalid_request"),
        ({"skip": -1}, 400, "invalid_request"),
        ({"metadata": "not-a-uuid"}, 400, "invalid_request"),
        ({"pipeline": "no.such.pipeline"}, 404, "not_found"),
    ],
)
def test_bad_job_filters(service: Service, params: dict[str, Any], status: int, code: str) -> None:
    error_of(service.client.get("/jobs", params=params), status, code)


def test_deleted_jobs_are_not_listed(service: Service) -> None:
    service.catalog.jobs.delete(service.job.uuid, token=service.admin())
    assert service.client.get("/jobs").json()["jobs"] == []
    error_of(service.client.get(f"/jobs/{service.job.uuid}"), 404, "not_found")


# -- indexing -----------------------------------------------------------------------------


def write_outputs(service: Service, files: dict[str, bytes]) -> None:
    write_outputs_of(service, service.job, files)


def write_outputs_of(service: Service, job: Job, files: dict[str, bytes]) -> None:
    root = service.archive_dir(job)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def test_a_job_asks_for_indexing(service: Service) -> None:
    write_outputs(service, {"out/result.csv": b"a,b\n1,2\n", "log.txt": b"done\n"})
    service.send("run")
    service.send("finish")
    assert service.client.get(f"/jobs/{service.job.uuid}/files").json()["files"] == []

    response = service.client.post(
        f"/jobs/{service.job.uuid}/index?token={service.token()}",
        json={"fixity": True, "level": "1"},
    )

    assert response.status_code == 200, response.text
    assert service.events()[-2:] == ["index", "indexed"]
    assert service.catalog.jobs.get(service.job.uuid).state == "FINISHED"
    files = service.client.get(f"/jobs/{service.job.uuid}/files")
    assert files.status_code == 200
    listed = files.json()["files"]
    assert len(listed) == 2
    assert all(service.job.uuid in f["generated_by"] for f in listed)
    assert {f["name"].rsplit("/", 1)[-1] for f in listed} == {"result.csv", "log.txt"}

    again = service.client.post(
        f"/jobs/{service.job.uuid}/index",
        json={"fixity": True, "filters": [r"\.csv$"]},
        headers={"Authorization": f"Bearer {service.token()}"},
    )
    assert again.status_code == 200, again.text
    assert service.store.count("file", {}) == 2


@pytest.mark.parametrize("body", [None, {}, {"level": None}], ids=["no body", "empty", "null"])
def test_indexing_without_a_level_uses_the_pipelines_declared_one(
    service: Service, body: dict[str, Any] | None
) -> None:
    pipeline, _ = service.catalog.pipelines.register(
        {"id": "tests.service.l2", "components": [{"image": "l2:1"}], "processing_levels": ["2"]}
    )
    plan = service.catalog.jobs.plan(
        pipeline=pipeline.uuid, metadata={"measurement_id": "measurement.service.1"}, data={}
    )
    job, _ = service.catalog.jobs.create(plan)
    write_outputs_of(service, job, {"result.csv": b"1\n"})
    service.send("run", job)
    service.send("finish", job)
    response = service.client.post(
        f"/jobs/{job.uuid}/index?token={service.token(job)}",
        **({} if body is None else {"json": body}),  # type: ignore[arg-type]
    )
    assert response.status_code == 200, response.text
    (record,) = service.catalog.indexing.files(job.uuid)
    assert record.level == "2"

    # A level given still wins; and the service's own job (a pipeline declaring no level)
    # gets level 1.
    again = service.client.post(
        f"/jobs/{job.uuid}/index?token={service.token(job)}", json={"level": "3"}
    )
    assert again.status_code == 200, again.text
    assert [f.level for f in service.catalog.indexing.files(job.uuid)] == ["3"]
    write_outputs(service, {"out.txt": b"x\n"})
    service.send("run")
    service.send("finish")
    plain = service.client.post(f"/jobs/{service.job.uuid}/index?token={service.token()}")
    assert plain.status_code == 200, plain.text
    assert [f.level for f in service.catalog.indexing.files(service.job.uuid)] == ["1"]


def test_indexing_needs_the_token_and_a_finished_job(service: Service) -> None:
    write_outputs(service, {"result.csv": b"1\n"})
    with nothing_written(service):
        error_of(service.client.post(f"/jobs/{service.job.uuid}/index"), 401, "unauthorized")
        error_of(
            service.client.post(f"/jobs/{service.job.uuid}/index?token=nope"), 403, "forbidden"
        )
        error_of(
            service.client.post(f"/jobs/{service.job.uuid}/index?token={service.token()}"),
            409,
            "invalid_transition",
        )
        error_of(
            service.client.post(
                f"/jobs/{service.job.uuid}/index?token={service.token()}",
                json={"fixity": "yes"},
            ),
            400,
            "invalid_request",
        )
    missing = typed_uuid("no such job", "pipelinejob")
    token = service.catalog.jobs.job_token(missing)
    error_of(service.client.post(f"/jobs/{missing}/index?token={token}"), 404, "not_found")


# -- admin --------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["reset", "ready", "delete", "undelete", "purge"])
def test_admin_actions_need_the_admin_token(service: Service, action: str) -> None:
    url = f"/admin/jobs/{service.job.uuid}/{action}"
    with nothing_written(service):
        error_of(service.client.post(url), 401, "unauthorized")
        error_of(service.client.post(f"{url}?token={service.token()}"), 403, "forbidden")
        error_of(
            service.client.post(url, headers={"Authorization": f"Bearer {service.token()}"}),
            403,
            "forbidden",
        )
    assert service.catalog.jobs.audit_log(service.job.uuid) == []


def test_reset_and_ready(service: Service) -> None:
    write_outputs(service, {"result.csv": b"1\n"})
    service.send("run")
    headers = {"Authorization": f"Bearer {service.admin()}"}

    reset = service.client.post(f"/admin/jobs/{service.job.uuid}/reset", headers=headers)
    assert reset.status_code == 200, reset.text
    assert reset.json()["job"]["state"] == "RESET"
    assert list(service.archive_dir().iterdir()) == []

    ready = service.client.post(f"/admin/jobs/{service.job.uuid}/ready?token={service.admin()}")
    assert ready.status_code == 200, ready.text
    assert ready.json()["job"]["state"] == "CREATED"
    error_of(
        service.client.post(f"/admin/jobs/{service.job.uuid}/ready", headers=headers),
        409,
        "invalid_transition",
    )
    actions = [r.action for r in service.catalog.jobs.audit_log(service.job.uuid)]
    assert sorted(actions) == ["ready", "reset"]
    assert all(
        r.actor["host"] == "testclient" for r in service.catalog.jobs.audit_log(service.job.uuid)
    )


def test_delete_undelete_and_purge(service: Service) -> None:
    write_outputs(service, {"result.csv": b"1\n"})
    headers = {"Authorization": f"Bearer {service.admin()}"}
    base = f"/admin/jobs/{service.job.uuid}"

    deleted = service.client.post(f"{base}/delete", headers=headers)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["job"]["visible"] is False
    error_of(service.client.get(f"/jobs/{service.job.uuid}"), 404, "not_found")

    restored = service.client.post(f"{base}/undelete", headers=headers)
    assert restored.status_code == 200, restored.text
    assert service.client.get(f"/jobs/{service.job.uuid}").status_code == 200

    with nothing_written(service):
        dry = service.client.post(f"{base}/purge", params={"dry_run": "true"}, headers=headers)
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] is True
    assert dry.json()["archive_path"] == service.job.archive_path
    assert any(e.endswith("result.csv") for e in dry.json()["archive_entries"])

    purged = service.client.post(f"{base}/purge", headers=headers)
    assert purged.status_code == 200, purged.text
    assert purged.json()["dry_run"] is False
    assert service.document() is None
    error_of(service.client.get(f"/jobs/{service.job.uuid}"), 404, "not_found")
    error_of(service.client.post(f"{base}/purge", headers=headers), 404, "not_found")


def test_admin_actions_on_an_unknown_job_are_404(service: Service) -> None:
    missing = typed_uuid("no such job", "pipelinejob")
    for action in ("reset", "delete", "undelete", "purge"):
        response = service.client.post(f"/admin/jobs/{missing}/{action}?token={service.admin()}")
        error_of(response, 404, "not_found")


def test_the_service_never_issues_admin_tokens(service: Service) -> None:
    paths = service.client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if "token" in p]
    error_of(service.client.get("/admin/token"), 404, "not_found")
    error_of(service.client.post("/admin/token"), 404, "not_found")


# -- health, documentation, unknown routes ------------------------------------------------


def test_healthz(service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    ok = service.client.get("/healthz")
    assert (ok.status_code, ok.json()) == (200, {"status": "ok"})

    def down(*args: Any, **kwargs: Any) -> Any:
        raise UnavailableError("cannot reach the database at nowhere")

    monkeypatch.setattr(service.catalog.store, "find", down)
    failing = service.client.get("/healthz")
    assert failing.status_code == 503
    assert failing.json()["status"] == "unavailable"
    assert failing.json()["error"]["code"] == "unavailable"


def test_openapi_documents_every_route(service: Service) -> None:
    spec = service.client.get("/openapi.json").json()
    operations = {
        (method.upper(), path): op
        for path, item in spec["paths"].items()
        for method, op in item.items()
    }
    expected = {
        ("POST", "/jobs/{job_uuid}/events"),
        ("POST", "/jobs/{job_uuid}/status"),
        ("GET", "/jobs"),
        ("GET", "/jobs/{job_uuid}"),
        ("GET", "/jobs/{job_uuid}/history"),
        ("GET", "/jobs/{job_uuid}/files"),
        ("POST", "/jobs/{job_uuid}/index"),
        ("GET", "/jobs/{job_uuid}/prov"),
        ("GET", "/files/lineage"),
        ("GET", "/lineage/{uuid}"),
        ("GET", "/jobs/{job_uuid}/export"),
        ("GET", "/jobs/{job_uuid}/executions"),
        ("GET", "/executions/{execution_id}"),
        ("POST", "/admin/jobs/{job_uuid}/reset"),
        ("POST", "/admin/jobs/{job_uuid}/ready"),
        ("POST", "/admin/jobs/{job_uuid}/delete"),
        ("POST", "/admin/jobs/{job_uuid}/undelete"),
        ("POST", "/admin/jobs/{job_uuid}/purge"),
        ("GET", "/healthz"),
    }
    assert set(operations) == expected
    for key, op in operations.items():
        assert op.get("summary"), key
        assert op.get("description"), key
    assert set(spec["components"]["securitySchemes"]) == {"bearerToken", "queryToken"}
    assert "security" not in operations[("GET", "/jobs")]
    assert "security" in operations[("POST", "/jobs/{job_uuid}/events")]
    assert service.client.get("/docs").status_code == 200


def test_openapi_describes_what_the_routes_really_answer(service: Service) -> None:
    spec = service.client.get("/openapi.json").json()
    declared_tags = {tag["name"] for tag in spec["tags"]}
    schemas = spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            key = (method.upper(), path)
            assert set(op["tags"]) <= declared_tags, key
            responses = op["responses"]
            # Request validation errors are answered 400, never FastAPI's default 422.
            assert "422" not in responses, key
            assert {"500", "503"} <= set(responses), key
            if path != "/healthz":
                assert "400" in responses, key
            for status, response in responses.items():
                if status != "200" and path != "/healthz":
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorResponse"), key
            if path in ("/jobs/{job_uuid}/prov", "/jobs/{job_uuid}/export"):
                continue  # a W3C PROV-JSON document (or a crate): an open object by design
            body = responses["200"]["content"]["application/json"]["schema"]
            assert "$ref" in body, (key, body)
            assert schemas[body["$ref"].rsplit("/", 1)[1]]["properties"], key
    assert "HTTPValidationError" not in schemas
    job = schemas["JobModel"]["properties"]
    assert {"uuid", "state", "archive_path", "child_of", "revision"} <= set(job)


def test_the_documented_file_record_is_the_stored_one() -> None:
    # The service derives its file record from schemas/file.json; FileRecord.to_dict()
    # is what the route returns. All three name the same fields.
    schema = schema_for("file")
    stored = {name for name in schema["properties"] if not name.startswith("_")}
    documented = FileRecordModel.model_json_schema()
    assert set(documented["properties"]) == stored
    assert [f.name for f in dataclasses.fields(FileRecord)] == list(documented["properties"])
    nullable = {
        name
        for name, field in documented["properties"].items()
        if {"type": "null"} in field.get("anyOf", [])
    }
    assert nullable == {"size", "sha256", "modified_date", "fixity_date", "note"}


def test_unknown_routes_and_methods_use_the_error_body(service: Service) -> None:
    error_of(service.client.get("/nowhere"), 404, "not_found")
    error_of(service.client.get(events_url(service)), 405, "method_not_allowed")


def test_an_unexpected_failure_is_500_with_the_error_body(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("internal detail /srv/secret-path")

    monkeypatch.setattr(service.catalog.jobs, "find", broken)
    with TestClient(create_app(service.catalog), raise_server_exceptions=False) as client:
        response = client.get("/jobs")
    body = error_of(response, 500, "error")
    assert "secret-path" not in response.text
    assert "GET /jobs" in body["message"]


# -- provenance ---------------------------------------------------------------------------


def _indexed(service: Service) -> str:
    """Run the service's job, write one output, index it; return the file's UUID."""
    (service.archive_dir() / "result.csv").write_text("x,y\n1,2\n", encoding="utf-8")
    service.send("run")
    service.send("finish")
    report = service.catalog.indexing.index(service.job.uuid, fixity=True, transition=True)
    return report.files[0]


def test_lineage_of_a_file_by_uuid_and_by_path(service: Service) -> None:
    file_uuid = _indexed(service)

    by_uuid = service.client.get("/files/lineage", params={"file": file_uuid})
    assert by_uuid.status_code == 200, by_uuid.text
    body = by_uuid.json()
    assert body["file"]["uuid"] == file_uuid
    assert [j["uuid"] for j in body["jobs"]] == [service.job.uuid]
    assert [p["uuid"] for p in body["pipelines"]] == [service.pipeline_uuid]
    assert [m["kind"] for m in body["metadata"]] == [
        "measurement",
        "sample",
        "experiment",
        "experiment_design",
    ]

    path = f"{service.job.archive_path}/result.csv"
    assert service.client.get("/files/lineage", params={"file": path}).json() == body


def test_lineage_errors(service: Service) -> None:
    missing = service.client.get("/files/lineage", params={"file": "/no/such.csv"})
    error_of(missing, 404, "not_found")
    error_of(
        service.client.get("/files/lineage", params={"file": service.job.uuid}),
        400,
        "invalid_request",
    )


def test_prov_export_of_a_job(service: Service) -> None:
    file_uuid = _indexed(service)

    response = service.client.get(f"/jobs/{service.job.uuid}/prov")

    assert response.status_code == 200, response.text
    document = response.json()
    assert f"dc:{service.job.uuid}" in document["activity"]
    assert document["entity"][f"dc:{file_uuid}"]["dc:name"].endswith("/result.csv")
    service.catalog.jobs.delete(service.job.uuid, token=service.admin())
    error_of(service.client.get(f"/jobs/{service.job.uuid}/prov"), 404, "not_found")


@pytest.mark.parametrize(
    "path",
    [
        "/jobs/J/events?token=SECRET",
        "/jobs/J/events?a=1&token=SECRET&b=2",
        "/jobs/J/events?%74oken=SECRET",
        "/jobs/J/events?tok%65n=SECRET&event_id=x",
        "/jobs/J/events?TOKEN=SECRET",
    ],
)
def test_the_access_log_filter_masks_every_spelling_of_the_token(path: str) -> None:
    import logging

    from datacatalog.service.server import RedactTokens

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", path, "1.1", 200),
        None,
    )
    assert RedactTokens().filter(record)
    line = record.getMessage()
    assert "SECRET" not in line
    assert "=***" in line

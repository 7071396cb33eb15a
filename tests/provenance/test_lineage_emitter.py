"""Live OpenLineage emission to a local HTTP receiver and to a file, and a receiver that is down."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from datacatalog.catalog import Catalog
from datacatalog.errors import InvalidRequestError
from datacatalog.provenance import emitter as emitters
from datacatalog.settings import Settings
from datacatalog.store import Store
from tests.support.lineage_catalog import Built, build


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]
    paths: list[str]

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        type(self).received.append(json.loads(self.rfile.read(length)))
        type(self).paths.append(self.path)
        self.send_response(201)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]], list[str]]]:
    handler = type("Handler", (_Receiver,), {"received": [], "paths": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.received, handler.paths
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def built(store: Store, tmp_path: Path) -> Built:
    return build(store, tmp_path / "data")


def test_events_arrive_in_order_at_an_http_receiver(
    built: Built, receiver: tuple[str, list[dict[str, Any]], list[str]]
) -> None:
    url, received, paths = receiver
    live = emitters.OpenLineageEmitter(
        built.catalog.store, emitters.transport_for(url=url), storage=built.catalog.storage
    )
    jobs = built.catalog.jobs
    jobs.observers.append(live)
    job_uuid = built.ids["job_b"]
    jobs.send(job_uuid, "run", event_id="run-1")
    jobs.send(job_uuid, "run", event_id="run-1")  # a replay: nothing new is sent
    jobs.send(job_uuid, "update", data={"progress": 0.5})  # maps to no run event
    jobs.send(job_uuid, "finish")
    jobs.reset(job_uuid, token=jobs.admin_token())
    status = live.close()
    assert (status.sent, status.failed, status.pending) == (2, 0, 0)
    assert [e["eventType"] for e in received] == ["START", "COMPLETE"]
    assert paths == ["/api/v1/lineage"] * 2
    assert {e["run"]["runId"] for e in received} == {job_uuid}
    exported = emitters.lifecycle(built.catalog.store, job_uuid, storage=built.catalog.storage)

    def core(event: dict[str, Any]) -> tuple[Any, ...]:
        # The client adds its own environment facets; the reset has unlinked the outputs.
        names = [d["name"] for d in event["inputs"]]
        return event["eventType"], event["eventTime"], event["run"]["runId"], event["job"], names

    assert [core(e) for e in received] == [core(e.to_dict()) for e in exported]


def test_a_receiver_that_is_down_never_fails_the_write_and_is_reported(
    built: Built, tmp_path: Path
) -> None:
    waits: list[float] = []
    spool = tmp_path / "spool.jsonl"
    live = emitters.OpenLineageEmitter(
        built.catalog.store,
        emitters.transport_for(url=f"http://127.0.0.1:{_closed_port()}", timeout=0.5),
        retries=2,
        spool=spool,
        wait=lambda seconds: waits.append(seconds) or False,
    )
    jobs = built.catalog.jobs
    jobs.observers.append(live)
    result = jobs.send(built.ids["job_a"], "run")
    assert result.applied and result.job.state == "RUNNING"
    assert jobs.get(built.ids["job_a"]).state == "RUNNING"
    status = live.close()
    assert (status.sent, status.failed) == (0, 1)
    assert "ConnectionError" in status.errors[0]
    assert waits == [0.2, 0.4]  # two retries, with growing pauses, none slept for real
    (undelivered,) = live.undelivered
    assert undelivered.attempts == 3 and undelivered.event["eventType"] == "START"
    spooled = [json.loads(line) for line in spool.read_text().splitlines()]
    assert spooled[0]["event"]["run"]["runId"] == built.ids["job_a"]


def test_an_observer_failure_is_logged_not_raised(built: Built) -> None:
    def broken(result: object) -> None:
        raise RuntimeError("observer bug")

    built.catalog.jobs.observers.append(broken)
    assert built.catalog.jobs.send(built.ids["job_a"], "run").applied


def test_the_environment_turns_file_emission_on(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "events.jsonl"
    monkeypatch.setenv(emitters.FILE_ENV, str(target))
    monkeypatch.setenv(emitters.NAMESPACE_ENV, "lab")
    built = build(store, tmp_path / "data")
    assert built.catalog.openlineage is not None
    jobs = built.catalog.jobs
    jobs.send(built.ids["job_a"], "run")
    jobs.send(built.ids["job_a"], "fail", data={"message": "disk full"})
    built.catalog.openlineage.close()
    events = [json.loads(line) for line in target.read_text().splitlines()]
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    assert {e["job"]["namespace"] for e in events} == {"lab"}
    assert events[1]["run"]["facets"]["errorMessage"]["message"] == "disk full"


def test_bad_emission_settings_are_refused(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="http:// or https://"):
        emitters.transport_for(url="ftp://example")
    with pytest.raises(InvalidRequestError, match="exactly one"):
        emitters.transport_for(url="http://x", file="/tmp/y")
    settings = Settings.load(env={}, data_dir=tmp_path, secret="e" * 32)
    with pytest.raises(InvalidRequestError, match="without '://'"):
        emitters.from_environment(
            store,
            env={emitters.FILE_ENV: str(tmp_path / "f"), emitters.NAMESPACE_ENV: "a://b"},
        )
    assert Catalog(store, settings=settings).openlineage is None

"""Security cases: tokens, admin routes, path escapes, operator injection, big and slow bodies.

Each refusal is checked to write nothing (the whole database compared before and after)
and to leave files outside the archive untouched. The service is exercised through its
application on both engines; the slow-body case runs a real server process, because only
a real server shows whether one slow client holds up the others.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from datacatalog import provenance, tokens
from datacatalog.errors import DataCatalogError, ForbiddenError, InvalidRequestError
from datacatalog.store import Store
from tests.support.hostile import SECRET, World, world, writes_nothing

ADMIN_ROUTES = ["reset", "ready", "delete", "undelete", "purge"]


@pytest.fixture
def hostile(store: Store, tmp_path: Path) -> Iterator[World]:
    with world(store, tmp_path / "data", max_body_bytes=8192) as built:
        yield built


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return str(body["error"]["code"])


# -- tokens -------------------------------------------------------------------------------


def _bad_job_tokens(world: World) -> dict[str, str]:
    good = world.token
    return {
        "forged": "0" * 64,
        "truncated": good[:-1],
        "first half": good[:32],
        "extended": good + "0",
        "upper case": good.upper(),
        "admin token": world.catalog.jobs.admin_token(),
        "another secret": tokens.job_token("x" * 32, world.job.uuid),
    }


def test_forged_and_truncated_job_tokens_change_nothing(hostile: World) -> None:
    url = f"/jobs/{hostile.job.uuid}/events"
    with writes_nothing(hostile.store):
        for what, token in _bad_job_tokens(hostile).items():
            for given in (
                {"params": {"token": token}},
                {"headers": {"Authorization": f"Bearer {token}"}},
            ):
                response = hostile.client.post(url, json={"name": "update"}, **given)
                assert response.status_code == 403, (what, response.text)
                assert error_code(response) == "forbidden"
        response = hostile.client.post(url, json={"name": "update"})
        assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"


def test_a_job_token_does_not_open_another_job(hostile: World) -> None:
    other = hostile.new_job({"other": True})
    with writes_nothing(hostile.store):
        for path in ("events", "status?status=RUNNING", "index"):
            response = hostile.client.post(
                f"/jobs/{other.uuid}/{path}",
                json={"name": "run"} if path == "events" else None,
                headers={"Authorization": f"Bearer {hostile.token}"},
            )
            assert response.status_code == 403, (path, response.text)


def test_admin_routes_need_a_current_admin_token(hostile: World) -> None:
    jobs = hostile.catalog.jobs
    lifetime = hostile.catalog.settings.admin_token_lifetime
    now = time.time()
    expired = tokens.admin_token(SECRET, lifetime=lifetime, now=now - 3 * lifetime)
    future = tokens.admin_token(SECRET, lifetime=lifetime, now=now + 3 * lifetime)
    current = jobs.admin_token()
    with writes_nothing(hostile.store):
        for action in ADMIN_ROUTES:
            url = f"/admin/jobs/{hostile.job.uuid}/{action}"
            assert hostile.client.post(url).status_code == 401, action
            for what, token in {
                "job token": hostile.token,
                "expired": expired,
                "future": future,
                "truncated": current[:-2],
                "forged": "f" * len(current),
            }.items():
                response = hostile.client.post(url, params={"token": token})
                assert response.status_code == 403, (action, what, response.text)
                assert error_code(response) == "forbidden"
    with pytest.raises(ForbiddenError):
        tokens.check_admin_token(SECRET, expired, lifetime=lifetime, now=now)


# -- paths --------------------------------------------------------------------------------

TRAVERSALS = [
    "/products/../../etc",
    "/../etc/passwd",
    "/products/v2/./../x",
    "relative/path",
    "/products/\x00/x",
    "",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_traversal_in_every_path_field_is_refused(hostile: World, path: str) -> None:
    jobs = hostile.catalog.jobs
    with writes_nothing(hostile.store):
        with pytest.raises(InvalidRequestError):
            jobs.plan(
                pipeline=hostile.pipeline_uuid,
                metadata={"sample_id": "sample.hostile"},
                archive_path=path,
            )
        with pytest.raises(DataCatalogError):  # not a path, or no such file
            provenance.lineage(hostile.store, path)
        response = hostile.client.get("/files/lineage", params={"file": path})
        assert response.status_code in (400, 404), response.text
        with pytest.raises(InvalidRequestError):
            hostile.catalog.storage.get(hostile.job.archive_system).resolve(path)


def _outside(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.txt").write_text("not the catalog's\n")
    return outside


def test_symlinks_out_of_the_archive_are_never_followed(hostile: World, tmp_path: Path) -> None:
    """Indexing, reset and purge stay inside the storage root whatever links say."""
    outside = _outside(tmp_path)
    jobs = hostile.catalog.jobs
    system = hostile.catalog.storage.get(hostile.job.archive_system)
    root = Path(system.resolve(hostile.job.archive_path))
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "escape-file").symlink_to(outside / "secret.txt")
    (root / "inside.txt").write_text("ours\n")
    jobs.send(hostile.job.uuid, "finish")

    report = hostile.catalog.indexing.index(hostile.job.uuid, fixity=True, transition=True)
    names = [f.name for f in hostile.catalog.indexing.files(hostile.job.uuid)]
    assert names == [f"{hostile.job.archive_path}/inside.txt"]
    assert {reason for _path, reason in report.skipped} == {"symlink_outside_root"}

    admin = jobs.admin_token()
    jobs.reset(hostile.job.uuid, token=admin)
    assert (outside / "secret.txt").read_text() == "not the catalog's\n"
    jobs.purge(hostile.job.uuid, token=admin)
    assert (outside / "secret.txt").read_text() == "not the catalog's\n"
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


def test_an_archive_path_through_a_symlink_is_refused(hostile: World, tmp_path: Path) -> None:
    outside = _outside(tmp_path)
    system = hostile.catalog.storage.get(hostile.job.archive_system)
    products = Path(system.resolve("/products"))
    products.mkdir(parents=True, exist_ok=True)
    (products / "link").symlink_to(outside, target_is_directory=True)
    jobs = hostile.catalog.jobs
    with writes_nothing(hostile.store), pytest.raises(DataCatalogError):
        plan = jobs.plan(
            pipeline=hostile.pipeline_uuid,
            metadata={"sample_id": "sample.hostile"},
            data={"through": "link"},
            archive_path="/products/link/job",
        )
        jobs.create(plan)
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]


# -- operator injection -------------------------------------------------------------------


def test_operator_injection_through_data_query_parameters_and_ids(hostile: World) -> None:
    client, uuid, token = hostile.client, hostile.job.uuid, hostile.token
    with writes_nothing(hostile.store):
        for data in ({"$set": {"state": "FINISHED"}}, {"a": {"$where": "1"}}, {"a.b": 1}):
            response = client.post(
                f"/jobs/{uuid}/events",
                params={"token": token},
                json={"name": "update", "data": data},
            )
            assert response.status_code == 400 and error_code(response) == "invalid_request"
        for params in (
            {"agent[$ne]": "x"},
            {"pipeline": '{"$ne": null}'},
            {"metadata": '{"$gt": ""}'},
            {"state": "$ne"},
        ):
            response = client.get("/jobs", params=params)
            # Either refused, or taken literally: never the whole collection.
            if response.status_code == 200:
                assert response.json()["jobs"] == [] or params == {"agent[$ne]": "x"}
            else:
                assert response.status_code in (400, 404), response.text
        response = client.get("/jobs", params={"agent[$ne]": "x"})
        assert len(response.json()["jobs"]) == hostile.store.count("job", {})  # ignored, not read
        for job_id in ('{"$ne": null}', "$ne", "[object]"):
            assert client.get(f"/jobs/{job_id}").status_code == 400
    with writes_nothing(hostile.store), pytest.raises(InvalidRequestError):
        hostile.catalog.jobs.find(agent={"$ne": None})  # type: ignore[arg-type]


# -- big bodies, slow bodies ----------------------------------------------------------------


def test_oversized_bodies_are_refused_before_parsing(hostile: World) -> None:
    url = f"/jobs/{hostile.job.uuid}/events?token={hostile.token}"
    with writes_nothing(hostile.store):
        big = {"name": "update", "data": {"x": "y" * 10_000}}
        response = hostile.client.post(url, json=big)
        assert response.status_code == 413 and error_code(response) == "payload_too_large"

        def chunks() -> Iterator[bytes]:
            yield b'{"name": "update", "data": {"x": "'
            for _ in range(20):
                yield b"y" * 1000
            yield b'"}}'

        response = hostile.client.post(
            url, content=chunks(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_slow_body_clients_do_not_hold_up_the_others(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "DATACATALOG_DATA_DIR": str(tmp_path),
        "DATACATALOG_SECRET": SECRET,
    }
    env.pop("DATACATALOG_MONGODB_URI", None)
    log = tmp_path / "service.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "datacatalog.service", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    slow: list[socket.socket] = []
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError(log.read_text())
        job = "107a90b7-f083-5167-a63d-41a3bf278bf8"
        for _ in range(16):  # slow clients: a promised body that never finishes arriving
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(
                f"POST /jobs/{job}/events HTTP/1.1\r\nHost: x\r\n"
                "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{".encode()
            )
            slow.append(sock)
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(3):
                for sock in slow:
                    sock.sendall(b" ")  # a byte now and then keeps them open
                assert client.get("/healthz").json() == {"status": "ok"}
                response = client.get(f"/jobs/{job}")
                assert response.status_code == 404 and error_code(response) == "not_found"
                time.sleep(0.2)
    finally:
        for sock in slow:
            sock.close()
        server.terminate()
        server.wait(timeout=30)

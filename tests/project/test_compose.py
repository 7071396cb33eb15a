"""Checks on docker-compose.yml and the Dockerfile (no Docker engine needed).

The compose file is parsed with PyYAML and checked for what a working deployment needs:
MongoDB as a one-member replica set that initiates itself and reports healthy only as a
writable primary, a named volume for its data, and the service built from the Dockerfile,
wired to MongoDB by its service name, waiting for it to be healthy, with no secret written
down.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def mongo(compose: dict[str, Any]) -> dict[str, Any]:
    return dict(compose["services"]["mongo"])


@pytest.fixture(scope="module")
def service(compose: dict[str, Any]) -> dict[str, Any]:
    return dict(compose["services"]["datacatalog"])


def as_args(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service["environment"]
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_both_services_are_declared(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"mongo", "datacatalog"}


def test_mongo_runs_a_replica_set_on_mongo_6(mongo: dict[str, Any]) -> None:
    assert mongo["image"] == "mongo:6.0"
    args = as_args(mongo["command"])
    assert args[args.index("--replSet") + 1] == "rs0"
    assert "--bind_ip_all" in args


def test_mongo_healthcheck_initiates_and_waits_for_a_writable_primary(
    mongo: dict[str, Any],
) -> None:
    check = mongo["healthcheck"]
    test = check["test"]
    assert isinstance(test, list)
    assert test[0] == "CMD"
    assert test[1] == "mongosh"
    script = test[-1]
    assert "rs.initiate(" in script
    assert '_id: "rs0"' in script
    # The member is named by the service name, so the service container can reach it.
    assert '"mongo:27017"' in script
    assert "isWritablePrimary" in script
    assert "quit(" in script
    assert "$" not in script  # compose would interpolate it
    for key in ("interval", "timeout", "retries"):
        assert check[key]
    assert int(check["retries"]) >= 10


def test_mongo_keeps_its_data_in_a_named_volume(
    compose: dict[str, Any], mongo: dict[str, Any]
) -> None:
    mounts = {v.split(":", 1)[1]: v.split(":", 1)[0] for v in mongo["volumes"]}
    assert "/data/db" in mounts
    assert mounts["/data/db"] in compose["volumes"]


def test_the_service_is_built_from_the_dockerfile(service: dict[str, Any]) -> None:
    build = service["build"]
    context = build if isinstance(build, str) else build["context"]
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (ROOT / context / dockerfile).resolve() == DOCKERFILE


def test_the_service_uri_names_the_mongo_service_and_the_replica_set(
    compose: dict[str, Any], service: dict[str, Any]
) -> None:
    uri = urlsplit(environment(service)["DATACATALOG_MONGODB_URI"])
    assert uri.scheme == "mongodb"
    assert uri.hostname == "mongo"
    assert uri.hostname in compose["services"]
    assert (uri.port or 27017) == 27017
    assert parse_qs(uri.query)["replicaSet"] == ["rs0"]


def test_the_secret_comes_from_the_environment_and_is_required(service: dict[str, Any]) -> None:
    env = environment(service)
    secret = env["DATACATALOG_SECRET"]
    assert re.fullmatch(r"\$\{DATACATALOG_SECRET:\?[^}]+\}", secret), secret
    assert env["DATACATALOG_SERVICE_URL"].startswith("${DATACATALOG_SERVICE_URL")


def test_the_service_waits_for_a_healthy_mongo(service: dict[str, Any]) -> None:
    assert service["depends_on"] == {"mongo": {"condition": "service_healthy"}}


def test_the_service_port_is_published(service: dict[str, Any]) -> None:
    published = [str(p) for p in service["ports"]]
    assert any(p.endswith(":8750") for p in published), published


def test_the_service_keeps_its_archive_in_a_named_volume(
    compose: dict[str, Any], service: dict[str, Any]
) -> None:
    mounts = {v.split(":", 1)[1]: v.split(":", 1)[0] for v in service["volumes"]}
    data_dir = environment(service)["DATACATALOG_DATA_DIR"]
    assert mounts[data_dir] in compose["volumes"]


def test_the_dockerfile_installs_the_package_and_serves() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim$", text, re.MULTILINE)
    assert re.search(r"pip install \.", text)
    assert (
        'CMD ["datacatalog", "serve", "--host", "0.0.0.0", "--port", "8750"]' in text.splitlines()
    )
    assert "DATACATALOG_SECRET" not in text  # never baked into the image
    for copied in ("pyproject.toml", "schemas", "datacatalog"):
        assert re.search(rf"^COPY {copied}\b", text, re.MULTILINE), copied

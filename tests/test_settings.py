"""Tests for datacatalog.settings: variables, the config file, the generated secret."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from datacatalog.errors import InvalidRequestError
from datacatalog.settings import DEFAULT_SERVICE_URL, Settings, default_data_dir
from datacatalog.storage import StorageSystem


def write_config(tmp_path: Path, text: str, name: str = "datacatalog.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_zero_configuration(tmp_path: Path) -> None:
    settings = Settings.load(env={})
    assert settings.data_dir == default_data_dir()
    assert settings.mongodb_uri is None
    assert settings.mongodb_database == "catalog"
    assert settings.secret is None
    assert settings.service_url == DEFAULT_SERVICE_URL
    assert settings.default_storage == "local"
    assert settings.admin_token_lifetime == 3600
    assert settings.lock_timeout == 30.0
    assert settings.local_engine == "mongod"
    assert settings.local_idle_timeout == 900.0
    assert settings.store_target().startswith("local://")


def test_environment_variables(tmp_path: Path) -> None:
    env = {
        "DATACATALOG_DATA_DIR": str(tmp_path / "data"),
        "DATACATALOG_MONGODB_URI": "mongodb://db.example.org:27017/",
        "DATACATALOG_MONGODB_DATABASE": "prod",
        "DATACATALOG_SECRET": "a-very-long-secret-value",
        "DATACATALOG_SERVICE_URL": "https://catalog.example.org/",
        "DATACATALOG_STORAGE_SYSTEMS": '{"scratch": "memory://scratch"}',
        "DATACATALOG_DEFAULT_STORAGE": "scratch",
        "DATACATALOG_ADMIN_TOKEN_LIFETIME": "120",
        "DATACATALOG_MAX_BODY_BYTES": "2048",
        "DATACATALOG_LOCK_TIMEOUT": "0.5",
    }
    settings = Settings.load(env=env)
    assert settings.data_dir == tmp_path / "data"
    assert settings.mongodb_uri == "mongodb://db.example.org:27017/"
    assert settings.store_target() == "mongodb://db.example.org:27017/"
    assert settings.mongodb_database == "prod"
    assert settings.secret == "a-very-long-secret-value"
    assert settings.service_url == "https://catalog.example.org"
    assert settings.storage_systems == {"scratch": "memory://scratch"}
    assert settings.default_storage == "scratch"
    assert settings.admin_token_lifetime == 120
    assert settings.max_body_bytes == 2048
    assert settings.lock_timeout == 0.5


def test_variables_without_the_prefix_are_ignored(tmp_path: Path) -> None:
    settings = Settings.load(env={"MONGODB_URI": "mongodb://elsewhere/", "SECRET": "x" * 32})
    assert settings.mongodb_uri is None
    assert settings.secret is None


def test_empty_variable_counts_as_unset() -> None:
    assert Settings.load(env={"DATACATALOG_MONGODB_URI": ""}).mongodb_uri is None


def test_reads_os_environ_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATACATALOG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATACATALOG_MONGODB_DATABASE", "fromenv")
    settings = Settings.load()
    assert settings.data_dir == tmp_path
    assert settings.mongodb_database == "fromenv"


def test_config_file(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        f"""
data_dir: {tmp_path / "d"}
mongodb_uri: mongodb://file.example.org/
mongodb_database: fromfile
storage_systems:
  bucket: s3://bucket/prefix
admin_token_lifetime: 60
lock_timeout: 2
""",
    )
    settings = Settings.load(env={"DATACATALOG_CONFIG": str(config)})
    assert settings.data_dir == tmp_path / "d"
    assert settings.mongodb_uri == "mongodb://file.example.org/"
    assert settings.mongodb_database == "fromfile"
    assert settings.storage_systems == {"bucket": "s3://bucket/prefix"}
    assert settings.admin_token_lifetime == 60
    assert settings.lock_timeout == 2.0


def test_json_config_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, '{"mongodb_database": "j"}', name="c.json")
    assert Settings.load(env={"DATACATALOG_CONFIG": str(config)}).mongodb_database == "j"


def test_environment_overrides_file_and_overrides_win(tmp_path: Path) -> None:
    config = write_config(tmp_path, "mongodb_database: fromfile\nservice_url: http://f:1\n")
    env = {"DATACATALOG_CONFIG": str(config), "DATACATALOG_MONGODB_DATABASE": "fromenv"}
    settings = Settings.load(env=env)
    assert settings.mongodb_database == "fromenv"
    assert settings.service_url == "http://f:1"
    overridden = Settings.load(env=env, mongodb_database="fromcode", service_url=None)
    assert overridden.mongodb_database == "fromcode"
    assert overridden.service_url == "http://f:1"


def test_empty_config_file(tmp_path: Path) -> None:
    config = write_config(tmp_path, "")
    assert Settings.load(env={"DATACATALOG_CONFIG": str(config)}).mongodb_database == "catalog"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mongodb_uri: [unclosed\n", "not valid YAML/JSON"),
        ("- a\n- b\n", "must hold a mapping"),
        ("mongo_uri: mongodb://typo/\n", "unknown setting(s): mongo_uri"),
        ("admin_token_lifetime: soon\n", "admin_token_lifetime must be a number"),
        ("storage_systems: [a, b]\n", "storage_systems must map names"),
        ("storage_systems: {a: 1}\n", "storage_systems must map names"),
    ],
)
def test_bad_config_file_refused(tmp_path: Path, text: str, message: str) -> None:
    config = write_config(tmp_path, text)
    with pytest.raises(InvalidRequestError) as info:
        Settings.load(env={"DATACATALOG_CONFIG": str(config)})
    assert message in str(info.value)


def test_missing_config_file_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(InvalidRequestError, match="cannot read config file") as info:
        Settings.load(env={"DATACATALOG_CONFIG": str(missing)})
    assert str(missing) in str(info.value)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ADMIN_TOKEN_LIFETIME", "an hour", "admin_token_lifetime must be a number"),
        ("ADMIN_TOKEN_LIFETIME", "0", "admin_token_lifetime must be positive"),
        ("MAX_BODY_BYTES", "-5", "max_body_bytes must be positive"),
        ("LOCK_TIMEOUT", "later", "lock_timeout must be a number"),
        ("LOCK_TIMEOUT", "-1", "lock_timeout must be positive"),
        ("STORAGE_SYSTEMS", "{not json", "storage_systems must be a JSON object"),
        ("STORAGE_SYSTEMS", '["memory://x"]', "storage_systems must map names"),
    ],
)
def test_bad_variable_refused(name: str, value: str, message: str) -> None:
    with pytest.raises(InvalidRequestError) as info:
        Settings.load(env={"DATACATALOG_" + name: value})
    assert message in str(info.value)


def test_unknown_override_refused() -> None:
    with pytest.raises(InvalidRequestError, match="unknown setting"):
        Settings.load(env={}, colour="blue")


def test_storage_map_includes_the_local_archive(tmp_path: Path) -> None:
    settings = Settings.load(
        env={
            "DATACATALOG_DATA_DIR": str(tmp_path),
            "DATACATALOG_STORAGE_SYSTEMS": '{"s3": "s3://b/p"}',
        }
    )
    systems = settings.storage_map()
    assert systems == {"local": f"file://{tmp_path}/archive", "s3": "s3://b/p"}


def test_the_local_archive_of_a_data_dir_with_spaces(tmp_path: Path) -> None:
    data_dir = tmp_path / "Application Support" / "datacatalog"
    settings = Settings.load(env={}, data_dir=data_dir)
    system = StorageSystem(name="local", url=settings.storage_map()["local"])
    system.makedirs("/products/x")
    assert (data_dir / "archive" / "products" / "x").is_dir()
    assert not (tmp_path / "Application%20Support").exists()


def test_embedded_target_under_data_dir(tmp_path: Path) -> None:
    env = {"DATACATALOG_DATA_DIR": str(tmp_path), "DATACATALOG_LOCAL_ENGINE": "json"}
    settings = Settings.load(env=env)
    assert settings.embedded_path == tmp_path / "catalog.json"
    assert settings.store_target() == "embedded://" + str((tmp_path / "catalog.json").resolve())


def test_managed_server_target_names_the_data_dir_and_idle_timeout(tmp_path: Path) -> None:
    from datacatalog.store.local import parse_local_uri

    spaced = tmp_path / "my data?#dir"
    env = {"DATACATALOG_DATA_DIR": str(spaced), "DATACATALOG_LOCAL_IDLE_TIMEOUT": "60"}
    settings = Settings.load(env=env)
    assert settings.local_idle_timeout == 60.0
    assert parse_local_uri(settings.store_target()) == (spaced.resolve(), 60.0)


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("DATACATALOG_LOCAL_ENGINE", "sqlite", "local_engine must be one of mongod, json"),
        ("DATACATALOG_LOCAL_IDLE_TIMEOUT", "0", "local_idle_timeout must be positive"),
        ("DATACATALOG_LOCAL_IDLE_TIMEOUT", "soon", "local_idle_timeout must be a number"),
    ],
)
def test_local_settings_are_checked(variable: str, value: str, named: str) -> None:
    with pytest.raises(InvalidRequestError, match=named):
        Settings.load(env={variable: value})


@pytest.mark.parametrize(
    "target", ["local://relative/dir", "local:///d?idle_timeout=-1", "local:///d?idle_timeout=x"]
)
def test_malformed_local_targets_are_refused(target: str) -> None:
    from datacatalog.store import connect

    with pytest.raises(InvalidRequestError, match=r"local://|idle_timeout"):
        connect(target)


def test_data_dir_expands_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = Settings.load(env={"DATACATALOG_DATA_DIR": "~/catalog"})
    assert settings.data_dir == tmp_path / "catalog"


def test_with_overrides(tmp_path: Path) -> None:
    settings = Settings.load(env={"DATACATALOG_DATA_DIR": str(tmp_path)})
    changed = settings.with_overrides(lock_timeout="3", secret=None)
    assert changed.lock_timeout == 3.0
    assert changed.data_dir == tmp_path
    assert settings.lock_timeout == 30.0
    with pytest.raises(InvalidRequestError):
        settings.with_overrides(max_body_bytes=0)


# -- the secret ---------------------------------------------------------------------------


def test_configured_secret_is_used(tmp_path: Path) -> None:
    settings = Settings.load(
        env={"DATACATALOG_DATA_DIR": str(tmp_path), "DATACATALOG_SECRET": "configured-secret-1"}
    )
    assert settings.resolve_secret() == "configured-secret-1"
    assert not (tmp_path / "secret").exists()


def test_secret_generated_once_with_mode_0600(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    settings = Settings.load(env={"DATACATALOG_DATA_DIR": str(data_dir)})
    first = settings.resolve_secret()
    path = data_dir / "secret"
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32
    assert path.read_text(encoding="utf-8").strip() == first
    again = Settings.load(env={"DATACATALOG_DATA_DIR": str(data_dir)}).resolve_secret()
    assert again == first


def test_secret_mode_ignores_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        Settings.load(env={"DATACATALOG_DATA_DIR": str(tmp_path)}).resolve_secret()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600


def test_existing_secret_file_is_reused(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("kept-from-before-0123456789\n", encoding="utf-8")
    settings = Settings.load(env={"DATACATALOG_DATA_DIR": str(tmp_path)})
    assert settings.resolve_secret() == "kept-from-before-0123456789"


def test_empty_secret_file_refused(tmp_path: Path) -> None:
    (tmp_path / "secret").write_text("\n", encoding="utf-8")
    settings = Settings.load(env={"DATACATALOG_DATA_DIR": str(tmp_path)})
    with pytest.raises(InvalidRequestError, match="is empty"):
        settings.resolve_secret()


def test_a_secret_file_is_never_seen_half_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process resolving the secret while this one creates it reads a whole one."""
    path = tmp_path / "secret"
    seen: list[str] = []
    real_open = os.open

    def open_and_race(name: str | os.PathLike[str], flags: int, *args: int) -> int:
        fd = real_open(name, flags, *args)
        if not seen and os.path.dirname(os.fspath(name)) == str(tmp_path):
            seen.append("racing")  # once: the racing process runs in the middle of this one
            seen.append(Settings.load(env={}, data_dir=tmp_path).resolve_secret())
        return fd

    monkeypatch.setattr(os, "open", open_and_race)
    mine = Settings.load(env={}, data_dir=tmp_path).resolve_secret()
    monkeypatch.undo()

    assert seen == ["racing", mine]
    assert path.read_text(encoding="utf-8") == mine
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret"]


def test_repr_hides_the_secret_and_the_database_password(tmp_path: Path) -> None:
    settings = Settings.load(
        env={},
        data_dir=tmp_path,
        secret="do-not-print-this-secret",
        mongodb_uri="mongodb://reader:hunter2@db.example.org/",
    )
    shown = repr(settings)
    assert "do-not-print-this-secret" not in shown and "hunter2" not in shown
    assert "secret='***'" in shown and "reader:***@db.example.org" in shown
    assert f"data_dir={tmp_path!r}" in shown


def test_with_overrides_refuses_unknown_fields(tmp_path: Path) -> None:
    settings = Settings.load(env={"DATACATALOG_DATA_DIR": str(tmp_path)})
    with pytest.raises(InvalidRequestError, match="unknown setting"):
        settings.with_overrides(colour="blue")
    assert settings.with_overrides(data_dir=tmp_path / "x").data_dir == tmp_path / "x"

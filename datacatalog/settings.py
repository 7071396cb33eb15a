"""Configuration: environment variables with the ``DATACATALOG_`` prefix.

=====================================  ===================================================
variable                               meaning (default)
=====================================  ===================================================
``DATACATALOG_CONFIG``                 optional YAML/JSON file with the keys below
                                       (lower case, without the prefix); variables win
``DATACATALOG_MONGODB_URI``            MongoDB URI; unset → the managed local server
``DATACATALOG_MONGODB_DATABASE``       database name (``catalog``)
``DATACATALOG_DATA_DIR``               local data dir (the platform's user data dir)
``DATACATALOG_SECRET``                 deployment secret for tokens; unset → generated
                                       once into ``<data dir>/secret`` (mode 0600)
``DATACATALOG_SERVICE_URL``            base URL of the webhook service
                                       (``http://127.0.0.1:8750``)
``DATACATALOG_STORAGE_SYSTEMS``        JSON object ``{"name": "fsspec URL"}``
``DATACATALOG_DEFAULT_STORAGE``        default storage system name (``local``: the
                                       ``archive`` folder under the data dir)
``DATACATALOG_ADMIN_TOKEN_LIFETIME``   admin token window in seconds (3600)
``DATACATALOG_MAX_BODY_BYTES``         largest HTTP request body (1048576)
``DATACATALOG_LOCK_TIMEOUT``           seconds to wait for the JSON catalog's lock (30)
``DATACATALOG_MONGODB_TIMEOUT``        seconds any one MongoDB call may wait for the server
                                       (10): finding it, connecting, each answer
``DATACATALOG_MONGODB_FAILOVER``       seconds a call that is safe to resend (a keyed
                                       event, a batch of file records) keeps trying while
                                       the database is unavailable, as during a replica
                                       set election (15; 0 sends it once)
``DATACATALOG_LOCAL_ENGINE``           zero-configuration engine: ``mongod`` (a managed
                                       server in ``<data dir>/mongo``) or ``json`` (the
                                       file ``<data dir>/catalog.json``) (``mongod``)
``DATACATALOG_LOCAL_IDLE_TIMEOUT``     seconds without clients before the managed server
                                       stops (900)
``DATACATALOG_MONGOD``                 the ``mongod`` binary to run (read by
                                       :mod:`datacatalog.local.binary`)
=====================================  ===================================================

Zero configuration works: the managed server's files and the archive both live under
the data dir.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import platformdirs

from datacatalog.errors import InvalidRequestError
from datacatalog.freeform import bounded_parse, parse_json
from datacatalog.storage import default_storage_url

PREFIX = "DATACATALOG_"
DEFAULT_SERVICE_URL = "http://127.0.0.1:8750"
DEFAULT_STORAGE = "local"
LOCAL_ENGINES = ("mongod", "json")
DEFAULT_IDLE_TIMEOUT = 900.0


@dataclass(frozen=True)
class Settings:
    """Resolved configuration. Build it with :meth:`Settings.load`."""

    data_dir: Path
    mongodb_uri: str | None = None
    mongodb_database: str = "catalog"
    secret: str | None = None
    service_url: str = DEFAULT_SERVICE_URL
    storage_systems: Mapping[str, str] = field(default_factory=dict)
    default_storage: str = DEFAULT_STORAGE
    admin_token_lifetime: int = 3600
    max_body_bytes: int = 1 << 20
    lock_timeout: float = 30.0
    mongodb_timeout: float = 10.0
    mongodb_failover: float = 15.0
    local_engine: str = "mongod"
    local_idle_timeout: float = DEFAULT_IDLE_TIMEOUT

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read settings from a config file, then environment variables, then ``overrides``.

        Args:
            env: The environment to read (``os.environ`` by default).
            **overrides: Field values that win over everything else (``None`` is ignored).
        """
        environ = os.environ if env is None else env
        values: dict[str, Any] = {}
        config_file = environ.get(PREFIX + "CONFIG")
        if config_file:
            values.update(_read_config_file(Path(config_file)))
        for name in _FIELDS:
            raw = environ.get(PREFIX + name.upper())
            if raw is not None and raw != "":
                values[name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = sorted(set(values) - set(_FIELDS))
        if unknown:
            raise InvalidRequestError(f"unknown setting(s): {', '.join(unknown)}")
        return cls(**_coerce(values))

    @property
    def archive_url(self) -> str:
        """The fsspec URL of the default local archive (``file://<data dir>/archive``)."""
        # Not Path.as_uri(): fsspec takes a file URL's path literally, so a percent-encoded
        # space ("Application%20Support") would name another directory.
        return default_storage_url(self.data_dir)

    def storage_map(self) -> dict[str, str]:
        """All storage systems, the local default included."""
        systems = {DEFAULT_STORAGE: self.archive_url}
        systems.update(self.storage_systems)
        return systems

    @property
    def embedded_path(self) -> Path:
        """Location of the JSON catalog's snapshot file."""
        return self.data_dir / "catalog.json"

    def store_target(self) -> str:
        """What :func:`datacatalog.store.connect` should connect to.

        The configured URI; else the managed local server of the data dir
        (``local://``), or the JSON file when ``local_engine`` is ``json``.
        """
        if self.mongodb_uri:
            return self.mongodb_uri
        if self.local_engine == "json":
            return "embedded://" + str(self.embedded_path.resolve())
        from datacatalog.store.local import local_uri

        return local_uri(self.data_dir.resolve(), self.local_idle_timeout)

    def resolve_secret(self) -> str:
        """The deployment secret; generated once into the data dir when none is configured."""
        if self.secret:
            return self.secret
        path = self.data_dir / "secret"
        if not path.exists():
            _create_secret_file(path)
        text = path.read_text(encoding="utf-8").strip()
        if not text:
            raise InvalidRequestError(f"the secret file {path} is empty")
        return text

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some fields changed (``None`` values are ignored)."""
        given = {k: v for k, v in changes.items() if v is not None}
        unknown = sorted(set(given) - set(_FIELDS))
        if unknown:
            raise InvalidRequestError(f"unknown setting(s): {', '.join(unknown)}")
        # The data dir is passed along: left out, it would fall back to the default.
        return replace(self, **_coerce({"data_dir": self.data_dir, **given}))

    def __repr__(self) -> str:
        # Settings end up in tracebacks and logs: never show the secret or a password.
        from datacatalog.store import redact_uri

        shown = {
            "secret": None if self.secret is None else "***",
            "mongodb_uri": None if self.mongodb_uri is None else redact_uri(self.mongodb_uri),
        }
        fields = ", ".join(f"{name}={shown.get(name, getattr(self, name))!r}" for name in _FIELDS)
        return f"Settings({fields})"


def _create_secret_file(path: Path) -> None:
    """Create ``path`` (mode 0600) holding a new secret, unless it exists already.

    The secret is written to a private temporary file and then hard-linked into place,
    which fails when ``path`` exists: racing processes all end up reading the first
    one, and none can ever read a file that is created but not yet written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    fd, temporary = tempfile.mkstemp(prefix=".secret.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secret)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process was first: everyone reads theirs
        except OSError:
            # A filesystem without hard links: claim the name itself (a reader racing
            # this write may then see an empty file, and is told so).
            with contextlib.suppress(FileExistsError):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(secret)
    finally:
        os.unlink(temporary)


_FIELDS = (
    "data_dir",
    "mongodb_uri",
    "mongodb_database",
    "secret",
    "service_url",
    "storage_systems",
    "default_storage",
    "admin_token_lifetime",
    "max_body_bytes",
    "lock_timeout",
    "mongodb_timeout",
    "mongodb_failover",
    "local_engine",
    "local_idle_timeout",
)


def default_data_dir() -> Path:
    """The platform's user data dir for datacatalog."""
    return Path(platformdirs.user_data_dir("datacatalog", appauthor=False))


def _read_config_file(path: Path) -> dict[str, Any]:
    # Imported here: most processes have no config file and never need a YAML parser.
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidRequestError(f"cannot read config file {path}: {exc}") from exc
    try:
        loaded = bounded_parse(lambda: yaml.safe_load(text), where=f"config file {path}")
    except yaml.YAMLError as exc:
        raise InvalidRequestError(f"config file {path} is not valid YAML/JSON: {exc}") from exc
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise InvalidRequestError(f"config file {path} must hold a mapping")
    return dict(loaded)


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    out["data_dir"] = Path(out.get("data_dir") or default_data_dir()).expanduser()
    for name, coerce in _COERCIONS.items():
        if name in out:
            out[name] = coerce(name, out[name])
    return out


def _local_engine(name: str, value: Any) -> str:
    engine = str(value).strip().lower()
    if engine not in LOCAL_ENGINES:
        raise InvalidRequestError(
            f"setting {name} must be one of {', '.join(LOCAL_ENGINES)}, not {value!r}"
        )
    return engine


def _storage_systems(name: str, value: Any) -> dict[str, str]:
    systems = value
    if isinstance(systems, str):
        try:
            systems = parse_json(systems, where=name)
        except InvalidRequestError as exc:
            raise InvalidRequestError(
                f"{name} must be a JSON object of name → URL: {exc}"
            ) from None
    if not isinstance(systems, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in systems.items()
    ):
        raise InvalidRequestError(f"{name} must map names to fsspec URL strings")
    return dict(systems)


def _not_negative(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidRequestError(f"setting {name} must be a number, not {value!r}") from None
    if not number >= 0 or number == float("inf"):
        raise InvalidRequestError(f"setting {name} must be >= 0 seconds, not {value!r}")
    return number


def _positive(name: str, value: Any, kind: type[int] | type[float]) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise InvalidRequestError(f"setting {name} must be a number, not {value!r}") from None
    if number <= 0:
        raise InvalidRequestError(f"setting {name} must be positive, not {value!r}")
    return number


_COERCIONS: dict[str, Callable[[str, Any], Any]] = {
    "admin_token_lifetime": partial(_positive, kind=int),
    "max_body_bytes": partial(_positive, kind=int),
    "lock_timeout": partial(_positive, kind=float),
    "mongodb_timeout": partial(_positive, kind=float),
    "local_idle_timeout": partial(_positive, kind=float),
    "mongodb_failover": _not_negative,  # 0: resend nothing
    "local_engine": _local_engine,
    "storage_systems": _storage_systems,
    "service_url": lambda _name, value: str(value).rstrip("/"),
}
"""How each setting read as text (or given) becomes its value, checked; in this order."""

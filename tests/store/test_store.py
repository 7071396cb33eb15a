"""Tests for datacatalog.store: the Store on every engine, connect() and its registry."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import mongomock_ng
import pymongo
import pymongo.collection
import pymongo.monitoring
import pytest
from mongomock_ng.collection import Collection as MemoryCollection

from datacatalog.errors import (
    ConflictError,
    DataCatalogError,
    InvalidRequestError,
    UnavailableError,
)
from datacatalog.identifiers import typed_uuid
from datacatalog.store import COLLECTIONS, Store, Upsert, connect, redact_uri, schemes
from datacatalog.store.core import INDEXES

UTC = timezone.utc


def ref(key: str, /, **extra: Any) -> dict[str, Any]:
    """A valid ``reference`` document (its schema allows extra fields)."""
    return {"uuid": typed_uuid(key, "reference"), "uri": f"s3://bucket/{key}", **extra}


def assert_stored_dates(value: Any) -> None:
    """Every datetime in ``value`` is timezone-aware UTC at millisecond precision."""
    if isinstance(value, datetime):
        assert value.tzinfo is not None
        assert value.utcoffset() == timedelta(0)
        assert value.microsecond % 1000 == 0
    elif isinstance(value, dict):
        for item in value.values():
            assert_stored_dates(item)
    elif isinstance(value, list):
        for item in value:
            assert_stored_dates(item)


# -- reads and writes -----------------------------------------------------------------------


def test_insert_and_get(store: Store) -> None:
    inserted = store.insert("reference", ref("genome", name="hg38"))
    assert "_id" not in inserted
    fetched = store.get("reference", {"uuid": inserted["uuid"]})
    assert fetched == inserted
    assert fetched is not None and "_id" not in fetched
    props = fetched["_properties"]
    assert props["revision"] == 0
    assert props["created_date"] == props["modified_date"]
    assert abs(datetime.now(UTC) - props["created_date"]) < timedelta(minutes=5)
    assert_stored_dates(fetched)
    assert store.get("reference", {"uuid": typed_uuid("absent", "reference")}) is None


def test_insert_does_not_change_its_argument(store: Store) -> None:
    document = ref("a")
    store.insert("reference", document)
    assert set(document) == {"uuid", "uri"}


def test_dates_round_trip_at_millisecond_precision(store: Store) -> None:
    exact = datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC)
    other_zone = datetime(2024, 5, 6, 9, 8, 9, 456000, tzinfo=timezone(timedelta(hours=2)))
    fine = datetime(2024, 5, 6, 7, 8, 9, 999999, tzinfo=UTC)
    naive = datetime(2024, 5, 6, 7, 8, 9, 5000)
    inserted = store.insert(
        "reference",
        ref("dated", when=exact, zoned=other_zone, fine=fine, naive=naive, nested={"l": [exact]}),
    )
    fetched = store.get("reference", {"uuid": inserted["uuid"]})
    assert fetched == inserted
    assert fetched is not None
    assert fetched["when"] == exact
    assert fetched["zoned"] == other_zone
    assert fetched["fine"] == datetime(2024, 5, 6, 7, 8, 9, 999000, tzinfo=UTC)
    assert fetched["naive"] == naive.replace(tzinfo=UTC)
    assert fetched["nested"] == {"l": [exact]}
    assert_stored_dates(fetched)
    assert_stored_dates(inserted)
    [found] = store.find("reference", {"when": exact})
    assert found == fetched


def test_find_sort_skip_limit_projection(store: Store) -> None:
    for i in range(5):
        store.insert("reference", ref(f"r{i}", rank=i, group="odd" if i % 2 else "even"))
    ranks = [d["rank"] for d in store.find("reference", {}, sort=[("rank", -1)])]
    assert ranks == [4, 3, 2, 1, 0]
    page = store.find("reference", {}, sort=[("rank", 1)], skip=1, limit=2)
    assert [d["rank"] for d in page] == [1, 2]
    odd = store.find("reference", {"group": "odd"}, projection={"rank": 1})
    assert sorted(d["rank"] for d in odd) == [1, 3]
    assert all(set(d) == {"rank"} for d in odd)
    assert store.find("reference", {"group": "none"}) == []


def test_count(store: Store) -> None:
    assert store.count("reference", {}) == 0
    for i in range(3):
        store.insert("reference", ref(f"c{i}", n=i))
    assert store.count("reference", {}) == 3
    assert store.count("reference", {"n": {"$gte": 1}}) == 2


def test_aggregate(store: Store) -> None:
    for i in range(4):
        store.insert("reference", ref(f"g{i}", group="a" if i < 3 else "b"))
    groups = store.aggregate(
        "reference",
        [{"$group": {"_id": "$group", "n": {"$sum": 1}}}, {"$sort": {"n": -1}}],
    )
    assert [g["n"] for g in groups] == [3, 1]
    assert all("_id" not in g for g in groups)


def test_update_stamps_properties_and_bumps_revision(store: Store) -> None:
    inserted = store.insert("reference", ref("u", name="before"))
    created = inserted["_properties"]["created_date"]
    time.sleep(0.005)
    after = store.update("reference", {"uuid": inserted["uuid"]}, {"$set": {"name": "after"}})
    assert after is not None
    assert "_id" not in after
    assert after["name"] == "after"
    assert after["_properties"]["revision"] == 1
    assert after["_properties"]["created_date"] == created
    assert after["_properties"]["modified_date"] > created
    assert_stored_dates(after)
    again = store.update("reference", {"uuid": inserted["uuid"]}, {"$set": {"name": "x"}})
    assert again is not None and again["_properties"]["revision"] == 2
    assert store.get("reference", {"uuid": inserted["uuid"]}) == again


def test_update_without_match_returns_none(store: Store) -> None:
    missing = {"uuid": typed_uuid("nobody", "reference")}
    assert store.update("reference", missing, {"$set": {"name": "x"}}) is None
    assert store.count("reference", {}) == 0


def test_update_upsert_creates_with_properties(store: Store) -> None:
    uuid = typed_uuid("upserted", "reference")
    created = store.update(
        "reference",
        {"uuid": uuid},
        {"$set": {"uri": "s3://x"}, "$setOnInsert": {"uuid": uuid}},
        upsert=True,
    )
    assert created is not None
    assert created["uuid"] == uuid
    assert isinstance(created["_properties"]["revision"], int)
    assert created["_properties"]["created_date"] == created["_properties"]["modified_date"]
    assert_stored_dates(created)


def test_upsert_without_set_on_insert_is_complete(store: Store) -> None:
    uuid = typed_uuid("bare-upsert", "reference")
    created = store.update("reference", {"uuid": uuid}, {"$set": {"uri": "s3://x"}}, upsert=True)
    assert created is not None
    props = created["_properties"]
    assert set(props) == {"created_date", "modified_date", "revision"}
    assert props["created_date"] == props["modified_date"]
    later = store.update("reference", {"uuid": uuid}, {"$set": {"uri": "s3://y"}}, upsert=True)
    assert later is not None
    assert later["_properties"]["created_date"] == props["created_date"]
    assert later["_properties"]["revision"] == props["revision"] + 1


def test_update_projection(store: Store) -> None:
    inserted = store.insert("reference", ref("p", big=list(range(10))))
    after = store.update(
        "reference", {"uuid": inserted["uuid"]}, {"$set": {"name": "n"}}, projection={"big": 0}
    )
    assert after is not None
    assert "big" not in after
    assert after["name"] == "n"


def test_update_push(store: Store) -> None:
    inserted = store.insert("reference", ref("linked", child_of=[]))
    parent = typed_uuid("s1", "sample")
    after = store.update("reference", {"uuid": inserted["uuid"]}, {"$push": {"child_of": parent}})
    assert after is not None and after["child_of"] == [parent]


def test_update_many(store: Store) -> None:
    for i in range(4):
        store.insert("reference", ref(f"m{i}", group="a" if i < 3 else "b"))
    changed = store.update_many("reference", {"group": "a"}, {"$set": {"flag": True}})
    assert changed == 3
    flagged = store.find("reference", {"flag": True})
    assert len(flagged) == 3
    assert all(d["_properties"]["revision"] == 1 for d in flagged)
    [other] = store.find("reference", {"group": "b"})
    assert other["_properties"]["revision"] == 0


def test_bulk_upsert(store: Store) -> None:
    ops = [
        Upsert(
            {"uuid": typed_uuid(f"b{i}", "reference")},
            {
                "$set": {"uri": f"s3://b/{i}", "n": i},
                "$setOnInsert": {"uuid": typed_uuid(f"b{i}", "reference")},
            },
        )
        for i in range(5)
    ]
    first = store.bulk_upsert("reference", ops, batch_size=2)
    assert (first.upserted, first.matched, first.batches) == (5, 0, 3)
    docs = store.find("reference", {}, sort=[("n", 1)])
    assert [d["n"] for d in docs] == [0, 1, 2, 3, 4]
    for doc in docs:
        assert doc["_properties"]["created_date"] == doc["_properties"]["modified_date"]
        assert_stored_dates(doc)
    second = store.bulk_upsert("reference", ops, batch_size=10)
    assert (second.upserted, second.matched, second.batches) == (0, 5, 1)
    assert store.count("reference", {}) == 5
    again = store.find("reference", {}, sort=[("n", 1)])
    for before, after in zip(docs, again, strict=True):
        assert after["_properties"]["revision"] == before["_properties"]["revision"] + 1
        assert after["_properties"]["created_date"] == before["_properties"]["created_date"]
    assert store.bulk_upsert("reference", []).batches == 0


def test_delete_many(store: Store) -> None:
    for i in range(3):
        store.insert("reference", ref(f"d{i}", keep=i == 0))
    assert store.delete_many("reference", {"keep": False}) == 2
    assert store.count("reference", {}) == 1
    with pytest.raises(InvalidRequestError, match="refusing to delete every reference"):
        store.delete_many("reference", {})
    assert store.count("reference", {}) == 1


def test_every_kind_has_a_collection(store: Store) -> None:
    for kind in COLLECTIONS:
        assert store.count(kind, {}) == 0


def test_unknown_kind(store: Store) -> None:
    with pytest.raises(InvalidRequestError, match="unknown document kind 'widget'") as info:
        store.get("widget", {})
    assert "pipeline" in str(info.value)


# -- unique keys ----------------------------------------------------------------------------


def test_duplicate_uuid_is_a_conflict(store: Store) -> None:
    store.insert("reference", ref("dup", name="first"))
    with pytest.raises(ConflictError) as info:
        store.insert("reference", ref("dup", name="second"))
    assert info.value.details["key"] == ["uuid"]
    assert typed_uuid("dup", "reference") in str(info.value)
    [only] = store.find("reference", {})
    assert only["name"] == "first"


def test_other_unique_key_is_a_conflict(store: Store) -> None:
    store.insert("experiment", {"uuid": typed_uuid("e1", "experiment"), "experiment_id": "e1"})
    clash = {"uuid": typed_uuid("e1-again", "experiment"), "experiment_id": "e1"}
    with pytest.raises(ConflictError) as info:
        store.insert("experiment", clash)
    assert info.value.details["key"] == ["experiment_id"]
    with pytest.raises(ConflictError):
        store.insert_if_absent("experiment", clash)
    assert store.count("experiment", {}) == 1


def test_bulk_upsert_conflict(store: Store, engine: str) -> None:
    store.insert("experiment", {"uuid": typed_uuid("e1", "experiment"), "experiment_id": "e1"})
    clash, fine = typed_uuid("e1-twin", "experiment"), typed_uuid("e2", "experiment")
    ops = [
        Upsert({"uuid": clash}, {"$set": {"experiment_id": "e1"}, "$setOnInsert": {"uuid": clash}}),
        Upsert({"uuid": fine}, {"$set": {"experiment_id": "e2"}, "$setOnInsert": {"uuid": fine}}),
    ]
    with pytest.raises(ConflictError) as info:
        store.bulk_upsert("experiment", ops)
    assert info.value.details["failed"] == 1
    if engine == "mongod":  # the in-memory engine reports no key pattern for bulk writes
        assert info.value.details["key"] == ["experiment_id"]
        assert "experiment_id" in str(info.value)
    # Unordered, as on a server: the write that did not collide was applied.
    assert store.get("experiment", {"uuid": fine}) is not None
    assert store.get("experiment", {"uuid": clash}) is None


def test_insert_if_absent_twice(store: Store) -> None:
    first, created = store.insert_if_absent("reference", ref("once", name="original"))
    assert created is True
    assert "_id" not in first
    second, created_again = store.insert_if_absent("reference", ref("once", name="changed"))
    assert created_again is False
    assert second == first
    assert second["name"] == "original"
    assert store.count("reference", {}) == 1
    assert store.get("reference", {"uuid": first["uuid"]}) == first


def test_insert_if_absent_racing_threads(store: Store) -> None:
    outcomes: list[bool] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(6)

    def claim(n: int) -> None:
        try:
            barrier.wait()
            _, created = store.insert_if_absent("reference", ref("raced", by=n))
            outcomes.append(created)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(outcomes) == [False] * 5 + [True]
    assert store.count("reference", {}) == 1


# -- validation: every write, nothing written when invalid ----------------------------------


def test_invalid_insert_names_kind_and_field(store: Store) -> None:
    with pytest.raises(InvalidRequestError) as info:
        store.insert("reference", {"uuid": typed_uuid("x", "reference"), "uri": 5})
    assert "reference document is invalid at uri" in str(info.value)
    assert info.value.details["kind"] == "reference"
    assert info.value.details["path"] == "uri"
    assert store.count("reference", {}) == 0


def test_invalid_nested_field_path(store: Store) -> None:
    bad = ref("x", child_of=[typed_uuid("s", "sample"), "not-a-uuid"])
    with pytest.raises(InvalidRequestError, match="reference document is invalid at child_of/1"):
        store.insert("reference", bad)
    assert store.count("reference", {}) == 0


def test_missing_required_field(store: Store) -> None:
    with pytest.raises(InvalidRequestError, match=r"reference document is invalid.*'uri'"):
        store.insert("reference", {"uuid": typed_uuid("x", "reference")})
    assert store.count("reference", {}) == 0


def test_wrong_kind_uuid_refused(store: Store) -> None:
    with pytest.raises(InvalidRequestError, match="reference document is invalid at uuid"):
        store.insert("reference", {"uuid": typed_uuid("x", "sample"), "uri": "s3://x"})
    assert store.count("reference", {}) == 0


def test_insert_many_leaves_existing_documents_and_names_them(store: Store) -> None:
    kept = store.insert("reference", ref("taken", name="original"))
    taken = store.insert_many(
        "reference",
        [ref("new-1"), ref("taken", name="changed"), ref("new-2"), ref("new-1", name="twin")],
    )
    assert taken == [1, 3]  # the existing document, and the batch's own repeat
    assert store.count("reference", {}) == 3
    assert store.get("reference", {"uuid": kept["uuid"]}) == kept
    assert store.insert_many("reference", []) == []


def test_invalid_insert_many_writes_nothing(store: Store) -> None:
    with pytest.raises(InvalidRequestError, match="pipeline document is invalid"):
        store.insert_many(
            "pipeline",
            [
                {"uuid": typed_uuid("q", "pipeline"), "id": "q", "components": [{"a": 1}]},
                {"uuid": typed_uuid("p", "pipeline"), "id": "p"},
            ],
        )
    assert store.count("pipeline", {}) == 0


def test_invalid_insert_if_absent_writes_nothing(store: Store) -> None:
    with pytest.raises(InvalidRequestError, match="pipeline document is invalid"):
        store.insert_if_absent("pipeline", {"uuid": typed_uuid("p", "pipeline"), "id": "p"})
    assert store.count("pipeline", {}) == 0


def test_invalid_update_changes_nothing(store: Store) -> None:
    inserted = store.insert("reference", ref("v"))
    query = {"uuid": inserted["uuid"]}
    with pytest.raises(InvalidRequestError) as info:
        store.update("reference", query, {"$set": {"uri": 7}})
    assert "reference document is invalid at uri" in str(info.value)
    with pytest.raises(InvalidRequestError, match="at child_of/-"):
        store.update("reference", query, {"$push": {"child_of": "nope"}})
    with pytest.raises(InvalidRequestError, match="pipeline document is invalid at bogus"):
        store.update("pipeline", {"uuid": typed_uuid("p", "pipeline")}, {"$set": {"bogus": 1}})
    with pytest.raises(InvalidRequestError, match="at _properties/revision"):
        store.update("reference", query, {"$set": {"_properties.revision": -1}})
    with pytest.raises(InvalidRequestError, match="at uri"):
        store.update_many("reference", query, {"$set": {"uri": None}})
    assert store.get("reference", query) == inserted


def test_unsupported_update_operator(store: Store) -> None:
    inserted = store.insert("reference", ref("o"))
    with pytest.raises(InvalidRequestError, match=r"unsupported update operator\(s\): \$rename"):
        store.update("reference", {"uuid": inserted["uuid"]}, {"$rename": {"uri": "url"}})
    assert store.get("reference", {"uuid": inserted["uuid"]}) == inserted


def test_invalid_bulk_upsert_writes_nothing(store: Store) -> None:
    ops = [
        Upsert({"uuid": typed_uuid("ok", "reference")}, {"$set": {"uri": "s3://ok"}}),
        Upsert({"uuid": typed_uuid("bad", "reference")}, {"$set": {"uri": ["not", "a", "uri"]}}),
    ]
    with pytest.raises(InvalidRequestError, match="at uri"):
        store.bulk_upsert("reference", ops)
    assert store.count("reference", {}) == 0


# -- connect --------------------------------------------------------------------------------


def test_schemes() -> None:
    assert schemes() == ["mongodb", "mongodb+srv", "mongomock", "embedded", "local"]


def test_connect_memory() -> None:
    default = connect("mongomock://")
    named = connect("mongomock://mydb")
    overridden = connect("mongomock://mydb", database="other")
    assert default.database_name == "catalog"
    assert named.database_name == "mydb"
    assert overridden.database_name == "other"
    default.insert("reference", ref("only-here"))
    assert connect("mongomock://").count("reference", {}) == 0  # fresh every time
    assert "mongomock://" in repr(default)


def test_connect_settings_dict_with_uri() -> None:
    store = connect({"uri": "mongomock://", "database": "fromsettings"})
    assert store.database_name == "fromsettings"
    assert connect({"uri": "mongomock://", "database": "x"}, database="y").database_name == "y"


def test_connect_settings_dict_needs_uri_or_host() -> None:
    with pytest.raises(InvalidRequestError, match="either 'uri' or 'host'"):
        connect({"database": "x"})


def test_connect_memory_database_object() -> None:
    database = mongomock_ng.MongoClient(tz_aware=True)["handmade"]
    store = connect(database)
    assert store.database_name == "handmade"
    store.insert("reference", ref("via-db"))
    assert database["references"].count_documents({}) == 1
    assert connect(store) is store


def test_connect_settings_dict_with_host_and_port(mongo_uri: str, database_name: str) -> None:
    parts = urlsplit(mongo_uri)
    store = connect({"host": parts.hostname, "port": parts.port, "database": database_name})
    try:
        assert store.database_name == database_name
        store.insert("reference", ref("hostport"))
        assert store.count("reference", {}) == 1
        again = connect(mongo_uri, database=database_name)
        assert again.count("reference", {}) == 1
    finally:
        store.drop_database()


def test_connect_pymongo_database(mongo_uri: str, database_name: str) -> None:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(mongo_uri)
    try:
        store = connect(client[database_name])
        assert store.database_name == database_name
        inserted = store.insert("reference", ref("pymongo"))
        # The client was not made timezone-aware; the store still returns aware UTC dates.
        fetched = store.get("reference", {"uuid": inserted["uuid"]})
        assert fetched == inserted
        assert_stored_dates(fetched)
        store.drop_database()
    finally:
        client.close()


class _Commands(pymongo.monitoring.CommandListener):
    """Names of the commands a client sends."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: pymongo.monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: pymongo.monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: pymongo.monitoring.CommandFailedEvent) -> None:
        pass


def test_insert_if_absent_is_one_insert_and_a_read_only_when_the_document_exists(
    mongo_uri: str, database_name: str
) -> None:
    commands = _Commands()
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
        mongo_uri, event_listeners=[commands]
    )
    try:
        store = connect(client[database_name])
        store.count("reference", {})  # creates the indexes
        commands.names.clear()
        first, created = store.insert_if_absent("reference", ref("once"))
        again, created_again = store.insert_if_absent("reference", ref("once", name="other"))
        assert (created, created_again, again) == (True, False, first)
        assert store.get("reference", {"uuid": first["uuid"]}) == first
        # New: one insert. Existing: the insert is refused, one read attaches. Then get().
        assert commands.names == ["insert", "insert", "find", "find"]
        store.drop_database()
    finally:
        client.close()


@pytest.mark.parametrize("target", ["postgres://db/x", "EMBEDDEDX://x", "file:///tmp/x"])
def test_unknown_scheme_lists_valid_ones(target: str) -> None:
    with pytest.raises(InvalidRequestError, match="unknown URI scheme") as info:
        connect(target)
    for scheme in ("mongodb", "mongodb+srv", "mongomock", "embedded", "local"):
        assert scheme in str(info.value)


@pytest.mark.parametrize("target", ["just-a-name", "", 42])
def test_not_a_uri(target: Any) -> None:
    with pytest.raises(InvalidRequestError, match="expected a URI with one of the schemes"):
        connect(target)


@pytest.mark.parametrize(
    "uri",
    [
        "mongodb://host:notaport",
        "mongodb://host:99999",
        "mongodb://",
        "mongodb://user:secretpw@host:notaport",
        "mongodb://user:secretpw@host/?authMechanism=BOGUS",
    ],
)
def test_malformed_uri(uri: str) -> None:
    with pytest.raises(InvalidRequestError, match="malformed MongoDB URI") as info:
        connect(uri, timeout_ms=300)
    assert "secretpw" not in str(info.value)
    assert "secretpw" not in repr(info.value.to_dict())


def test_unreachable_server_is_unavailable_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(UnavailableError) as info:
        connect("mongodb://user:secretpw@127.0.0.1:1/?", timeout_ms=300)
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"took {elapsed:.1f} s with a 0.3 s timeout"
    message = str(info.value)
    assert "***" in message
    assert "secretpw" not in message
    assert "secretpw" not in repr(info.value.to_dict())
    assert "0.3 s" in message


def test_unreachable_server_from_settings_hides_password() -> None:
    settings = {
        "host": "127.0.0.1",
        "port": 1,
        "username": "user",
        "password": "p@ss:word",
        "database": "x",
    }
    with pytest.raises(UnavailableError) as info:
        connect(settings, timeout_ms=300)
    assert "***" in str(info.value)
    assert "p@ss" not in str(info.value) and "p%40ss" not in str(info.value)


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("mongodb://u:pw@h:1/db?x=1", "mongodb://u:***@h:1/db?x=1"),
        ("mongodb://u@h/", "mongodb://u@h/"),
        ("mongodb://u:p@w@h/", "mongodb://u:***@h/"),
        ("mongodb+srv://u:pw@cluster.example.org", "mongodb+srv://u:***@cluster.example.org"),
        ("mongodb://h:1/", "mongodb://h:1/"),
        ("not a uri", "not a uri"),
    ],
)
def test_redact_uri(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown


# -- indexes --------------------------------------------------------------------------------


@pytest.fixture
def create_index_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Count indexes asked for per collection name (through ``create_indexes``), on both engines."""
    calls: Counter[str] = Counter()
    for cls in (pymongo.collection.Collection, MemoryCollection):
        original = cls.create_indexes

        def counting(
            self: Any, indexes: Any, *args: Any, _original: Any = original, **kwargs: Any
        ) -> Any:
            calls[self.name] += len(indexes)
            return _original(self, indexes, *args, **kwargs)

        monkeypatch.setattr(cls, "create_indexes", counting)
    yield calls


@pytest.fixture
def two_stores(
    engine: str, database_name: str, request: pytest.FixtureRequest
) -> Iterator[tuple[Store, Store]]:
    """Two Store objects on one database, as two components of one process open it."""
    if engine == "memory":
        database = mongomock_ng.MongoClient(tz_aware=True)[database_name]
        yield connect(database), connect(database)
        return
    uri = request.getfixturevalue("mongo_uri")
    first = connect(uri, database=database_name)
    try:
        yield first, connect(uri, database=database_name)
    finally:
        first.drop_database()


def test_indexes_created_once_per_collection(
    two_stores: tuple[Store, Store], create_index_calls: Counter[str]
) -> None:
    first, second = two_stores
    per_reference = 1 + len(INDEXES["reference"])
    per_sample = 1 + len(INDEXES["sample"])
    first.insert("reference", ref("i1"))
    assert create_index_calls["references"] == per_reference
    first.get("reference", {})
    first.insert("reference", ref("i2"))
    first.count("sample", {})
    assert create_index_calls["references"] == per_reference
    assert create_index_calls["samples"] == per_sample
    second.insert("reference", ref("i3"))
    second.count("sample", {})
    assert create_index_calls["references"] == per_reference
    assert create_index_calls["samples"] == per_sample
    with pytest.raises(ConflictError):
        second.insert("reference", ref("i1"))


def test_indexes_exist_on_the_server(mongo_uri: str, database_name: str) -> None:
    store = connect(mongo_uri, database=database_name)
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(mongo_uri)
    try:
        store.insert("reference", ref("ix"))
        store.count("job", {})
        db = client[database_name]
        refs = db["references"].index_information()
        assert refs["uuid_unique"]["unique"] is True
        assert refs["uuid_unique"]["key"] == [("uuid", 1)]
        jobs = db["jobs"].index_information()
        by_key = {tuple(i["key"]): i for i in jobs.values()}
        assert by_key[(("archive_system", 1), ("archive_path", 1))]["unique"] is True
        assert (("state", 1),) in by_key
    finally:
        store.drop_database()
        client.close()


def test_indexes_recreated_after_drop(store: Store, create_index_calls: Counter[str]) -> None:
    store.insert("reference", ref("before-drop"))
    store.drop_database()
    store.insert("reference", ref("after-drop"))
    with pytest.raises(ConflictError):
        store.insert("reference", ref("after-drop"))
    assert create_index_calls["references"] == 2 * (1 + len(INDEXES["reference"]))


def test_separate_memory_stores_each_get_their_indexes() -> None:
    # In-memory clients all compare equal; each still holds its own indexes.
    first = connect("mongomock://", database="same-name")
    second = connect("mongomock://", database="same-name")
    for store in (first, second):
        store.insert("reference", ref("shared-uuid"))
        with pytest.raises(ConflictError):
            store.insert("reference", ref("shared-uuid"))
        assert store.count("reference", {}) == 1


def test_store_raises_only_catalog_errors(store: Store) -> None:
    with pytest.raises(DataCatalogError):
        store.find("reference", {"$bogus": 1})


# -- sequences -------------------------------------------------------------------------------


def test_a_sequence_counts_from_one_and_each_name_counts_alone(store: Store) -> None:
    assert [store.next_sequence("audit") for _ in range(3)] == [1, 2, 3]
    assert store.next_sequence("other") == 1
    assert store.next_sequence("audit") == 4


def test_a_sequence_needs_a_name(store: Store) -> None:
    with pytest.raises(InvalidRequestError, match="name"):
        store.next_sequence("")


def test_a_sequence_taken_by_racing_threads_never_repeats(store: Store) -> None:
    taken: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def take() -> None:
        start.wait()
        for _ in range(25):
            value = store.next_sequence("race")
            with lock:
                taken.append(value)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(taken) == list(range(1, 201))


_EXIT_SCRIPT = """
import sys, threading
import pymongo
from datacatalog.store import close_clients, connect

store = connect(sys.argv[1], database=sys.argv[2])
store.count("reference", {})
other = pymongo.MongoClient(sys.argv[1]) if sys.argv[3] == "open" else None
if other is not None:
    other.admin.command("ping")
release = threading.Event()
worker = threading.Thread(target=release.wait)
if sys.argv[3] == "thread":
    worker.start()
dropped = close_clients()
try:
    usable = store.count("reference", {}) == 0
except Exception:
    usable = False
print(dropped, usable)
release.set()
if other is not None:
    other.close()
"""


@pytest.mark.parametrize(
    ("other", "dropped", "usable"),
    [("none", True, False), ("open", False, False), ("thread", False, True)],
)
def test_close_clients_drops_pymongos_exit_wait_only_when_every_client_is_closed(
    mongo_uri: str, database_name: str, other: str, dropped: bool, usable: bool
) -> None:
    # pymongo's exit hook joins its monitor threads (up to half a second); a command that
    # closed every client skips it, while an open client keeps it. While another thread
    # of the process runs, nothing is closed (it may be using the client).
    done = subprocess.run(
        [sys.executable, "-c", _EXIT_SCRIPT, mongo_uri, database_name, other],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(dropped), str(usable)]
    assert "Traceback" not in done.stderr


def test_an_ordered_bulk_update_reports_the_update_refused_and_what_was_applied(
    store: Store,
) -> None:
    docs = [store.insert("reference", ref(f"bulk-{n}", name=f"bulk-{n}")) for n in range(3)]
    updates = [
        ({"uuid": d["uuid"]}, {"$set": {"name": f"renamed-{n}"}}) for n, d in enumerate(docs)
    ]
    # The server refuses to give a document another one's unique key: the update before it
    # is applied, the one after it is not sent.
    updates[1] = ({"uuid": docs[1]["uuid"]}, {"$set": {"uuid": docs[0]["uuid"]}})
    result = store.bulk_update("reference", updates)
    assert (result.refused, result.applied) == (1, 1)
    assert result.error is not None and "refused update 1" in str(result.error)
    names = [store.get("reference", {"uuid": d["uuid"]})["name"] for d in docs]  # type: ignore[index]
    assert names == ["renamed-0", "bulk-1", "bulk-2"]
    # An update that does not pass validation is refused before anything is sent.
    invalid = store.bulk_update(
        "reference", [updates[0], ({"uuid": docs[2]["uuid"]}, {"$set": {"name": 7}})]
    )
    assert (invalid.refused, invalid.applied) == (1, 0)
    assert isinstance(invalid.error, InvalidRequestError)

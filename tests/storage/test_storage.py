"""Tests for datacatalog.storage on a local directory and on fsspec's memory filesystem."""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from hypothesis import given
from hypothesis import strategies as st

from datacatalog.errors import InvalidRequestError, NotFoundError, StorageFailureError
from datacatalog.storage import (
    DEFAULT_SYSTEM_NAME,
    SKIP_BROKEN_SYMLINK,
    SKIP_NOT_REGULAR,
    SKIP_SYMLINK_LOOP,
    SKIP_SYMLINK_OUTSIDE_ROOT,
    SKIP_UNREADABLE,
    StorageRegistry,
    StorageSystem,
    default_storage_url,
    open_system,
    validate_path,
)

JOB = "/products/v2/AAA/BBB/CCC"


@pytest.fixture
def local_system(tmp_path: Path) -> StorageSystem:
    root = tmp_path / "archive"
    root.mkdir()
    return open_system("local", f"file://{root}")


@pytest.fixture
def memory_system() -> Iterator[StorageSystem]:
    system = open_system("scratch", f"memory://datacatalog-test-{uuid.uuid4().hex}")
    yield system
    if system.fs.exists(system.root):
        system.fs.rm(system.root, recursive=True)


@pytest.fixture(params=["local", "memory"])
def system(request: pytest.FixtureRequest) -> StorageSystem:
    fixture: StorageSystem = request.getfixturevalue(f"{request.param}_system")
    return fixture


def write(system: StorageSystem, path: str, data: bytes) -> None:
    """Store ``data`` at the catalog path ``path``, creating parents."""
    system.makedirs(posixpath.dirname(path))
    with system.fs.open(system.resolve(path), "wb") as stream:
        stream.write(data)


def local_root(system: StorageSystem) -> Path:
    return Path(system.root)


# -- paths ---------------------------------------------------------------------------


BAD_PATHS = [
    "",
    "products/v2",
    "./products",
    "/products/../etc",
    "/..",
    "/products/./v2",
    "/products//v2",
    "/products/",
    "//products",
    "/products/\x00v2",
]


@pytest.mark.parametrize("bad", BAD_PATHS)
def test_invalid_paths_are_refused_by_every_operation(system: StorageSystem, bad: str) -> None:
    operations = [
        system.resolve,
        system.exists,
        system.makedirs,
        system.list_files,
        system.open,
        system.sha256,
        system.remove_tree,
        system.remove_tree_contents,
    ]
    for operation in operations:
        with pytest.raises(InvalidRequestError) as caught:
            operation(bad)
        assert repr(bad) in str(caught.value)


def test_non_string_path_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="must be a string, not int"):
        validate_path(5)


def test_dotdot_message_names_the_problem() -> None:
    with pytest.raises(InvalidRequestError, match=r"'\.\.'"):
        validate_path("/a/../b")
    with pytest.raises(InvalidRequestError, match="absolute"):
        validate_path("a/b")
    with pytest.raises(InvalidRequestError, match="did you mean '/a/b'"):
        validate_path("/a//b/")


@given(st.text(alphabet="ab./\x00", max_size=12))
def test_validated_paths_are_absolute_and_normalized(text: str) -> None:
    try:
        path = validate_path(text)
    except InvalidRequestError:
        return
    assert path.startswith("/")
    assert ".." not in path.split("/")
    assert "\x00" not in path
    assert path == "/" or posixpath.normpath(path) == path


def test_resolve_joins_root_and_path(system: StorageSystem) -> None:
    assert system.resolve(JOB) == system.root + JOB
    assert system.resolve("/") == system.root


# -- directories, listing, hashing -----------------------------------------------------


def test_makedirs_is_idempotent(system: StorageSystem) -> None:
    assert not system.exists(JOB)
    system.makedirs(JOB)
    system.makedirs(JOB)
    assert system.exists(JOB)


def test_list_files_recursive_sorted_with_relative_paths(system: StorageSystem) -> None:
    write(system, f"{JOB}/out/b.png", b"bb")
    write(system, f"{JOB}/out/deep/c.txt", b"ccc")
    write(system, f"{JOB}/a.log", b"a")
    write(system, "/products/v2/AAA/BBB/OTHER/x.txt", b"not listed")
    system.makedirs(f"{JOB}/empty")

    listing = system.list_files(JOB)

    assert [f.path for f in listing.files] == [
        f"{JOB}/a.log",
        f"{JOB}/out/b.png",
        f"{JOB}/out/deep/c.txt",
    ]
    assert [f.relative_path for f in listing] == ["a.log", "out/b.png", "out/deep/c.txt"]
    assert [f.size for f in listing] == [1, 2, 3]
    assert listing.total_size == 6
    assert listing.skipped == ()
    assert listing.path == JOB
    for stored in listing:
        assert stored.modified is not None
        assert stored.modified.tzinfo is not None
        assert stored.modified.utcoffset() == timezone.utc.utcoffset(None)


@pytest.mark.parametrize(
    "reported",
    ["2024-01-01T00:00:00.000Z", "2024-01-01T00:00:00Z", "2024-01-01T01:00:00.000+01:00"],
)
def test_an_object_store_modification_time_is_read(
    memory_system: StorageSystem, monkeypatch: pytest.MonkeyPatch, reported: str
) -> None:
    # Object stores such as Google Cloud Storage report the time as text in "updated".
    write(memory_system, f"{JOB}/a.txt", b"a")
    find = memory_system.fs.find

    def as_an_object_store_reports(path: str, **kwargs: Any) -> Any:
        found = find(path, **kwargs)
        if not kwargs.get("detail"):
            return found
        return {
            name: {**{k: v for k, v in info.items() if k != "created"}, "updated": reported}
            for name, info in found.items()
        }

    monkeypatch.setattr(memory_system.fs, "find", as_an_object_store_reports)
    [stored] = memory_system.list_files(JOB).files
    assert stored.modified == datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert stored.modified.utcoffset() == timezone.utc.utcoffset(None)


def test_list_root(system: StorageSystem) -> None:
    write(system, "/top.txt", b"x")
    write(system, f"{JOB}/a", b"y")
    assert [f.path for f in system.list_files("/")] == [f"{JOB}/a", "/top.txt"]


def test_missing_directory_lists_empty(system: StorageSystem) -> None:
    listing = system.list_files(JOB)
    assert listing.files == ()
    assert listing.skipped == ()


def test_listing_a_file_is_an_error(system: StorageSystem) -> None:
    write(system, f"{JOB}/a.txt", b"x")
    with pytest.raises(InvalidRequestError, match="is a file, not a directory"):
        system.list_files(f"{JOB}/a.txt")


def test_sha256_matches_hashlib(system: StorageSystem) -> None:
    content = os.urandom(70_000)
    write(system, f"{JOB}/blob.bin", content)
    assert system.sha256(f"{JOB}/blob.bin") == hashlib.sha256(content).hexdigest()
    write(system, f"{JOB}/empty", b"")
    assert system.sha256(f"{JOB}/empty") == hashlib.sha256(b"").hexdigest()


def test_sha256_streams_in_chunks(system: StorageSystem, monkeypatch: pytest.MonkeyPatch) -> None:
    content = os.urandom(10_000)
    write(system, f"{JOB}/big.bin", content)
    requested: list[int] = []
    real_open = StorageSystem.open

    class Spy:
        def __init__(self, stream: BinaryIO) -> None:
            self.stream = stream

        def read(self, size: int = -1) -> bytes:
            requested.append(size)
            return self.stream.read(size)

        def __enter__(self) -> Spy:
            return self

        def __exit__(self, *exc: object) -> None:
            self.stream.close()

    def spying_open(self: StorageSystem, path: str) -> Any:
        return Spy(real_open(self, path))

    monkeypatch.setattr(StorageSystem, "open", spying_open)
    digest = system.sha256(f"{JOB}/big.bin", chunk_size=1024)

    assert digest == hashlib.sha256(content).hexdigest()
    assert len(requested) == 11  # ten full chunks, one partial, then the empty read
    assert all(0 < size <= 1024 for size in requested)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_sha256_chunk_size_must_be_positive(system: StorageSystem, bad: Any) -> None:
    write(system, f"{JOB}/a", b"x")
    with pytest.raises(InvalidRequestError, match="chunk_size"):
        system.sha256(f"{JOB}/a", chunk_size=bad)


def test_open_streams_content(system: StorageSystem) -> None:
    write(system, f"{JOB}/a.txt", b"hello world")
    with system.open(f"{JOB}/a.txt") as stream:
        assert stream.read(5) == b"hello"
        assert stream.read() == b" world"


def test_missing_file_is_not_found(system: StorageSystem) -> None:
    with pytest.raises(NotFoundError, match=r"missing\.txt"):
        system.sha256(f"{JOB}/missing.txt")


def test_read_failure_becomes_storage_failure(
    system: StorageSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(system, f"{JOB}/a.txt", b"x")

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    # Local systems read straight from the operating system, others through fsspec.
    monkeypatch.setattr(system.fs, "open", refuse)
    monkeypatch.setattr(io, "open", refuse)
    with pytest.raises(StorageFailureError, match=r"a\.txt.*Permission denied") as caught:
        system.sha256(f"{JOB}/a.txt")
    assert isinstance(caught.value.__cause__, PermissionError)
    assert caught.value.details["path"] == f"{JOB}/a.txt"


@pytest.mark.skipif(os.geteuid() == 0, reason="permissions do not restrict root")
def test_unreadable_file_is_a_storage_failure(local_system: StorageSystem) -> None:
    write(local_system, f"{JOB}/secret", b"x")
    target = local_root(local_system) / JOB.lstrip("/") / "secret"
    target.chmod(0)
    try:
        assert [f.path for f in local_system.list_files(JOB)] == [f"{JOB}/secret"]
        with pytest.raises(StorageFailureError, match="secret"):
            local_system.sha256(f"{JOB}/secret")
    finally:
        target.chmod(0o600)


@pytest.mark.skipif(os.geteuid() == 0, reason="permissions do not restrict root")
def test_unreadable_subdirectory_is_skipped(local_system: StorageSystem) -> None:
    write(local_system, f"{JOB}/ok.txt", b"x")
    write(local_system, f"{JOB}/locked/hidden.txt", b"x")
    locked = local_root(local_system) / JOB.lstrip("/") / "locked"
    locked.chmod(0)
    try:
        listing = local_system.list_files(JOB)
    finally:
        locked.chmod(0o700)
    assert [f.path for f in listing] == [f"{JOB}/ok.txt"]
    assert [(s.path, s.reason) for s in listing.skipped] == [(f"{JOB}/locked", SKIP_UNREADABLE)]


def test_unreadable_subdirectory_is_skipped_simulated(
    local_system: StorageSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(local_system, f"{JOB}/ok.txt", b"x")
    write(local_system, f"{JOB}/locked/hidden.txt", b"x")
    real_scandir = os.scandir

    def scandir(path: str) -> Any:
        if os.path.basename(path) == "locked":
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    listing = local_system.list_files(JOB)
    assert [f.path for f in listing] == [f"{JOB}/ok.txt"]
    assert [(s.path, s.reason) for s in listing.skipped] == [(f"{JOB}/locked", SKIP_UNREADABLE)]
    assert "Permission denied" in listing.skipped[0].detail


def test_unreadable_listed_directory_is_a_storage_failure(
    local_system: StorageSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(local_system, f"{JOB}/ok.txt", b"x")

    def scandir(path: str) -> Any:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(StorageFailureError, match=f"cannot list '{JOB}'"):
        local_system.list_files(JOB)


def test_makedirs_over_a_file_is_a_storage_failure(local_system: StorageSystem) -> None:
    write(local_system, f"{JOB}/a", b"x")
    with pytest.raises(StorageFailureError, match=f"{JOB}/a/b"):
        local_system.makedirs(f"{JOB}/a/b")


# -- symbolic links (local only) ------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the root, with a file in it."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "passwd").write_bytes(b"secret")
    return directory


def job_dir(system: StorageSystem) -> Path:
    system.makedirs(JOB)
    return local_root(system) / JOB.lstrip("/")


def test_symlinks_leaving_the_root_are_skipped(local_system: StorageSystem, outside: Path) -> None:
    directory = job_dir(local_system)
    (directory / "real.txt").write_bytes(b"ok")
    (directory / "file-link").symlink_to(outside / "passwd")
    (directory / "dir-link").symlink_to(outside)

    listing = local_system.list_files(JOB)

    assert [f.relative_path for f in listing] == ["real.txt"]
    assert [(s.path, s.reason) for s in listing.skipped] == [
        (f"{JOB}/dir-link", SKIP_SYMLINK_OUTSIDE_ROOT),
        (f"{JOB}/file-link", SKIP_SYMLINK_OUTSIDE_ROOT),
    ]
    assert "outside the root" in listing.skipped[0].detail


def test_reading_through_a_link_leaving_the_root_is_refused(
    local_system: StorageSystem, outside: Path
) -> None:
    directory = job_dir(local_system)
    (directory / "file-link").symlink_to(outside / "passwd")
    (directory / "dir-link").symlink_to(outside)
    for path in (f"{JOB}/file-link", f"{JOB}/dir-link/passwd"):
        with pytest.raises(StorageFailureError, match="outside the system's root"):
            local_system.sha256(path)
    with pytest.raises(StorageFailureError, match="outside"):
        local_system.makedirs(f"{JOB}/dir-link/new")
    assert not (outside / "new").exists()


def test_symlinks_inside_the_root_are_followed(local_system: StorageSystem) -> None:
    write(local_system, "/shared/ref.txt", b"ref")
    directory = job_dir(local_system)
    (directory / "ref-link").symlink_to(local_root(local_system) / "shared" / "ref.txt")
    (directory / "shared-dir").symlink_to(local_root(local_system) / "shared")

    listing = local_system.list_files(JOB)

    assert [f.relative_path for f in listing] == ["ref-link", "shared-dir/ref.txt"]
    assert local_system.sha256(f"{JOB}/ref-link") == hashlib.sha256(b"ref").hexdigest()


def test_broken_links_loops_and_special_files_are_skipped(local_system: StorageSystem) -> None:
    directory = job_dir(local_system)
    (directory / "broken").symlink_to(directory / "nowhere")
    (directory / "sub").mkdir()
    (directory / "sub" / "loop").symlink_to(directory)
    os.mkfifo(directory / "fifo")

    listing = local_system.list_files(JOB)

    assert listing.files == ()
    assert [(s.path, s.reason) for s in listing.skipped] == [
        (f"{JOB}/broken", SKIP_BROKEN_SYMLINK),
        (f"{JOB}/fifo", SKIP_NOT_REGULAR),
        (f"{JOB}/sub/loop", SKIP_SYMLINK_LOOP),
    ]


def test_root_reached_through_its_own_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real-archive"
    real.mkdir()
    alias = tmp_path / "alias"
    alias.symlink_to(real)
    system = open_system("aliased", f"file://{alias}")
    write(system, f"{JOB}/a", b"x")
    assert [f.path for f in system.list_files(JOB)] == [f"{JOB}/a"]


# -- removal ---------------------------------------------------------------------------


def test_remove_tree_contents_empties_only_the_directory(system: StorageSystem) -> None:
    write(system, f"{JOB}/a.txt", b"a")
    write(system, f"{JOB}/out/b.txt", b"b")
    write(system, "/products/v2/AAA/BBB/SIBLING/keep.txt", b"keep")

    removed = system.remove_tree_contents(JOB)

    assert removed == [f"{JOB}/a.txt", f"{JOB}/out", f"{JOB}/out/b.txt"]
    assert system.list_files(JOB).files == ()
    assert [f.path for f in system.list_files("/")] == ["/products/v2/AAA/BBB/SIBLING/keep.txt"]
    if system.is_local:
        assert (local_root(system) / JOB.lstrip("/")).is_dir()


def test_remove_tree_removes_the_directory(system: StorageSystem) -> None:
    write(system, f"{JOB}/out/b.txt", b"b")
    assert system.remove_tree(JOB) == [JOB, f"{JOB}/out", f"{JOB}/out/b.txt"]
    assert not system.exists(JOB)
    assert system.exists("/products/v2/AAA/BBB")


def test_remove_tree_of_a_file(system: StorageSystem) -> None:
    write(system, f"{JOB}/a.txt", b"a")
    assert system.remove_tree(f"{JOB}/a.txt") == [f"{JOB}/a.txt"]
    assert not system.exists(f"{JOB}/a.txt")
    write(system, f"{JOB}/b.txt", b"b")
    with pytest.raises(InvalidRequestError, match="not a directory"):
        system.remove_tree_contents(f"{JOB}/b.txt")


def test_removing_nothing_is_a_no_op(system: StorageSystem) -> None:
    assert system.remove_tree_contents(JOB) == []
    assert system.remove_tree(JOB) == []


@pytest.mark.parametrize("operation", ["remove_tree", "remove_tree_contents"])
def test_the_root_is_never_removed(system: StorageSystem, operation: str) -> None:
    write(system, "/a.txt", b"a")
    with pytest.raises(InvalidRequestError, match="root of storage system"):
        getattr(system, operation)("/")
    assert system.exists("/a.txt")


def test_links_inside_are_removed_as_links(local_system: StorageSystem, outside: Path) -> None:
    directory = job_dir(local_system)
    (directory / "data").mkdir()
    (directory / "data" / "x").write_bytes(b"x")
    (directory / "dir-link").symlink_to(outside)
    (directory / "data" / "file-link").symlink_to(outside / "passwd")

    removed = local_system.remove_tree_contents(JOB)

    assert removed == [
        f"{JOB}/data",
        f"{JOB}/data/file-link",
        f"{JOB}/data/x",
        f"{JOB}/dir-link",
    ]
    assert list(directory.iterdir()) == []
    assert (outside / "passwd").read_bytes() == b"secret"


def test_removal_through_a_link_leaving_the_root_is_refused(
    local_system: StorageSystem, outside: Path
) -> None:
    directory = job_dir(local_system)
    (outside / "sub").mkdir()
    (outside / "sub" / "precious").write_bytes(b"p")
    (directory / "escape").symlink_to(outside)

    for operation in (local_system.remove_tree, local_system.remove_tree_contents):
        with pytest.raises(StorageFailureError, match="outside the system's root"):
            operation(f"{JOB}/escape/sub")
    assert (outside / "sub" / "precious").read_bytes() == b"p"

    with pytest.raises(InvalidRequestError, match="is a symbolic link"):
        local_system.remove_tree_contents(f"{JOB}/escape")
    assert local_system.remove_tree(f"{JOB}/escape") == [f"{JOB}/escape"]
    assert not (directory / "escape").is_symlink()
    assert (outside / "passwd").read_bytes() == b"secret"


def test_a_link_to_the_root_cannot_be_used_to_empty_it(local_system: StorageSystem) -> None:
    write(local_system, "/keep.txt", b"k")
    (local_root(local_system) / "alias").symlink_to(local_root(local_system))
    with pytest.raises(InvalidRequestError, match="symbolic link"):
        local_system.remove_tree_contents("/alias")
    assert local_system.exists("/keep.txt")


@pytest.mark.skipif(os.geteuid() == 0, reason="permissions do not restrict root")
def test_failed_removal_reports_what_was_removed(local_system: StorageSystem) -> None:
    write(local_system, f"{JOB}/a.txt", b"a")
    write(local_system, f"{JOB}/locked/b.txt", b"b")
    locked = local_root(local_system) / JOB.lstrip("/") / "locked"
    locked.chmod(0o500)
    try:
        with pytest.raises(StorageFailureError, match="cannot empty") as caught:
            local_system.remove_tree_contents(JOB)
    finally:
        locked.chmod(0o700)
    assert isinstance(caught.value.details["removed"], list)


def test_failed_removal_reports_what_was_removed_simulated(
    local_system: StorageSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(local_system, f"{JOB}/a.txt", b"a")
    write(local_system, f"{JOB}/z/stuck.txt", b"b")
    real_unlink = os.unlink

    def unlink(path: str) -> None:
        if os.path.basename(path) == "stuck.txt":
            raise PermissionError(13, "Permission denied", path)
        real_unlink(path)

    monkeypatch.setattr(os, "unlink", unlink)
    with pytest.raises(StorageFailureError, match=r"cannot empty.*Permission denied") as caught:
        local_system.remove_tree_contents(JOB)
    assert isinstance(caught.value.__cause__, PermissionError)
    assert set(caught.value.details["removed"]) <= {f"{JOB}/a.txt"}
    assert local_system.exists(f"{JOB}/z/stuck.txt")


# -- systems and the registry -------------------------------------------------------------


def test_storage_system_equality_and_repr(tmp_path: Path) -> None:
    url = f"file://{tmp_path}"
    assert open_system("a", url) == StorageSystem.from_url("a", url)
    assert open_system("a", url) != open_system("b", url)
    assert "fs=" not in repr(open_system("a", url))


def test_unusable_urls_are_refused() -> None:
    with pytest.raises(InvalidRequestError, match="unusable URL 'nosuchproto://x'"):
        open_system("bad", "nosuchproto://x")
    with pytest.raises(InvalidRequestError, match="non-empty URL"):
        open_system("bad", "")
    with pytest.raises(InvalidRequestError, match="name"):
        open_system("", "memory://x")


def test_default_storage_url(tmp_path: Path) -> None:
    url = default_storage_url(tmp_path)
    assert url == f"file://{tmp_path}/archive"
    system = open_system(DEFAULT_SYSTEM_NAME, url)
    assert system.is_local
    assert system.root == f"{tmp_path}/archive"


def test_registry_get_and_default(tmp_path: Path) -> None:
    registry = StorageRegistry(
        systems={"local": default_storage_url(tmp_path), "scratch": "memory://registry-test"},
        default="local",
    )
    assert registry.names == ("local", "scratch")
    assert registry.default_name == "local"
    assert registry.default_system.name == "local"
    assert registry.get() is registry.default_system
    assert registry.get("scratch").url == "memory://registry-test"
    assert not registry.get("scratch").is_local
    assert "scratch" in registry
    assert "registry-test" in repr(registry)


def test_registry_unknown_name_lists_known_ones(tmp_path: Path) -> None:
    registry = StorageRegistry(systems={"local": default_storage_url(tmp_path)})
    with pytest.raises(NotFoundError) as caught:
        registry.get("data-sd2e-community")
    message = str(caught.value)
    assert "'data-sd2e-community'" in message
    assert "local" in message
    assert caught.value.details["known"] == ["local"]


def test_registry_default_must_be_configured() -> None:
    with pytest.raises(InvalidRequestError, match="default storage system 'local'"):
        StorageRegistry(systems={"scratch": "memory://x"})


def test_registry_options_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        StorageRegistry({"local": "memory://x"})  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "url",
    [
        "file:///tmp/dc-root",
        "file:///tmp/dc-root/",
        "file:///",
        "file:///a b/c",
        "file:///a%20b/c",
        "file:///tmp//x",
        "file:///tmp/./x",
        "file://relative/x",
        "file:///a/b:c",
    ],
)
def test_a_local_root_is_the_one_fsspec_gives_without_opening_it_first(url: str) -> None:
    import fsspec.core
    from fsspec.implementations.local import LocalFileSystem

    system = open_system("local", url)
    _fs, root = fsspec.core.url_to_fs(url)
    expected = str(root) if str(root) in ("", "/") else str(root).rstrip("/")
    assert system.root == expected
    assert system.is_local
    assert isinstance(system.fs, LocalFileSystem)
    assert system.fs is system.fs  # made once


def test_reading_the_catalog_does_not_import_fsspec() -> None:
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from datacatalog.catalog import Catalog\n"
        "from datacatalog.settings import Settings\n"
        "import tempfile\n"
        "settings = Settings.load(env={}, data_dir=tempfile.mkdtemp(), secret='s' * 32)\n"
        "catalog = Catalog.open('mongomock://', settings=settings)\n"
        "catalog.jobs.find()\n"
        "print('fsspec' in sys.modules)"
    )
    # The probe sees no catalog setting of the test session (an OpenLineage sink named
    # there would load its client, which uses fsspec).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATACATALOG_", "OPENLINEAGE"))}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_local_path_is_the_checked_path_on_this_machine_or_none(
    local_system: StorageSystem, memory_system: StorageSystem
) -> None:
    assert local_system.local_path(JOB) == f"{local_system.root}{JOB}"
    assert memory_system.local_path(JOB) is None
    os.symlink("/", local_root(local_system) / "escape")
    with pytest.raises(StorageFailureError, match="outside the system's root"):
        local_system.local_path("/escape/etc")
    with pytest.raises(InvalidRequestError, match="must not contain"):
        memory_system.local_path("/a/../b")


def test_the_storage_modules_import_one_another_without_a_circle() -> None:
    import ast

    import datacatalog.storage

    package = Path(datacatalog.storage.__file__).parent
    imports: dict[str, set[str]] = {}
    for module in package.glob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                name = node.module
                if name == "datacatalog.storage":
                    found.update(alias.name for alias in node.names)
                elif name.startswith("datacatalog.storage."):
                    found.add(name.rsplit(".", 1)[1])
        imports[module.stem] = found

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for step in imports.get(start, set()) - seen:
            if step == target or reaches(step, target, seen | {step}):
                return True
        return False

    circles = sorted(name for name in imports if name != "__init__" and reaches(name, name, set()))
    assert circles == []


# -- reading many files: directories opened once --------------------------------------


def test_a_reader_gives_the_digests_sha256_gives(system: StorageSystem) -> None:
    files = {f"{JOB}/d{d}/f{n}": os.urandom(100 * n) for d in range(3) for n in range(12)}
    for path, content in files.items():
        write(system, path, content)
    with system.reader() as reader:
        for path in files:
            assert reader.sha256(path) == system.sha256(path)
            assert reader.sha256(path, chunk_size=7) == system.sha256(path)
        with pytest.raises(NotFoundError):
            reader.sha256(f"{JOB}/d0/missing")
        with pytest.raises(NotFoundError):
            reader.sha256(f"{JOB}/nowhere/f1")
        with pytest.raises(InvalidRequestError, match="components"):
            reader.sha256(f"{JOB}/d0/../d1/f1")
        with pytest.raises(InvalidRequestError, match="chunk_size"):
            reader.sha256(f"{JOB}/d0/f1", chunk_size=0)


def test_a_reader_keeps_few_directories_open_and_closes_them(local_system: StorageSystem) -> None:
    from datacatalog.storage.local import MAX_OPEN_DIRECTORIES

    count = MAX_OPEN_DIRECTORIES * 3
    for d in range(count):
        write(local_system, f"{JOB}/d{d}/f", b"x")
    before = len(os.listdir("/proc/self/fd"))
    reader = local_system.reader()
    for d in range(count):
        reader.sha256(f"{JOB}/d{d}/f")
    assert len(os.listdir("/proc/self/fd")) - before == MAX_OPEN_DIRECTORIES
    reader.close()
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_reader_refuses_a_directory_swapped_for_a_link_leaving_the_root(
    local_system: StorageSystem, outside: Path
) -> None:
    directory = job_dir(local_system)
    (directory / "sub").mkdir()
    (directory / "sub" / "passwd").write_bytes(b"ours")
    listing = local_system.list_files(JOB)
    assert [f.relative_path for f in listing] == ["sub/passwd"]
    # Between the listing and the hashing, the directory becomes a link out of the root.
    (directory / "sub").rename(directory / "old")
    (directory / "sub").symlink_to(outside)
    reader = local_system.reader()
    with reader, pytest.raises(StorageFailureError, match="outside the system's root"):
        reader.sha256(f"{JOB}/sub/passwd")


def test_a_reader_refuses_a_file_swapped_for_a_link_leaving_the_root(
    local_system: StorageSystem, outside: Path
) -> None:
    directory = job_dir(local_system)
    (directory / "passwd").write_bytes(b"ours")
    (directory / "other").write_bytes(b"also ours")
    with local_system.reader() as reader:
        assert reader.sha256(f"{JOB}/other") == hashlib.sha256(b"also ours").hexdigest()
        # The directory is open and checked now; its file becomes a link out of the root.
        (directory / "passwd").unlink()
        (directory / "passwd").symlink_to(outside / "passwd")
        with pytest.raises(StorageFailureError, match="outside the system's root"):
            reader.sha256(f"{JOB}/passwd")


def test_a_reader_reads_the_directory_it_checked(
    local_system: StorageSystem, outside: Path
) -> None:
    """A directory replaced by a link after it was opened: the reads stay in the one opened."""
    directory = job_dir(local_system)
    (directory / "sub").mkdir()
    (directory / "sub" / "a").write_bytes(b"a")
    (directory / "sub" / "passwd").write_bytes(b"ours")
    with local_system.reader() as reader:
        reader.sha256(f"{JOB}/sub/a")  # opens and checks sub
        (directory / "sub").rename(directory / "old")
        (directory / "sub").symlink_to(outside)
        assert reader.sha256(f"{JOB}/sub/passwd") == hashlib.sha256(b"ours").hexdigest()


def test_a_reader_follows_links_inside_the_root(local_system: StorageSystem) -> None:
    write(local_system, "/shared/ref.txt", b"ref")
    directory = job_dir(local_system)
    (directory / "ref-link").symlink_to(local_root(local_system) / "shared" / "ref.txt")
    (directory / "shared-dir").symlink_to(local_root(local_system) / "shared")
    with local_system.reader() as reader:
        for path in (f"{JOB}/ref-link", f"{JOB}/shared-dir/ref.txt"):
            assert reader.sha256(path) == hashlib.sha256(b"ref").hexdigest()


def test_a_reader_without_dir_fd_support_opens_each_file(
    local_system: StorageSystem, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datacatalog.storage.local as local

    monkeypatch.setattr(local.os, "supports_dir_fd", set())
    directory = job_dir(local_system)
    (directory / "ok").write_bytes(b"ok")
    (directory / "dir-link").symlink_to(outside)
    with local_system.reader() as reader:
        assert reader.sha256(f"{JOB}/ok") == hashlib.sha256(b"ok").hexdigest()
        with pytest.raises(StorageFailureError, match="outside the system's root"):
            reader.sha256(f"{JOB}/dir-link/passwd")

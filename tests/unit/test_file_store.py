"""The file store on fakeredis and local disk: create, read, list, delete, expire, sweep."""

from __future__ import annotations

import io
from pathlib import Path

import fakeredis
import pytest

from common.config import Settings
from common.errors import NotFound
from common.storage import LocalStorage
from common.store import keys
from common.store.files import FileObject, FileStore, is_file_id, new_file_id

LINES = b'{"custom_id": "a"}\n{"custom_id": "b"}\n'


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "uploads")


@pytest.fixture
def files(client: fakeredis.FakeRedis, storage: LocalStorage) -> FileStore:
    return FileStore(client, storage, Settings.defaults())


def lapse(client: fakeredis.FakeRedis, file: FileObject) -> None:
    """Makes ``file`` expired, as the clock passing its ``expires_at`` would."""
    client.hset(keys.file(file.id), "expires_at", "1")
    client.zadd(keys.files_expiry(), {file.id: 1})


def test_ids_are_time_ordered_and_recognised() -> None:
    first, second = new_file_id(), new_file_id()
    assert is_file_id(first) and is_file_id(second) and first < second
    assert not is_file_id("file-xyz") and not is_file_id(first.upper())


def test_a_created_file_reads_back(files: FileStore, storage: LocalStorage) -> None:
    created = files.create("alice", "in.jsonl", "batch", LINES)
    assert created.bytes == len(LINES) and created.expires_at is None
    assert files.get_owned(created.id, "alice") == created
    assert files.content(created) == LINES == storage.get(created.id)
    wire = created.to_wire()
    assert wire["object"] == "file" and wire["status"] == "processed" and wire["status_details"] is None
    assert {k: wire[k] for k in ("id", "bytes", "filename", "purpose", "expires_at")} == {
        "id": created.id,
        "bytes": len(LINES),
        "filename": "in.jsonl",
        "purpose": "batch",
        "expires_at": None,
    }


def test_an_upload_is_streamed_from_its_position(files: FileStore) -> None:
    stream = io.BytesIO(b"skip" + LINES)
    stream.seek(4)
    created = files.upload("alice", "in.jsonl", "batch", stream, expires_after=3600)
    assert files.content(created) == LINES
    assert created.expires_at == created.created_at + 3600


def test_another_owner_gets_not_found_as_for_a_missing_file(files: FileStore) -> None:
    created = files.create("alice", "in.jsonl", "batch", LINES)
    for file_id, owner in ((created.id, "bob"), (new_file_id(), "alice"), ("../etc/passwd", "alice")):
        with pytest.raises(NotFound):
            files.get_owned(file_id, owner)
        with pytest.raises(NotFound):
            files.delete(file_id, owner)
    assert files.get_owned(created.id, "alice") == created


def test_delete_removes_metadata_index_and_bytes(
    files: FileStore, client: fakeredis.FakeRedis, storage: LocalStorage
) -> None:
    created = files.create("alice", "in.jsonl", "batch", LINES, expires_after=3600)
    files.delete(created.id, "alice")
    with pytest.raises(NotFound):
        files.get_owned(created.id, "alice")
    with pytest.raises(NotFound):
        storage.get(created.id)
    assert client.keys("inferq:*") == []


def test_an_expired_file_is_gone_at_once_and_swept(
    files: FileStore, client: fakeredis.FakeRedis, storage: LocalStorage
) -> None:
    kept = files.create("alice", "kept.jsonl", "batch", LINES)
    later = files.create("alice", "later.jsonl", "batch", LINES, expires_after=3600)
    gone = files.create("alice", "gone.jsonl", "batch", LINES, expires_after=3600)
    lapse(client, gone)
    with pytest.raises(NotFound):
        files.get_owned(gone.id, "alice")
    assert [f.id for f in files.list("alice", purpose=None, limit=10, after=None, order="desc")[0]] == [
        later.id,
        kept.id,
    ]
    assert files.sweep() == 1 and files.sweep() == 0
    with pytest.raises(NotFound):
        storage.get(gone.id)
    assert not client.exists(keys.file(gone.id))
    assert client.zrange(keys.owner_files("alice"), 0, -1) == sorted([kept.id, later.id])
    assert files.get_owned(later.id, "alice") == later and files.content(kept) == LINES


def test_a_failed_metadata_write_leaves_no_bytes(
    files: FileStore, storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: object) -> None:
        raise ConnectionError("Redis is gone")

    monkeypatch.setattr("common.store.files.redis_clock", refuse)
    with pytest.raises(ConnectionError):
        files.create("alice", "in.jsonl", "batch", LINES)
    assert storage.sweep() == 0  # nothing on disk


def ids(page: tuple[list[FileObject], bool]) -> tuple[list[str], bool]:
    return [f.id for f in page[0]], page[1]


def test_listing_pages_by_id_in_either_order_and_filters_by_purpose(files: FileStore) -> None:
    made = [files.create("alice", f"{n}.jsonl", "batch" if n % 2 else "user_data", LINES) for n in range(7)]
    files.create("bob", "theirs.jsonl", "batch", LINES)
    every = [f.id for f in made]
    newest = every[::-1]
    assert ids(files.list("alice", purpose=None, limit=100, after=None, order="desc")) == (newest, False)
    assert ids(files.list("alice", purpose=None, limit=3, after=None, order="desc")) == (newest[:3], True)
    assert ids(files.list("alice", purpose=None, limit=3, after=newest[2], order="desc")) == (
        newest[3:6],
        True,
    )
    assert ids(files.list("alice", purpose=None, limit=3, after=newest[5], order="desc")) == (
        newest[6:],
        False,
    )
    assert ids(files.list("alice", purpose=None, limit=4, after=None, order="asc")) == (every[:4], True)
    assert ids(files.list("alice", purpose=None, limit=4, after=every[3], order="asc")) == (every[4:], False)
    batch = [f.id for f in made if f.purpose == "batch"]
    assert ids(files.list("alice", purpose="batch", limit=2, after=None, order="asc")) == (batch[:2], True)
    assert ids(files.list("alice", purpose="batch", limit=2, after=batch[1], order="asc")) == (
        batch[2:],
        False,
    )
    assert ids(files.list("alice", purpose="fine-tune", limit=2, after=None, order="asc")) == ([], False)
    assert ids(files.list("carol", purpose=None, limit=2, after=None, order="asc")) == ([], False)


def test_listing_walks_past_many_filtered_out_files(
    files: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("common.store.files.SCAN_CHUNK", 3)
    made = [files.create("alice", "x", "user_data", b"x") for _ in range(10)]
    wanted = files.create("alice", "in.jsonl", "batch", LINES)
    assert ids(files.list("alice", purpose="batch", limit=5, after=None, order="asc")) == ([wanted.id], False)
    assert ids(files.list("alice", purpose=None, limit=10, after=None, order="asc")) == (
        [f.id for f in made],
        True,
    )


def test_listing_drops_index_entries_whose_files_are_gone(
    files: FileStore, client: fakeredis.FakeRedis
) -> None:
    kept = files.create("alice", "a", "batch", LINES)
    lost = files.create("alice", "b", "batch", LINES)
    client.delete(keys.file(lost.id))
    assert ids(files.list("alice", purpose=None, limit=10, after=None, order="desc")) == ([kept.id], False)
    assert client.zrange(keys.owner_files("alice"), 0, -1) == [kept.id]


def test_local_storage_streams_deletes_and_refuses_paths(storage: LocalStorage) -> None:
    assert storage.put_stream("big", io.BytesIO(b"x" * 3_000_000)) == 3_000_000
    assert storage.get("big") == b"x" * 3_000_000
    storage.delete("big")
    storage.delete("big")  # already gone: no error
    with pytest.raises(NotFound):
        storage.get("big")
    with pytest.raises(NotFound):
        storage.delete("../outside")
    assert [p.name for p in storage.root.iterdir()] == []  # no temporary left behind

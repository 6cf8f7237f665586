"""Uploaded files (OpenAI's Files API): metadata in Redis, bytes in the file storage.

A file's bytes are stored first, under its id, and its metadata after, in one
transaction (the hash, the owner's index and, when it expires, the expiry
index): a file that can be read always has its bytes. Ids are time-ordered
(``file-`` and the hex of a UUIDv7), so an owner's index is one sorted set with
every score 0 and paging is a range by id, as for predictions.

An expired file is gone at once (every read checks ``expires_at`` against the
Redis clock); :meth:`FileStore.sweep` then deletes its bytes and metadata.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, cast

import redis

from common.config import Settings
from common.connections import redis_clock
from common.errors import NotFound
from common.ids import new_prediction_id
from common.storage import Storage
from common.store import keys

FILE_ID = re.compile(r"^file-[0-9a-f]{32}\Z")
"""What the ids inferq hands out look like."""

ASCENDING = "asc"
DESCENDING = "desc"

SCAN_CHUNK = 200
"""Ids a listing reads per round trip."""

SWEEP_CHUNK = 100
"""Expired files a sweep deletes per round trip."""


def new_file_id() -> str:
    """A new file id: ``file-`` and 32 hex digits, later ids sorting after earlier ones."""
    return "file-" + new_prediction_id().replace("-", "")


def is_file_id(value: str) -> bool:
    """Whether ``value`` has the form of the ids :func:`new_file_id` makes."""
    return bool(FILE_ID.match(value))


@dataclass(frozen=True)
class FileObject:
    """One uploaded (or batch-written) file's metadata.

    Attributes:
        expires_at: Unix seconds it is deleted at; ``None`` keeps it until it is deleted.
    """

    id: str
    owner: str
    bytes: int
    created_at: int
    expires_at: int | None
    filename: str
    purpose: str

    def to_wire(self) -> dict[str, Any]:
        """The OpenAI file object (``status`` is deprecated there, but the clients require it)."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }

    def fields(self) -> dict[str, str]:
        """The hash it is stored as."""
        return {
            "owner": self.owner,
            "bytes": str(self.bytes),
            "created_at": str(self.created_at),
            "expires_at": "" if self.expires_at is None else str(self.expires_at),
            "filename": self.filename,
            "purpose": self.purpose,
        }

    @classmethod
    def from_fields(cls, file_id: str, data: dict[str, str]) -> FileObject:
        """Reads the hash :meth:`fields` wrote."""
        expires = data.get("expires_at") or ""
        return cls(
            id=file_id,
            owner=data["owner"],
            bytes=int(data["bytes"]),
            created_at=int(data["created_at"]),
            expires_at=int(expires) if expires else None,
            filename=data["filename"],
            purpose=data["purpose"],
        )

    def expired(self, now: float) -> bool:
        """Whether it has expired at unix time ``now``."""
        return self.expires_at is not None and self.expires_at <= now


class FileStore:
    """Creates, reads, lists, deletes and sweeps files; each owner sees only its own."""

    def __init__(self, client: redis.Redis, storage: Storage, settings: Settings) -> None:
        self.redis = client
        self.storage = storage
        self.settings = settings

    def create(
        self, owner: str, filename: str, purpose: str, data: bytes, expires_after: int | None = None
    ) -> FileObject:
        """Stores ``data`` as a new file of ``owner``.

        Any purpose is taken (the batches write ``batch_output`` files through here); what clients
        may upload is the API's to check.

        Args:
            expires_after: Seconds from now it expires after; ``None`` keeps it until deleted.
        """
        return self.upload(owner, filename, purpose, io.BytesIO(data), expires_after)

    def upload(
        self, owner: str, filename: str, purpose: str, stream: IO[bytes], expires_after: int | None = None
    ) -> FileObject:
        """As :meth:`create`, copying ``stream`` (from its position on) into storage in chunks."""
        file_id, size = self.put_bytes(stream)
        return self.record(file_id, size, owner, filename, purpose, expires_after)

    def put_bytes(self, stream: IO[bytes]) -> tuple[str, int]:
        """Stores a new file's bytes (no Redis); returns its new id and size, for :meth:`record`.

        Split from :meth:`record` so the API can copy a large upload off its event loop (in a
        thread, which must not touch the Redis connections) and record it on the loop.
        """
        file_id = new_file_id()
        return file_id, self.storage.put_stream(file_id, stream)

    def record(
        self, file_id: str, size: int, owner: str, filename: str, purpose: str, expires_after: int | None
    ) -> FileObject:
        """Stores the metadata of bytes :meth:`put_bytes` stored, making them a file; should that
        fail, the bytes are deleted."""
        try:
            now = int(redis_clock(self.redis))
            file = FileObject(
                id=file_id,
                owner=owner,
                bytes=size,
                created_at=now,
                expires_at=None if expires_after is None else now + expires_after,
                filename=filename,
                purpose=purpose,
            )
            stored: dict[Any, Any] = file.fields()  # redis-py's stubs want a Mapping of its key union
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(keys.file(file_id), mapping=stored)
                pipe.zadd(keys.owner_files(owner), {file_id: 0})
                if file.expires_at is not None:
                    pipe.zadd(keys.files_expiry(), {file_id: file.expires_at})
                pipe.execute()
        except BaseException:
            self.storage.delete(file_id)  # no metadata points at it
            raise
        return file

    def get_owned(self, file_id: str, owner: str) -> FileObject:
        """``owner``'s file ``file_id``.

        Raises:
            NotFound: No such file, it expired, or it is another owner's (all alike, 404).
        """
        if is_file_id(file_id):
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(keys.file(file_id))
                pipe.time()
                data, (seconds, _) = pipe.execute()
            if data and data.get("owner") == owner:
                file = FileObject.from_fields(file_id, data)
                if not file.expired(seconds):
                    return file
        raise NotFound(f"No such File object: {file_id}", param="id")

    def content(self, file: FileObject) -> bytes:
        """The bytes of ``file``.

        Raises:
            NotFound: It was deleted or swept meanwhile.
        """
        return self.storage.get(file.id)

    def delete(self, file_id: str, owner: str) -> None:
        """Deletes ``owner``'s file ``file_id``: its metadata, then its bytes.

        Raises:
            NotFound: As :meth:`get_owned`.
        """
        file = self.get_owned(file_id, owner)
        self._forget(file.id, file.owner)

    def _forget(self, file_id: str, owner: str | None) -> bool:
        """Removes a file's metadata and bytes; whether this call was the one that removed them."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.file(file_id))
            pipe.zrem(keys.files_expiry(), file_id)
            if owner is not None:
                pipe.zrem(keys.owner_files(owner), file_id)
            removed = pipe.execute()[0]
        self.storage.delete(file_id)
        return bool(removed)

    def list(
        self, owner: str, *, purpose: str | None, limit: int, after: str | None, order: str
    ) -> tuple[list[FileObject], bool]:
        """A page of ``owner``'s files that have not expired, and whether more follow it.

        Args:
            purpose: Only files of this purpose (``None``: all).
            limit: The most files in the page.
            after: The page starts after this file id (in ``order``); it need not exist.
            order: ``desc`` (newest first) or ``asc``.
        """
        found: list[FileObject] = []
        stale: list[str] = []
        more = False
        for file_id, data, now in self._walk(owner, after, order):
            if not data:
                stale.append(file_id)  # deleted or swept meanwhile
                continue
            file = FileObject.from_fields(file_id, data)
            if file.expired(now) or (purpose is not None and file.purpose != purpose):
                continue
            if len(found) == limit:
                more = True
                break
            found.append(file)
        if stale:
            self.redis.zrem(keys.owner_files(owner), *stale)
        return found, more

    def _walk(self, owner: str, after: str | None, order: str) -> Iterator[tuple[str, dict[str, str], float]]:
        """Every id in ``owner``'s index past ``after`` in ``order``, with its hash and the Redis clock."""
        index = keys.owner_files(owner)
        bound = after
        while True:
            with self.redis.pipeline(transaction=False) as pipe:
                if order == ASCENDING:
                    pipe.zrangebylex(index, f"({bound}" if bound else "-", "+", start=0, num=SCAN_CHUNK)
                else:
                    pipe.zrevrangebylex(index, f"({bound}" if bound else "+", "-", start=0, num=SCAN_CHUNK)
                pipe.time()
                ids, (seconds, _) = pipe.execute()
            if not ids:
                return
            with self.redis.pipeline(transaction=False) as pipe:
                for file_id in ids:
                    pipe.hgetall(keys.file(file_id))
                hashes = cast(list[dict[str, str]], pipe.execute())
            for file_id, data in zip(ids, hashes, strict=True):
                yield file_id, data, float(seconds)
            if len(ids) < SCAN_CHUNK:
                return
            bound = ids[-1]

    def sweep(self) -> int:
        """Deletes the files that have expired (bytes and metadata); returns how many.

        Safe to run in several processes at once: each file is counted by the one that removed it.
        """
        removed = 0
        while True:
            now = redis_clock(self.redis)
            due = cast(list[str], self.redis.zrangebyscore(keys.files_expiry(), "-inf", now, 0, SWEEP_CHUNK))
            if not due:
                return removed
            with self.redis.pipeline(transaction=False) as pipe:
                for file_id in due:
                    pipe.hget(keys.file(file_id), "owner")
                owners = cast(list[str | None], pipe.execute())
            for file_id, owner in zip(due, owners, strict=True):
                removed += self._forget(file_id, owner)

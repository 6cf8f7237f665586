"""Where generated and uploaded files live: a small interface, and the local-disk backend.

An S3-compatible backend implements the same methods (``put``, ``put_stream``,
``get``, ``delete``, ``sweep``) against a bucket; nothing else in inferq touches files.

Three namespaces under ``INFERQ_DATA_DIR``: ``files`` (images answered as links, swept
``INFERQ_RETENTION`` after they were stored), ``uploads`` (the decoded pixels of the images of
``/v1/images/edits``, read by the worker, swept when their prediction's record expires;
the API and the workers must share it) and ``openai-files`` (the Files API's uploads
and batch outputs, kept until they expire or are deleted; the API's alone).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol

from common.errors import NotFound

if TYPE_CHECKING:
    from common.config import Settings

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
"""What a stored file's name may look like (no directories, no traversal)."""

CONTENT_TYPES = {
    ".png": "image/png",
    ".jpeg": "image/jpeg",
    ".jpg": "image/jpeg",
    ".webp": "image/webp",
    ".jsonl": "application/jsonl",
    ".txt": "text/plain",
    ".csv": "text/csv",
}
"""MIME types by extension; any other file is ``application/octet-stream``."""

COPY_CHUNK = 1024 * 1024
"""Bytes copied at a time when a stream is stored."""


def content_type(name: str) -> str:
    """The MIME type of a stored file, from its extension."""
    return CONTENT_TYPES.get(Path(name).suffix.lower(), "application/octet-stream")


class Storage(Protocol):
    """A flat namespace of files."""

    def put(self, name: str, data: bytes) -> None:
        """Stores ``data`` as ``name`` (replacing any earlier file of that name)."""

    def put_stream(self, name: str, stream: IO[bytes]) -> int:
        """Stores what ``stream`` holds from its position on as ``name``, without holding it all in
        memory; returns how many bytes were stored."""

    def get(self, name: str) -> bytes:
        """The bytes of ``name``; raises ``NotFound`` when there is no such file."""

    def delete(self, name: str) -> None:
        """Deletes ``name``; a file that is not there is no error (it may have been swept)."""

    def sweep(self, older_than: float) -> int:
        """Deletes files stored before the unix time ``older_than``; returns how many."""


class LocalStorage:
    """Files in one directory on local disk (share it between API replicas, or use S3)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, name: str) -> Path:
        if not NAME.match(name):
            raise NotFound("File not found")
        return self.root / name

    def put(self, name: str, data: bytes) -> None:
        """Writes atomically (a temporary file renamed into place)."""
        path = self._path(name)
        self.root.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        with os.fdopen(handle, "wb") as f:
            f.write(data)
        os.replace(temporary, path)

    def put_stream(self, name: str, stream: IO[bytes]) -> int:
        """Copies ``stream`` in chunks into a temporary file, renamed into place once whole."""
        path = self._path(name)
        self.root.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        try:
            with os.fdopen(handle, "wb") as f:
                shutil.copyfileobj(stream, f, COPY_CHUNK)
                size = f.tell()
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return size

    def get(self, name: str) -> bytes:
        """Reads a file.

        Raises:
            NotFound: When it does not exist (or expired and was swept).
        """
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            raise NotFound("File not found") from None

    def delete(self, name: str) -> None:
        """Removes a file, if it is there."""
        self._path(name).unlink(missing_ok=True)

    def sweep(self, older_than: float | None = None) -> int:
        """Deletes files older than ``older_than`` (default: now); returns how many."""
        cutoff = time.time() if older_than is None else older_than
        removed = 0
        for path in self.root.glob("*") if self.root.is_dir() else ():
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


OPENAI_FILES = "openai-files"
"""The folder of the Files API's files under ``INFERQ_DATA_DIR``."""


def uploads_storage(settings: Settings) -> LocalStorage:
    """The images uploaded to ``/v1/images/edits``, for the worker that runs the edit."""
    return LocalStorage(settings.data_dir / "uploads")


def openai_files_storage(settings: Settings) -> LocalStorage:
    """The Files API's files (uploads and batch outputs), the API's alone."""
    return LocalStorage(settings.data_dir / OPENAI_FILES)

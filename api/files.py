"""OpenAI's Files API: reading an upload, checking it for its purpose, and storing it.

The upload route has a body limit of its own (``INFERQ_MAX_FILE_BYTES``, plus room
for the multipart framing) instead of ``INFERQ_MAX_BODY_BYTES``. werkzeug spools
the file part to a temporary file as it arrives; the checks read it line by line
and the store copies it in chunks, so an upload is never held in memory whole.
Large ones are checked and copied off the gevent loop (``api.offload``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import IO, Any

from flask import Request
from werkzeug.datastructures import FileStorage

from api import offload
from api.services import Services
from api.validation import parse_json_text
from common.errors import FileTooLarge, InvalidFile, InvalidRequest
from common.store.files import FileObject

UPLOADABLE = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
"""Purposes a client may upload a file for (``batch_output`` and the like are written by inferq)."""

BATCH = "batch"
"""The purpose of a batch's input file: JSONL, checked line by line."""

BATCH_EXPIRY = 30 * 24 * 3600
"""Seconds a batch input file is kept when the upload sets no ``expires_after`` (OpenAI's 30 days)."""

EXPIRES_MIN, EXPIRES_MAX = 3600, 30 * 24 * 3600
"""The bounds OpenAI puts on ``expires_after[seconds]``."""

MULTIPART_ROOM = 64 * 1024
"""Bytes of an upload's body allowed beyond the file itself: boundaries, headers, the other fields."""

SECONDS = re.compile(r"^[0-9]{1,12}\Z")
"""What ``expires_after[seconds]`` must look like (``int()`` would also take ``" 3_600"``)."""


@dataclass(frozen=True)
class Upload:
    """An upload's fields, as sent: the file (spooled by werkzeug), its purpose and expiry."""

    file: IO[bytes]
    filename: str
    purpose: str
    expires_after: int | None


def allow_upload(request: Request, services: Services) -> None:
    """Lifts this request's body limit to the file limit (and the multipart framing around it).

    Must run before anything reads the body: the limit is checked when the body is first opened.
    """
    request.max_content_length = services.settings.max_file_bytes + MULTIPART_ROOM


def read_upload(request: Request) -> Upload:
    """The multipart fields of ``POST /v1/files``.

    Raises:
        InvalidRequest: A field is missing or invalid (400, naming it as ``param``).
    """
    file = request.files.get("file")
    if not isinstance(file, FileStorage):
        raise InvalidRequest("Missing required parameter: 'file' (a multipart file part)", param="file")
    purpose = request.form.get("purpose")
    if purpose is None:
        raise InvalidRequest("Missing required parameter: 'purpose'", param="purpose")
    if purpose not in UPLOADABLE:
        raise InvalidRequest(
            f"Invalid value for 'purpose': {purpose[:64]!r}; expected one of {', '.join(UPLOADABLE)}",
            param="purpose",
        )
    expires_after = _expires_after(
        request.form.get("expires_after[anchor]"), request.form.get("expires_after[seconds]")
    )
    if expires_after is None and purpose == BATCH:
        expires_after = BATCH_EXPIRY
    return Upload(file.stream, file.filename or "upload", purpose, expires_after)


def _expires_after(anchor: str | None, seconds: str | None) -> int | None:
    """The seconds of an ``expires_after`` policy, if one is given.

    Raises:
        InvalidRequest: It is incomplete, anchored elsewhere than ``created_at``, or out of bounds.
    """
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise InvalidRequest("expires_after[anchor] must be 'created_at'", param="expires_after.anchor")
    if seconds is None or not SECONDS.match(seconds) or not EXPIRES_MIN <= int(seconds) <= EXPIRES_MAX:
        raise InvalidRequest(
            f"expires_after[seconds] must be a whole number from {EXPIRES_MIN} to {EXPIRES_MAX}",
            param="expires_after.seconds",
        )
    return int(seconds)


def size_of(stream: IO[bytes]) -> int:
    """Bytes in a seekable stream (left at its start)."""
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


def check_batch_lines(stream: IO[bytes], max_lines: int) -> None:
    """Checks a batch input file: UTF-8 JSONL, each non-empty line a JSON object, at most
    ``max_lines`` of them (the stream is left at its start).

    Lines are split on ``\\n`` alone (a ``\\r`` before it is JSON whitespace); lines are
    numbered from 1.

    Raises:
        InvalidFile: The first line that is not so, or the count (400).
    """
    requests = 0
    for number, raw in enumerate(stream, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidFile(f"Line {number} of the file is not valid UTF-8", param="file") from None
        if not line.strip():
            continue
        requests += 1
        if requests > max_lines:
            raise InvalidFile(f"The file holds more than {max_lines} requests (lines)", param="file")
        try:
            value = parse_json_text(line, f"Line {number} of the file")
        except InvalidRequest as e:
            raise InvalidFile(e.message, param="file") from e
        if not isinstance(value, dict):
            raise InvalidFile(f"Line {number} of the file is not a JSON object", param="file")
    if not requests:
        raise InvalidFile("The file holds no requests (no non-empty lines)", param="file")
    stream.seek(0)


def upload(services: Services, owner: str, request: Request) -> FileObject:
    """Reads, checks and stores an upload: nothing is stored when any check fails.

    Raises:
        InvalidRequest: A missing or invalid field, or an empty file (400).
        InvalidFile: A batch file that is not JSONL of at most ``INFERQ_MAX_FILE_LINES`` requests (400).
        FileTooLarge: A file over ``INFERQ_MAX_FILE_BYTES`` (413).
    """
    sent = read_upload(request)
    size = size_of(sent.file)
    limit = services.settings.max_file_bytes
    if size > limit:
        raise FileTooLarge(f"The file is {size} bytes; the most accepted is {limit}", param="file")
    if not size:
        raise InvalidRequest("The file is empty", param="file")

    def check_and_copy() -> tuple[str, int]:
        if sent.purpose == BATCH:
            check_batch_lines(sent.file, services.settings.max_file_lines)
        return services.files.put_bytes(sent.file)

    file_id, stored = offload.in_thread(size, check_and_copy)  # no Redis in there: see put_bytes
    return services.files.record(file_id, stored, owner, sent.filename, sent.purpose, sent.expires_after)


def page(services: Services, owner: str, query: dict[str, Any]) -> dict[str, Any]:
    """``GET /v1/files``: a page of the owner's files as OpenAI lists them."""
    files, more = services.files.list(
        owner, purpose=query["purpose"], limit=query["limit"], after=query["after"], order=query["order"]
    )
    data = [file.to_wire() for file in files]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": more,
    }

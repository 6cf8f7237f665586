"""The checks of an upload: a batch file's lines, and the expiry policy's fields."""

from __future__ import annotations

import io

import pytest

from api.files import BATCH_EXPIRY, _expires_after, check_batch_lines
from common.errors import InvalidFile, InvalidRequest


@pytest.mark.parametrize(
    "content",
    [
        b'{"custom_id": "a"}',
        b'{"custom_id": "a"}\r\n{"custom_id": "b"}\r\n',
        b'\n  \n{"custom_id": "a"}\n\n{"text": "line\\nbreak \xe2\x80\xa8 separator"}\n',
    ],
)
def test_jsonl_passes_and_the_stream_is_rewound(content: bytes) -> None:
    stream = io.BytesIO(content)
    check_batch_lines(stream, max_lines=2)
    assert stream.tell() == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "no requests"),
        (b"\n \n", "no requests"),
        (b'{"a": 1}\n{"a": 2}\n{"a": 3}\n', "more than 2"),
        (b'{"a": 1}\n"text"\n', "Line 2 of the file is not a JSON object"),
        (b'{"a": 1}\n{"a": \n', "Line 2 of the file is not valid JSON"),
        (b'{"a": Infinity}\n', "Line 1 of the file is not valid JSON"),
        (b'\xef\xbb\xbf{"a": 1}\n', "Line 1 of the file is not valid JSON"),
        (b'{"a": 1}\n{"a": "\xc3"}\n', "Line 2 of the file is not valid UTF-8"),
        (b'{"a": ' + b"[" * 200 + b"]" * 200 + b"}\n", "nests deeper"),
    ],
)
def test_a_bad_batch_file_names_its_first_bad_line(content: bytes, message: str) -> None:
    with pytest.raises(InvalidFile) as raised:
        check_batch_lines(io.BytesIO(content), max_lines=2)
    assert message in raised.value.message and raised.value.param == "file"
    assert raised.value.status_code == 400 and raised.value.code == "invalid_file"


def test_expires_after_takes_whole_seconds_in_openais_bounds() -> None:
    assert _expires_after(None, None) is None
    assert _expires_after("created_at", "3600") == 3600
    assert _expires_after("created_at", str(BATCH_EXPIRY)) == BATCH_EXPIRY
    for anchor, seconds in [
        ("created_at", "3599"),
        ("created_at", "2592001"),
        ("created_at", "+3600"),
        ("created_at", "3_600"),
        ("created_at", "3600.0"),
        ("created_at", None),
        ("last_active_at", "3600"),
        (None, "3600"),
    ]:
        with pytest.raises(InvalidRequest):
            _expires_after(anchor, seconds)

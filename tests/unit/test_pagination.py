"""Opaque list cursors: what inferq hands out reads back; anything else is a 422."""

import base64

import pytest

from api.pagination import NEWER, OLDER, Cursor
from common.errors import RequestValidationError

BOUNDARY = "0190f3a2-7b1c-7d3e-8f00-0123456789ab"


@pytest.mark.parametrize("direction", [OLDER, NEWER])
def test_round_trip(direction: str) -> None:
    cursor = Cursor(direction, BOUNDARY)
    text = cursor.encode()
    assert "=" not in text
    assert Cursor.decode(text) == cursor


def encoded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "!!!",
        "a",
        "é",
        encoded(b"x:" + BOUNDARY.encode()),
        encoded(b"o:not-an-id"),
        encoded(b"o:" + BOUNDARY.upper().encode()),
        encoded(b"o" + BOUNDARY.encode()),
        encoded(b"\xff\xfe:" + BOUNDARY.encode()),
    ],
)
def test_garbage_cursor_is_a_422(text: str) -> None:
    with pytest.raises(RequestValidationError) as caught:
        Cursor.decode(text)
    assert caught.value.status_code == 422
    assert caught.value.details == [
        {"loc": ["query", "cursor"], "msg": "Invalid cursor", "type": "value_error"}
    ]

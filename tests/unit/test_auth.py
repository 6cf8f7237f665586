"""Bearer keys map to owners; everything else is a 401."""

import pytest

from api.auth import KeyRing
from common.errors import Unauthorized

RING = KeyRing({"sk-alice": "alice", "sk-bob": "bob"})


@pytest.mark.parametrize(
    ("header", "owner"),
    [("Bearer sk-alice", "alice"), ("bearer sk-bob", "bob"), ("  BEARER   sk-alice  ", "alice")],
)
def test_owner_of_a_configured_key(header: str, owner: str) -> None:
    assert RING.owner(header) == owner


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Missing Authorization header"),
        ("", "Missing Authorization header"),
        ("Basic sk-alice", "must be 'Bearer <key>'"),
        ("sk-alice", "must be 'Bearer <key>'"),
        ("Bearer", "must be 'Bearer <key>'"),
        ("Bearer    ", "must be 'Bearer <key>'"),
        ("Bearer sk-carol", "Invalid API key"),
        ("Bearer SK-ALICE", "Invalid API key"),
        ("Bearer sk-alice sk-bob", "Invalid API key"),
        ("Bearer \udcff", "Invalid API key"),
    ],
)
def test_rejected(header: str | None, message: str) -> None:
    with pytest.raises(Unauthorized, match=message) as caught:
        RING.owner(header)
    assert caught.value.status_code == 401


def test_empty_ring_accepts_nothing() -> None:
    with pytest.raises(Unauthorized, match="Invalid API key"):
        KeyRing({}).owner("Bearer sk-alice")

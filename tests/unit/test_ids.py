"""Prediction ids: UUIDv7 strings that sort by creation time."""

import time
import uuid

import pytest

from common import ids
from common.ids import id_floor, is_prediction_id, new_prediction_id

T = 1_750_000_000.0
"""A fixed moment (June 2025), so the tests do not depend on the clock."""


@pytest.fixture(autouse=True)
def fresh_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with a generator that has issued nothing (and leaves the real one as it was)."""
    monkeypatch.setattr(ids, "_last_ms", 0)
    monkeypatch.setattr(ids, "_counter", 0)


def millis(prediction_id: str) -> int:
    return uuid.UUID(prediction_id).int >> 80


def test_new_id_is_a_canonical_uuid_version_7() -> None:
    value = new_prediction_id()
    parsed = uuid.UUID(value)
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    assert str(parsed) == value


def test_new_id_carries_its_millisecond() -> None:
    assert millis(new_prediction_id(T + 0.0125)) == int((T + 0.0125) * 1000)


def test_ids_increase_strictly_with_the_clock() -> None:
    made = [new_prediction_id() for _ in range(2000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_ids_in_one_millisecond_increase_strictly_past_the_counter() -> None:
    made = [new_prediction_id(T) for _ in range(10_000)]  # more than the 12-bit counter holds
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    assert all(uuid.UUID(value).version == 7 for value in made)
    assert millis(made[0]) == int(T * 1000) < millis(made[-1])


def test_ids_keep_increasing_when_the_clock_steps_back() -> None:
    later = new_prediction_id(T + 10)
    assert new_prediction_id(T) > later


def test_id_floor_separates_ids_made_before_from_ids_made_at_or_after() -> None:
    before = [new_prediction_id(T - 0.002), new_prediction_id(T - 0.001)]
    floor = id_floor(T)
    at_or_after = [new_prediction_id(T), new_prediction_id(T), new_prediction_id(T + 5)]
    assert all(value < floor for value in before)
    assert all(value > floor for value in at_or_after)
    assert is_prediction_id(floor) and uuid.UUID(floor).version == 7


def test_id_floor_of_now_is_below_a_new_id() -> None:
    now = time.time()
    assert id_floor(now) <= new_prediction_id(now)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0190f3a2-7b1c-7d3e-8f00-0123456789ab", True),
        ("0190F3A2-7B1C-7D3E-8F00-0123456789AB", False),
        ("{0190f3a2-7b1c-7d3e-8f00-0123456789ab}", False),
        ("urn:uuid:0190f3a2-7b1c-7d3e-8f00-0123456789ab", False),
        ("0190f3a27b1c7d3e8f000123456789ab", False),
        ("0190f3a2-7b1c-7d3e-8f00-0123456789a", False),
        ("not-a-uuid", False),
        ("", False),
    ],
)
def test_is_prediction_id(value: str, expected: bool) -> None:
    assert is_prediction_id(value) is expected

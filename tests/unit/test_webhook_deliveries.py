"""The delivery log the outbox's scripts keep: each attempt, how it ended, capped, expiring with it."""

from __future__ import annotations

import fakeredis
import pytest
from redis.lock import Lock

from common.store import keys
from common.store.outbox import DELIVERIES_KEPT, ERROR_CHARS, Attempt, Outbox, Snapshot
from common.store.predictions import PredictionStore
from tests.unit.stores import new

WINDOW = 3600.0


def locked(store: PredictionStore, client: fakeredis.FakeRedis) -> tuple[str, Outbox, Lock, Snapshot]:
    """A prediction with a webhook (its ``pending`` snapshot waiting), its outbox held."""
    prediction = new(store, webhook={"url": "http://hook"})
    outbox = Outbox(client)
    lock = outbox.lock(prediction.id)
    snapshot = outbox.head(prediction.id)
    assert lock is not None and snapshot is not None
    return prediction.id, outbox, lock, snapshot


def test_a_delivery_is_logged_with_its_code_status_and_time(
    store: PredictionStore, client: fakeredis.FakeRedis
) -> None:
    pid, outbox, lock, snapshot = locked(store, client)
    assert outbox.delivered(pid, lock, snapshot, Attempt(1700000000.25, "pending", 204, None, 12)) == 0
    history = outbox.history(pid)
    assert history.attempts == [
        {
            "attempt": 1,
            "outcome": "delivered",
            "at": 1700000000.25,
            "status": "pending",
            "status_code": 204,
            "duration_ms": 12,
        }
    ]
    assert history.pending == 0 and history.next_attempt_at is None
    record_ttl = client.pttl(keys.prediction(pid))
    # Set in the same step, but fakeredis's clock moves within a script: a millisecond or so apart.
    assert 0 < client.pttl(keys.webhook_deliveries(pid)) <= record_ttl + 100


def test_failures_are_numbered_until_the_delivery(
    store: PredictionStore, client: fakeredis.FakeRedis
) -> None:
    pid, outbox, lock, snapshot = locked(store, client)
    refused = Attempt(100.0, "pending", error="ConnectError: refused", duration_ms=3)
    assert outbox.failed(pid, lock, snapshot, refused, 100.0, WINDOW) == (1, False)
    assert outbox.failed(pid, lock, snapshot, Attempt(101.0, "pending", 500), 101.0, WINDOW) == (2, False)
    client.zadd(keys.webhooks_due(), {pid: 103.0})
    waiting = outbox.history(pid)
    assert waiting.pending == 1 and waiting.next_attempt_at == 103.0
    assert outbox.delivered(pid, lock, snapshot, Attempt(103.0, "pending", 200)) == 0
    logged = outbox.history(pid).attempts
    assert [(a["attempt"], a["outcome"], a.get("status_code"), a.get("error")) for a in logged] == [
        (1, "retrying", None, "ConnectError: refused"),
        (2, "retrying", 500, None),
        (3, "delivered", 200, None),
    ]


def test_the_last_failure_in_the_window_gives_up_and_drops_the_snapshot(
    store: PredictionStore, client: fakeredis.FakeRedis
) -> None:
    pid, outbox, lock, snapshot = locked(store, client)
    assert outbox.failed(pid, lock, snapshot, Attempt(100.0, "pending", 503), 100.0, WINDOW) == (1, False)
    late = Attempt(100.0 + WINDOW, "pending", 503)
    assert outbox.failed(pid, lock, snapshot, late, 100.0 + WINDOW, WINDOW) == (2, True)
    assert client.llen(keys.webhook_outbox(pid)) == 0
    assert client.zscore(keys.webhooks_due(), pid) is None
    assert not client.exists(keys.webhook_attempts(pid))
    assert [a["outcome"] for a in outbox.history(pid).attempts] == ["retrying", "given_up"]


def test_a_refused_address_is_logged_as_given_up(store: PredictionStore, client: fakeredis.FakeRedis) -> None:
    pid, outbox, lock, snapshot = locked(store, client)
    refused = Attempt(100.0, "pending", error="refused: private address " + "x" * 2 * ERROR_CHARS)
    assert outbox.delivered(pid, lock, snapshot, refused, gave_up=True) == 0
    (entry,) = outbox.history(pid).attempts
    assert entry["outcome"] == "given_up" and "status_code" not in entry
    assert len(entry["error"]) == ERROR_CHARS


def test_a_lapsed_lock_logs_nothing(store: PredictionStore, client: fakeredis.FakeRedis) -> None:
    pid, outbox, lock, snapshot = locked(store, client)
    client.delete(keys.webhook_lock(pid))
    assert outbox.failed(pid, lock, snapshot, Attempt(1.0, "pending", 500), 1.0, WINDOW) is None
    assert outbox.delivered(pid, lock, snapshot, Attempt(1.0, "pending", 200)) is None
    assert outbox.history(pid).attempts == []


def test_the_log_keeps_the_latest_attempts(store: PredictionStore, client: fakeredis.FakeRedis) -> None:
    pid, outbox, lock, snapshot = locked(store, client)
    for n in range(DELIVERIES_KEPT + 5):
        outbox.failed(pid, lock, snapshot, Attempt(float(n), "pending", 500), 0.0, WINDOW)
    logged = outbox.history(pid).attempts
    assert len(logged) == DELIVERIES_KEPT
    assert logged[0]["attempt"] == 6 and logged[-1]["attempt"] == DELIVERIES_KEPT + 5


@pytest.mark.parametrize("gone", [True, False])
def test_nothing_is_logged_once_the_record_expired(
    store: PredictionStore, client: fakeredis.FakeRedis, gone: bool
) -> None:
    pid, outbox, lock, snapshot = locked(store, client)
    client.delete(keys.prediction(pid))
    attempt = Attempt(1.0, "pending", 200)
    if gone:
        outbox.delivered(pid, lock, snapshot, attempt)
    else:
        outbox.failed(pid, lock, snapshot, attempt, 1.0, WINDOW)
    assert not client.exists(keys.webhook_deliveries(pid))

"""The webhook outbox's fenced writes: only the lock's holder drops or counts, and only what it posted."""

from __future__ import annotations

import fakeredis

from common.store import keys
from common.store.outbox import Attempt, Outbox, Snapshot

ID = "p1"
OK = Attempt(100.0, "starting", status_code=200)
BAD = Attempt(100.0, "starting", status_code=500)
WINDOW = 3600.0


def filled(client: fakeredis.FakeRedis, *snapshots: str) -> Outbox:
    client.rpush(keys.webhook_outbox(ID), *snapshots)
    client.zadd(keys.webhooks_due(), {ID: 1.0})
    return Outbox(client)


def test_the_holder_drops_the_snapshot_it_posted(client: fakeredis.FakeRedis) -> None:
    outbox = filled(client, "first", "last")
    lock = outbox.lock(ID)
    assert lock is not None and outbox.lock(ID) is None
    assert outbox.head(ID) == Snapshot("first")
    assert outbox.delivered(ID, lock, Snapshot("first"), OK) == 1
    assert outbox.delivered(ID, lock, Snapshot("last"), OK) == 0
    assert client.zscore(keys.webhooks_due(), ID) is None
    outbox.unlock(lock)
    assert outbox.lock(ID) is not None


def test_a_lapsed_lock_drops_and_counts_nothing(client: fakeredis.FakeRedis) -> None:
    outbox = filled(client, "first", "last")
    stale = outbox.lock(ID)
    assert stale is not None
    client.delete(keys.webhook_lock(ID))  # it lapsed
    taken = outbox.lock(ID)
    assert taken is not None
    assert outbox.delivered(ID, stale, Snapshot("first"), OK) is None
    assert outbox.failed(ID, stale, Snapshot("first"), BAD, 100.0, WINDOW) is None
    assert not outbox.renew(stale)
    outbox.unlock(stale)  # nothing to release, and no error
    assert client.lrange(keys.webhook_outbox(ID), 0, -1) == ["first", "last"]
    assert not client.exists(keys.webhook_attempts(ID))
    assert outbox.renew(taken)


def test_a_snapshot_no_longer_first_is_not_dropped_in_its_place(client: fakeredis.FakeRedis) -> None:
    outbox = filled(client, "last")  # "first" was dropped by another holder meanwhile
    lock = outbox.lock(ID)
    assert lock is not None
    assert outbox.delivered(ID, lock, Snapshot("first"), OK) == 1
    assert client.lrange(keys.webhook_outbox(ID), 0, -1) == ["last"]


def test_failures_are_counted_from_the_first(client: fakeredis.FakeRedis) -> None:
    outbox = filled(client, "first")
    lock = outbox.lock(ID)
    assert lock is not None
    assert outbox.failed(ID, lock, Snapshot("first"), BAD, 100.0, WINDOW) == (1, False)
    assert outbox.failed(ID, lock, Snapshot("first"), BAD, 105.0, WINDOW) == (2, False)
    assert client.hget(keys.webhook_attempts(ID), "first") == "100.0"
    assert outbox.delivered(ID, lock, Snapshot("first"), OK) == 0
    assert not client.exists(keys.webhook_attempts(ID))

"""The webhook outbox of each prediction, in Redis: snapshots to deliver in order, and when to try.

The store's scripts append a snapshot at every status change and mark the
prediction due; the delivering task takes the first snapshot, posts it, and
drops it once delivered (or given up on), or schedules its next attempt.

One task at a time delivers a prediction's outbox, holding its lock. The lock
lapses after :data:`LOCK_SECONDS` unrenewed (so a crashed task does not hold it
for ever); the task renews it before each attempt, whose deadline is far
shorter. Should it lapse all the same (a process paused for minutes), the
writes are fenced: only the lock's holder can drop a snapshot or count a
failure, and only the snapshot it posted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, cast

import redis
from redis.exceptions import LockError
from redis.lock import Lock

from common.store import keys

LOCK_SECONDS = 120
"""How long a delivering task's hold on an outbox lasts unrenewed (it renews before every attempt,
and an attempt takes at most ``common.config.WEBHOOK_TIMEOUT_MAX``)."""

ATTEMPTS_TTL = 7 * 24 * 3600
"""Seconds a count of failed attempts is kept."""


@dataclass(frozen=True)
class Snapshot:
    """The first snapshot waiting in an outbox: as stored (to recognise it by) and decoded.

    The scripts leave the input out of every snapshot (a 1 MiB input would otherwise be kept up
    to five times); :meth:`Outbox.head` reads it from the record, where it never changes.
    """

    raw: str
    input: str | None = field(default=None, compare=False)

    @property
    def fields(self) -> dict[str, Any]:
        """The record hash plus ``logs``, as the store's scripts took it, with the record's input."""
        fields = cast(dict[str, Any], json.loads(self.raw))
        fields.setdefault("input", self.input if self.input is not None else "null")
        return fields


class Outbox:
    """Reads and updates webhook outboxes; safe to share between threads."""

    def __init__(self, client: redis.Redis) -> None:
        gone = resources.files("common.store").joinpath("lua", "webhook_gone.lua").read_text()
        self._gone = client.register_script(gone)
        self.redis = client
        lua = resources.files("common.store").joinpath("lua")
        self._delivered = client.register_script(lua.joinpath("webhook_delivered.lua").read_text())
        self._failed = client.register_script(lua.joinpath("webhook_failed.lua").read_text())

    def due(self, now: float, limit: int = 100) -> list[str]:
        """Predictions whose next delivery attempt is due."""
        return cast(list[str], self.redis.zrangebyscore(keys.webhooks_due(), "-inf", now, start=0, num=limit))

    def drop_if_empty(self, prediction_id: str) -> bool:
        """Stops the prediction being due when its outbox is empty or gone (it expired with the
        record), so it is not asked for again forever; returns whether it was dropped."""
        found = self._gone(
            keys=[
                keys.webhook_outbox(prediction_id),
                keys.webhook_attempts(prediction_id),
                keys.webhooks_due(),
            ],
            args=[prediction_id],
        )
        return bool(found)

    def postpone(self, prediction_id: str, until: float) -> None:
        """Makes the next attempt wait until ``until`` (unless it is no longer due at all)."""
        self.redis.zadd(keys.webhooks_due(), {prediction_id: until}, xx=True)

    def lock(self, prediction_id: str) -> Lock | None:
        """The prediction's delivery lock, if no other task holds it."""
        lock = self.redis.lock(keys.webhook_lock(prediction_id), timeout=LOCK_SECONDS, blocking=False)
        return lock if lock.acquire() else None

    def renew(self, lock: Lock) -> bool:
        """Gives ``lock`` its full time again; False when it lapsed and is no longer ours."""
        try:
            return bool(lock.reacquire())
        except LockError:
            return False

    def unlock(self, lock: Lock) -> None:
        """Releases ``lock``, unless it lapsed (then it is someone else's, or no one's), or Redis
        cannot take the release now (then it lapses on its own)."""
        try:
            lock.release()
        except (LockError, redis.RedisError):
            pass

    def head(self, prediction_id: str) -> Snapshot | None:
        """The first snapshot waiting for delivery (with the record's input), or None."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.lindex(keys.webhook_outbox(prediction_id), 0)
        pipe.hget(keys.prediction(prediction_id), "input")
        raw, stored_input = pipe.execute()
        return None if raw is None else Snapshot(raw, stored_input)

    def delivered(self, prediction_id: str, lock: Lock, snapshot: Snapshot) -> int | None:
        """Drops ``snapshot``, the first; returns how many remain, or None if ``lock`` lapsed."""
        found = self._delivered(
            keys=[
                keys.webhook_outbox(prediction_id),
                keys.webhook_attempts(prediction_id),
                keys.webhooks_due(),
                keys.webhook_lock(prediction_id),
            ],
            args=[prediction_id, _token(lock), snapshot.raw],
        )
        return None if int(found) < 0 else int(found)

    def failed(self, prediction_id: str, lock: Lock, now: float) -> tuple[int, float] | None:
        """Records a failed attempt at the first snapshot; returns ``(attempts, first failure
        time)``, or None if ``lock`` lapsed."""
        found = self._failed(
            keys=[keys.webhook_attempts(prediction_id), keys.webhook_lock(prediction_id)],
            args=[_token(lock), repr(now), ATTEMPTS_TTL],
        )
        if not found:
            return None
        count, first = found
        return int(count), float(first)


def _token(lock: Lock) -> bytes:
    token = lock.local.token
    if token is None:
        raise LockError("the lock is not held")
    return cast(bytes, token)

"""The webhook outbox of each prediction, in Redis: snapshots to deliver in order, and when to try.

The store's scripts append a snapshot at every status change and mark the
prediction due; the delivering task takes the first snapshot, posts it, and
drops it once delivered (or given up on), or schedules its next attempt. The
same scripts append each attempt to the prediction's delivery log (the last
:data:`DELIVERIES_KEPT`, expiring with the record), which :meth:`Outbox.history` reads.

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

DELIVERIES_KEPT = 50
"""How many delivery attempts a prediction's delivery log keeps (the latest)."""

ERROR_CHARS = 500
"""The longest error an attempt records (a longer one is cut)."""


@dataclass(frozen=True)
class Attempt:
    """One POST of a snapshot, as the delivery log records it: when, which status it carried, the
    receiver's HTTP status code or the error instead, and how long it took."""

    at: float
    status: str
    status_code: int | None = None
    error: str | None = None
    duration_ms: int = 0

    @property
    def delivered(self) -> bool:
        """Whether the receiver took it (a 2xx)."""
        return self.status_code is not None and 200 <= self.status_code < 300

    def args(self) -> list[str | int]:
        """The script arguments describing it (``lua/webhook_log.lua``)."""
        code = "" if self.status_code is None else self.status_code
        error = (self.error or "")[:ERROR_CHARS]
        return [repr(self.at), self.status, code, error, self.duration_ms, DELIVERIES_KEPT]


@dataclass(frozen=True)
class History:
    """A prediction's delivery log: its attempts, oldest first (each as the script wrote it:
    ``attempt``, ``outcome``, ``at``, ``status``, ``duration_ms``, ``status_code`` or ``error``),
    how many snapshots still wait, and when the next attempt is due (None with none waiting)."""

    attempts: list[dict[str, Any]]
    pending: int
    next_attempt_at: float | None


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
        lua = resources.files("common.store").joinpath("lua")
        self._gone = client.register_script(lua.joinpath("webhook_gone.lua").read_text())
        self.redis = client
        log = lua.joinpath("webhook_log.lua").read_text()
        self._delivered = client.register_script(log + lua.joinpath("webhook_delivered.lua").read_text())
        self._failed = client.register_script(log + lua.joinpath("webhook_failed.lua").read_text())

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
        pipe.hget(keys.webhook_record(prediction_id), "input")
        raw, stored_input = pipe.execute()
        return None if raw is None else Snapshot(raw, stored_input)

    def delivered(
        self, prediction_id: str, lock: Lock, snapshot: Snapshot, attempt: Attempt, gave_up: bool = False
    ) -> int | None:
        """Drops ``snapshot``, the first, logging ``attempt`` (delivered, or given up on when
        ``gave_up``: its address was refused); returns how many remain, or None if ``lock`` lapsed."""
        found = self._delivered(
            keys=[
                keys.webhook_outbox(prediction_id),
                keys.webhook_attempts(prediction_id),
                keys.webhooks_due(),
                keys.webhook_lock(prediction_id),
                keys.webhook_record(prediction_id),
                keys.webhook_deliveries(prediction_id),
            ],
            args=[
                prediction_id,
                _token(lock),
                snapshot.raw,
                "given_up" if gave_up else "delivered",
                *attempt.args(),
            ],
        )
        return None if int(found) < 0 else int(found)

    def failed(
        self, prediction_id: str, lock: Lock, snapshot: Snapshot, attempt: Attempt, now: float, window: float
    ) -> tuple[int, bool] | None:
        """Counts and logs a failed ``attempt`` at ``snapshot``, the first, and gives it up (drops
        it) once the first failure is ``window`` seconds before ``now``; returns ``(failed
        attempts, given up)``, or None if ``lock`` lapsed."""
        found = self._failed(
            keys=[
                keys.webhook_attempts(prediction_id),
                keys.webhook_lock(prediction_id),
                keys.webhook_outbox(prediction_id),
                keys.webhooks_due(),
                keys.webhook_record(prediction_id),
                keys.webhook_deliveries(prediction_id),
            ],
            args=[
                _token(lock),
                repr(now),
                ATTEMPTS_TTL,
                prediction_id,
                snapshot.raw,
                window,
                *attempt.args(),
            ],
        )
        if not found:
            return None
        count, gave_up = found
        return int(count), bool(int(gave_up))

    def history(self, prediction_id: str) -> History:
        """The prediction's delivery log, its waiting snapshots and next attempt (one round trip)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.lrange(keys.webhook_deliveries(prediction_id), 0, -1)
        pipe.llen(keys.webhook_outbox(prediction_id))
        pipe.zscore(keys.webhooks_due(), prediction_id)
        entries, pending, due = pipe.execute()
        attempts = [_entry(raw) for raw in entries]
        return History(attempts, int(pending), float(due) if pending and due is not None else None)


def _entry(raw: str | bytes) -> dict[str, Any]:
    entry = cast(dict[str, Any], json.loads(raw))
    entry["at"] = float(entry["at"])
    return entry


def _token(lock: Lock) -> bytes:
    token = lock.local.token
    if token is None:
        raise LockError("the lock is not held")
    return cast(bytes, token)

"""The webhook outbox of each prediction, in Redis: snapshots to deliver in order, and when to try.

The store's scripts append a snapshot at every status change and mark the
prediction due; the delivering task takes the first snapshot, posts it, and
drops it once delivered (or given up on), or schedules its next attempt.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, cast

import redis

from common.store import keys

LOCK_SECONDS = 120
"""How long one delivering task may hold a prediction's outbox before another may take it over."""


class Outbox:
    """Reads and updates webhook outboxes; safe to share between threads."""

    def __init__(self, client: redis.Redis) -> None:
        gone = resources.files("common.store").joinpath("lua", "webhook_gone.lua").read_text()
        self._gone = client.register_script(gone)
        self.redis = client
        source = resources.files("common.store").joinpath("lua", "webhook_delivered.lua").read_text()
        self._delivered = client.register_script(source)

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

    def lock(self, prediction_id: str) -> redis.lock.Lock | None:
        """The prediction's delivery lock, if no other task holds it."""
        lock = self.redis.lock(keys.webhook_lock(prediction_id), timeout=LOCK_SECONDS, blocking=False)
        return lock if lock.acquire() else None

    def head(self, prediction_id: str) -> dict[str, Any] | None:
        """The first snapshot waiting for delivery (a record hash plus ``logs``), or None."""
        raw = cast(str | None, self.redis.lindex(keys.webhook_outbox(prediction_id), 0))
        return None if raw is None else cast(dict[str, Any], json.loads(raw))

    def delivered(self, prediction_id: str) -> int:
        """Drops the first snapshot; returns how many remain."""
        found = self._delivered(
            keys=[
                keys.webhook_outbox(prediction_id),
                keys.webhook_attempts(prediction_id),
                keys.webhooks_due(),
            ],
            args=[prediction_id],
        )
        return int(found)

    def failed(self, prediction_id: str, now: float) -> tuple[int, float]:
        """Records a failed attempt at the first snapshot; returns ``(attempts, first failure time)``."""
        pipe = self.redis.pipeline(transaction=True)
        attempts = keys.webhook_attempts(prediction_id)
        pipe.hincrby(attempts, "count", 1)
        pipe.hsetnx(attempts, "first", repr(now))
        pipe.hget(attempts, "first")
        pipe.expire(attempts, 7 * 24 * 3600)
        count, _, first, _ = pipe.execute()
        return int(count), float(first)

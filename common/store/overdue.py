"""What nobody is doing: predictions whose worker died, or that waited too long.

Recovery (``common.queue.recovery``) runs these queries in every process; the
scripts make each change happen exactly once however many processes race.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import cast

import redis

from common.config import Settings
from common.records import ModelRef
from common.store import keys
from common.store.scripts import Scripts

MessageBuilder = Callable[[str, ModelRef, str], str]
"""Builds the task message for ``(prediction id, model, queue)`` (see ``TaskMessages`` in the broker)."""


class Overdue:
    """Finds and mends overdue predictions; reached as ``PredictionStore.overdue``."""

    def __init__(self, client: redis.Redis, settings: Settings, scripts: Scripts) -> None:
        self.redis = client
        self.settings = settings
        self._run = scripts

    def release_lapsed(self, now: float, messages: MessageBuilder, limit: int = 100) -> list[str]:
        """Queues again the predictions whose worker died (their lease lapsed).

        Safe to run from many processes at once: each lapsed claim is released
        (and its task queued again) by exactly one caller.

        Returns:
            The ids this call released.
        """
        released = []
        for prediction_id in self._due_ids(keys.leases(), now, limit):
            found = self.redis.hmget(keys.prediction(prediction_id), ["queue", "model"])
            queue, model_json = cast(list[str | None], found)
            if queue is None or model_json is None:
                self.redis.zrem(keys.leases(), prediction_id)
                continue
            model = json.loads(model_json)
            ref = ModelRef(model["owner"], model["name"], int(model["version_number"]))
            message = messages(prediction_id, ref, queue)
            args = (int(self.settings.queue_deadline), self.settings.live_ttl, message)
            if self._run("release", prediction_id, *args, extra_keys=[keys.celery_queue(queue)]):
                released.append(prediction_id)
        return released

    def _due_ids(self, index: str, now: float, limit: int) -> list[str]:
        return cast(list[str], self.redis.zrangebyscore(index, "-inf", now, start=0, num=limit))

    def abandon_overdue(self, now: float, limit: int = 100) -> int:
        """Abandons unclaimed predictions past their queue deadline; returns how many."""
        overdue = self._due_ids(keys.pending(), now, limit)
        return sum(int(self._run("expire", prediction_id)) for prediction_id in overdue)

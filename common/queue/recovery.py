"""Recovery of what nobody is doing: dead workers' claims, lost messages, missed queue deadlines,
due webhooks.

Every API and worker process runs this periodically; the store's scripts make
sure each lapsed claim is queued again by exactly one of them.

A message can also be lost without any claim: a broker connection that drops
just as a worker takes a message (kombu moves it from the queue to its unacked
set in two steps), or the messages a worker had reserved when it lost Redis
(Celery drops them, and kombu restores them only after the visibility timeout).
So a prediction still waiting for a worker after ``ORPHAN_AGE`` seconds, whose
message is neither in its queue nor freshly taken by a worker, gets it queued
again. A second message for a prediction does no harm: claims are atomic.
"""

from __future__ import annotations

import json
import logging
import time
from typing import cast

from common.queue.broker import TaskMessages
from common.store import keys
from common.store.outbox import Outbox
from common.store.predictions import PredictionStore

logger = logging.getLogger(__name__)

INTERVAL = 1.0
"""Seconds between recovery rounds in each process."""

ORPHAN_AGE = 30.0
"""Seconds a waiting prediction's message may go unseen before it is queued again."""

ORPHAN_SCAN_INTERVAL = 10
"""Seconds between scans for lost messages (one process scans per interval)."""

ORPHAN_SCAN_LIMIT = 2000
"""A queue longer than this is not scanned this round: its predictions are clearly moving."""

WEBHOOK_TRIGGER_LEASE = 30.0
"""Seconds before a webhook delivery that was asked for (and has not reported back) is asked for again."""


class Recovery:
    """Queues again predictions whose worker died, abandons those no worker started in time,
    and asks for the webhook deliveries that are due."""

    def __init__(self, store: PredictionStore, messages: TaskMessages, outbox: Outbox) -> None:
        self.store = store
        self.messages = messages
        self.outbox = outbox

    def run_once(self) -> None:
        """One round: release and re-queue lapsed claims, then abandon overdue predictions."""
        now = time.time()
        for prediction_id in self.store.overdue.release_lapsed(now, self.messages.envelope):
            logger.warning("prediction %s lost its worker; queued it again", prediction_id)
        self.rescue_orphans(now)
        abandoned = self.store.overdue.abandon_overdue(now)
        if abandoned:
            logger.warning("abandoned %d prediction(s) that no worker started in time", abandoned)
        for prediction_id in self.outbox.due(now):
            self.outbox.postpone(prediction_id, now + WEBHOOK_TRIGGER_LEASE)
            self.messages.send_webhook_delivery(prediction_id)

    def rescue_orphans(self, now: float) -> int:
        """Queues again the waiting predictions whose message is nowhere; returns how many."""
        client = self.store.redis
        if not client.set(keys.orphan_scan_lock(), "1", nx=True, ex=ORPHAN_SCAN_INTERVAL):
            return 0
        waiting = self.store.overdue.waiting_since(now - ORPHAN_AGE)
        if not waiting:
            return 0
        seen = self._in_flight({queue for _, queue, _ in waiting}, now)
        rescued = 0
        for prediction_id, queue, model in waiting:
            if queue in seen and prediction_id not in seen[queue]:
                message = self.messages.envelope(prediction_id, model, queue)
                if self.store.overdue.requeue(prediction_id, queue, message):
                    logger.warning("prediction %s had lost its message; queued it again", prediction_id)
                    rescued += 1
        return rescued

    def _in_flight(self, queues: set[str], now: float) -> dict[str, set[str]]:
        """Per scannable queue, the prediction ids whose messages are queued or freshly taken."""
        client = self.store.redis
        tags = cast(list[str], client.zrangebyscore(keys.celery_unacked_index(), now - ORPHAN_AGE, "+inf"))
        unacked = cast(list[str | None], client.hmget(keys.celery_unacked(), tags)) if tags else []
        taken = {_task_id(raw) for raw in unacked}
        seen: dict[str, set[str]] = {}
        for queue in queues:
            if client.llen(keys.celery_queue(queue)) > ORPHAN_SCAN_LIMIT:
                continue
            queued = cast(list[str], client.lrange(keys.celery_queue(queue), 0, -1))
            seen[queue] = {i for i in taken | {_task_id(raw) for raw in queued} if i is not None}
        return seen


def _task_id(raw: str | None) -> str | None:
    """The task id (a prediction's id) of a queued or unacknowledged message."""
    if raw is None:
        return None
    try:
        found = json.loads(raw)
        message = found[0] if isinstance(found, list) else found
        return str(message["headers"]["id"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None

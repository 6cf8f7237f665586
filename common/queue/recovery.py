"""Recovery of what nobody is doing: dead workers' claims, lost messages, missed queue deadlines,
due webhooks.

Every API and worker process runs this periodically; the store's scripts make
sure each lapsed claim is queued again by exactly one of them.

A message can also be lost without any claim: a broker connection that drops
just as a worker takes a message (kombu moves it from the queue to its unacked
set in two steps), or the messages a worker had reserved when it lost Redis
(Celery drops them, and kombu restores them only after the visibility timeout).
So a queue whose predictions have waited ``ORPHAN_AGE`` seconds and that holds
fewer messages than waiting predictions gets the missing ones. A message too
many does no harm: claims are atomic, and one finding nothing to run is dropped.
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

RESCUE_LIMIT = 100
"""Task messages one scan queues on one queue, at most."""

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
        self.unpark()
        abandoned = self.store.overdue.abandon_overdue(now)
        if abandoned:
            logger.warning("abandoned %d prediction(s) that no worker started in time", abandoned)
        for prediction_id in self.outbox.due(now):
            self.outbox.postpone(prediction_id, now + WEBHOOK_TRIGGER_LEASE)
            self.messages.send_webhook_delivery(prediction_id)

    def rescue_orphans(self, now: float) -> int:
        """Queues task messages on the queues that hold fewer than they have waiting predictions.

        A message means "run the next one here" (``common.store.schedule``), so
        what counts is how many there are: those in the queue, those parked, and
        those a worker took less than ``ORPHAN_AGE`` ago (still on their way to a
        claim). A queue whose oldest prediction has waited less than that is
        moving and is left alone. A message too many does no harm: it finds
        nothing to run. Returns how many it queued.
        """
        client = self.store.redis
        if not client.set(keys.orphan_scan_lock(), "1", nx=True, ex=ORPHAN_SCAN_INTERVAL):
            return 0
        schedule = self.store.schedule
        rescued = 0
        for figures in schedule.figures(schedule.waiting_queues()):
            oldest = schedule.oldest(figures.queue)
            if oldest is None or oldest.age < ORPHAN_AGE:
                continue
            queue = figures.queue
            messages = client.llen(keys.celery_queue(queue)) + figures.parked + self._taken(queue, now)
            missing = min(figures.queued - messages, RESCUE_LIMIT)
            model = schedule.model_of(oldest.prediction_id)
            if missing <= 0 or model is None:
                continue
            client.lpush(
                keys.celery_queue(queue),
                *(self.messages.envelope(oldest.prediction_id, model, queue) for _ in range(missing)),
            )
            logger.warning(
                "queue %s had %d message(s) fewer than waiting predictions; queued them", queue, missing
            )
            rescued += missing
        return rescued

    def unpark(self) -> None:
        """Puts parked messages back where their owners may run more (a run's end does it too)."""
        schedule = self.store.schedule
        for queue in schedule.parked_queues():
            schedule.unpark(queue, self.store.settings.max_running_per_key)

    def _taken(self, queue: str, now: float) -> int:
        """How many of ``queue``'s messages workers took less than ``ORPHAN_AGE`` ago."""
        client = self.store.redis
        tags = cast(list[str], client.zrangebyscore(keys.celery_unacked_index(), now - ORPHAN_AGE, "+inf"))
        unacked = cast(list[str | None], client.hmget(keys.celery_unacked(), tags)) if tags else []
        return sum(1 for raw in unacked if _routing_key(raw) == queue)


def _routing_key(raw: str | None) -> str | None:
    """The queue an unacknowledged message came from (kombu records ``[message, exchange, routing key]``)."""
    if raw is None:
        return None
    try:
        found = json.loads(raw)
        return str(found[2])
    except (ValueError, KeyError, IndexError, TypeError):
        return None

"""Recovery of what nobody is doing: dead workers' claims, missed queue deadlines, due webhooks.

Every API and worker process runs this periodically; the store's scripts make
sure each lapsed claim is queued again by exactly one of them.
"""

from __future__ import annotations

import logging
import time

from common.broker import TaskMessages
from common.outbox import Outbox
from common.store import PredictionStore

logger = logging.getLogger(__name__)

INTERVAL = 1.0
"""Seconds between recovery rounds in each process."""

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
        for prediction_id in self.store.release_lapsed(now, self.messages.envelope):
            logger.warning("prediction %s lost its worker; queued it again", prediction_id)
        abandoned = self.store.abandon_overdue(now)
        if abandoned:
            logger.warning("abandoned %d prediction(s) that no worker started in time", abandoned)
        for prediction_id in self.outbox.due(now):
            self.outbox.postpone(prediction_id, now + WEBHOOK_TRIGGER_LEASE)
            self.messages.send_webhook_delivery(prediction_id)

"""Recovery of predictions nobody is running: dead workers' claims, and missed queue deadlines.

Every API and worker process runs this periodically; the store's scripts make
sure each lapsed claim is queued again by exactly one of them.
"""

from __future__ import annotations

import logging
import time

from common.broker import TaskMessages
from common.store import PredictionStore

logger = logging.getLogger(__name__)

INTERVAL = 1.0
"""Seconds between recovery rounds in each process."""


class Recovery:
    """Queues again predictions whose worker died, and abandons those no worker started in time."""

    def __init__(self, store: PredictionStore, messages: TaskMessages) -> None:
        self.store = store
        self.messages = messages

    def run_once(self) -> None:
        """One round: release and re-queue lapsed claims, then abandon overdue predictions."""
        now = time.time()
        for prediction_id in self.store.release_lapsed(now, self.messages.envelope):
            logger.warning("prediction %s lost its worker; queued it again", prediction_id)
        abandoned = self.store.abandon_overdue(now)
        if abandoned:
            logger.warning("abandoned %d prediction(s) that no worker started in time", abandoned)

"""Delivering webhooks: every status change of a prediction, POSTed in order, signed, retried.

One task at a time holds a prediction's outbox (a lock), takes its first
snapshot, renders it exactly as ``GET /v1/predictions/{id}`` would have then,
and POSTs it. A 2xx drops the snapshot and moves on to the next; anything
else schedules another attempt with exponential backoff, in Redis (so it
survives restarts), until ``INFERQ_WEBHOOK_RETRY_WINDOW`` has passed.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import httpx

from common.config import Settings
from common.records import Prediction
from common.store.outbox import Outbox
from common.webhooks import SIGNATURE_HEADER, WebhookRefused, check_url, signature
from common.wire import render

logger = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
"""How long one delivery attempt may take."""

MAX_BACKOFF = 60.0
"""Seconds between attempts, at most (they start at one and double)."""


def backoff(attempts: int) -> float:
    """Seconds to wait after ``attempts`` failed attempts: 1, 2, 4, ... up to a minute."""
    return float(min(MAX_BACKOFF, 2 ** (attempts - 1)))


class WebhookDeliverer:
    """Delivers predictions' pending webhooks for one worker process."""

    def __init__(self, outbox: Outbox, settings: Settings, http: httpx.Client | None = None) -> None:
        self.outbox = outbox
        self.settings = settings
        self.http = http or httpx.Client(timeout=TIMEOUT, follow_redirects=False)

    def deliver(self, prediction_id: str) -> None:
        """Delivers what is pending, in order, until done or an attempt fails (then it is scheduled)."""
        lock = self.outbox.lock(prediction_id)
        if lock is None:
            return  # another task is delivering them; it will see anything new
        try:
            while (snapshot := self.outbox.head(prediction_id)) is not None:
                if not self._attempt(prediction_id, snapshot):
                    return
            self.outbox.drop_if_empty(prediction_id)  # its outbox may have expired with the record
        finally:
            lock.release()

    def _attempt(self, prediction_id: str, snapshot: dict[str, Any]) -> bool:
        """Posts one snapshot; True when it is done with (delivered or given up on)."""
        prediction = Prediction.from_snapshot(snapshot)
        webhook = prediction.webhook or {}
        url = str(webhook.get("url", ""))
        try:
            check_url(url, allow_private=self.settings.webhook_allow_private)
        except WebhookRefused as e:
            logger.warning("webhook of %s refused, dropped: %s", prediction_id, e.message)
            self.outbox.delivered(prediction_id)
            return True
        body = json.dumps(render(prediction)).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "inferq-webhooks"}
        if webhook.get("secret"):
            headers[SIGNATURE_HEADER] = signature(str(webhook["secret"]), body)
        outcome = self._post(url, body, headers)
        logger.info("webhook of %s (%s) to %s: %s", prediction_id, prediction.status, url, outcome)
        if outcome == "delivered":
            self.outbox.delivered(prediction_id)
            return True
        now = time.time()
        attempts, first = self.outbox.failed(prediction_id, now)
        if now - first >= self.settings.webhook_retry_window:
            logger.warning("webhook of %s gave up after %d attempts", prediction_id, attempts)
            self.outbox.delivered(prediction_id)
            return True
        self.outbox.postpone(prediction_id, now + backoff(attempts))
        return False

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> str:
        try:
            response = self.http.post(url, content=body, headers=headers)
        except httpx.HTTPError as e:
            return f"failed ({type(e).__name__}: {e})"
        return "delivered" if response.is_success else f"failed (HTTP {response.status_code})"

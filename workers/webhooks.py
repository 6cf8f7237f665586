"""Delivering webhooks: every status change of a prediction, POSTed in order, signed, retried; and
the end of a batch that has one, the same way.

One task at a time holds a prediction's outbox (a lock), takes its first
snapshot, renders it exactly as ``GET /v1/predictions/{id}`` would have then,
and POSTs it. A 2xx drops the snapshot and moves on to the next; anything
else schedules another attempt with exponential backoff, in Redis (so it
survives restarts), until ``INFERQ_WEBHOOK_RETRY_WINDOW`` has passed.

An attempt ends by its deadline (``INFERQ_WEBHOOK_TIMEOUT``, however slowly
the receiver answers), and the lock is renewed before each one, so a second
task cannot take the outbox over and post beside a slow attempt; a task that
lost its lock all the same (paused for minutes) stops, and cannot drop a
snapshot it did not post. Connections go only to addresses just checked
(see :mod:`workers.webhook_network`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx
import redis
from redis.lock import Lock

from common.config import Settings
from common.records import Prediction
from common.store.batches import BatchStore
from common.store.outbox import Attempt, Outbox, Snapshot
from common.webhooks import SIGNATURE_HEADER, WebhookRefused, check_url, signature
from common.wire import render
from workers.webhook_network import webhook_client

logger = logging.getLogger(__name__)

MAX_BACKOFF = 60.0
"""Seconds between attempts, at most (they start at one and double)."""


def backoff(attempts: int) -> float:
    """Seconds to wait after ``attempts`` failed attempts: 1, 2, 4, ... up to a minute."""
    return float(min(MAX_BACKOFF, 2 ** (attempts - 1)))


@dataclass(frozen=True)
class Post:
    """What delivering one snapshot posts: the status it tells of, the webhook, and the body."""

    status: str
    webhook: dict[str, Any]
    body: bytes


class WebhookDeliverer:
    """Delivers predictions' (and ended batches') pending webhooks for one worker process."""

    def __init__(self, outbox: Outbox, settings: Settings, http: httpx.Client | None = None) -> None:
        self.outbox = outbox
        self.settings = settings
        self.http = http or webhook_client(settings)
        self.batches = BatchStore(outbox.redis, settings.retention)

    def deliver(self, prediction_id: str) -> None:
        """Delivers what is pending, in order, until done or an attempt fails (then it is scheduled).

        A Redis error (down, or refusing writes) ends the run with one log line: the prediction
        stays due, and recovery asks for its delivery again.
        """
        try:
            self._deliver(prediction_id)
        except redis.RedisError as e:
            logger.warning(
                "delivering the webhooks of %s stopped: %s (%s); recovery tries again",
                prediction_id,
                e,
                type(e).__name__,
            )

    def _deliver(self, prediction_id: str) -> None:
        lock = self.outbox.lock(prediction_id)
        if lock is None:
            return  # another task is delivering them; it will see anything new
        try:
            while (snapshot := self.outbox.head(prediction_id)) is not None:
                if not self.outbox.renew(lock) or not self._attempt(prediction_id, snapshot, lock):
                    return
            self.outbox.drop_if_empty(prediction_id)  # its outbox may have expired with the record
        finally:
            self.outbox.unlock(lock)

    def _attempt(self, prediction_id: str, snapshot: Snapshot, lock: Lock) -> bool:
        """Posts one snapshot; True when it is done with (delivered or given up on), False when
        it is scheduled again or the lock lapsed. The outbox's scripts log the attempt."""
        post = self._post_of(prediction_id, snapshot)
        if post is None:
            logger.warning("webhook of %s dropped: the batch is gone", prediction_id)
            gone = Attempt(time.time(), snapshot.fields.get("status", ""), error="the batch is gone")
            return self._drop(prediction_id, lock, snapshot, gone, gave_up=True)
        url = str(post.webhook.get("url", ""))
        try:
            check_url(url, allow_private=self.settings.webhook_allow_private)
        except WebhookRefused as e:
            logger.warning("webhook of %s refused, dropped: %s", prediction_id, e.message)
            refused = Attempt(time.time(), post.status, error=f"refused: {e.message}")
            return self._drop(prediction_id, lock, snapshot, refused, gave_up=True)
        headers = {"Content-Type": "application/json", "User-Agent": "inferq-webhooks"}
        if post.webhook.get("secret"):
            headers[SIGNATURE_HEADER] = signature(str(post.webhook["secret"]), post.body)
        attempt = self._post(url, post.body, headers, post.status)
        logger.info("webhook of %s (%s) to %s: %s", prediction_id, post.status, url, _summary(attempt))
        if attempt.delivered:
            return self._drop(prediction_id, lock, snapshot, attempt)
        now = time.time()
        window = self.settings.webhook_retry_window
        counted = self.outbox.failed(prediction_id, lock, snapshot, attempt, now, window)
        if counted is None:
            return self._lost(prediction_id)
        attempts, gave_up = counted
        if gave_up:
            logger.warning("webhook of %s gave up after %d attempts", prediction_id, attempts)
            return True
        self.outbox.postpone(prediction_id, now + backoff(attempts))
        return False

    def _post_of(self, subject_id: str, snapshot: Snapshot) -> Post | None:
        """What delivering ``snapshot`` posts: a prediction as ``GET /v1/predictions/{id}`` showed it
        then, or an ended batch as ``GET /v1/batches/{id}`` shows it (None once it expired)."""
        fields = snapshot.fields
        if "batch" in fields:
            batch = self.batches.get(subject_id)
            if batch is None:
                return None
            body = json.dumps(batch.to_object()).encode()
            return Post(str(fields["status"]), batch.fields.get("webhook") or {}, body)
        prediction = Prediction.from_snapshot(fields)
        body = json.dumps(render(prediction)).encode()
        return Post(prediction.status.value, prediction.webhook or {}, body)

    def _drop(
        self, prediction_id: str, lock: Lock, snapshot: Snapshot, attempt: Attempt, gave_up: bool = False
    ) -> bool:
        """Drops the snapshot done with; False if the lock lapsed meanwhile (it stays, for the holder)."""
        if self.outbox.delivered(prediction_id, lock, snapshot, attempt, gave_up) is None:
            return self._lost(prediction_id)
        return True

    def _lost(self, prediction_id: str) -> bool:
        logger.warning(
            "webhooks of %s: the outbox lock lapsed during an attempt; leaving them", prediction_id
        )
        return False

    def _post(self, url: str, body: bytes, headers: dict[str, str], status: str) -> Attempt:
        """Posts ``body`` (a snapshot of a ``status`` prediction); reads the status, never the
        receiver's body."""
        at, started = time.time(), time.monotonic()
        code: int | None = None
        error: str | None = None
        try:
            with self.http.stream("POST", url, content=body, headers=headers) as response:
                code = response.status_code
        except httpx.HTTPError as e:
            error = f"{type(e).__name__}: {e}"
        took = round((time.monotonic() - started) * 1000)
        return Attempt(at, status, status_code=code, error=error, duration_ms=took)


def _summary(attempt: Attempt) -> str:
    if attempt.delivered:
        return "delivered"
    return f"failed ({attempt.error})" if attempt.error else f"failed (HTTP {attempt.status_code})"

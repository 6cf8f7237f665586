"""What the prediction routes do, as plain functions of the services (the views only translate)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Collection
from typing import Any

import redis

from api.pagination import NEWER, OLDER, Cursor
from api.services import Services
from common.catalog import ModelVersion
from common.errors import Conflict, NotFound, RequestValidationError
from common.ids import new_prediction_id
from common.processes import logs
from common.records import TERMINAL_STATUSES, Prediction, Priority, Status
from common.store.notifier import Watcher
from common.store.outbox import History
from common.store.predictions import CancelOutcome, Idempotency
from common.webhooks import WebhookRefused, check_url
from common.wire import render

logger = logging.getLogger(__name__)

RETRY_PAUSE = 0.5
"""Seconds a wait pauses after Redis failed it, before it reads again (while its deadline allows)."""


def validate_input(version: ModelVersion, payload: dict[str, Any]) -> None:
    """Checks ``payload`` against the version's input schema.

    Raises:
        RequestValidationError: Listing every violation, at ``body.input.<path>`` (422).
    """
    problems = version.input_problems(payload)
    if problems:
        raise RequestValidationError(
            [{"loc": ["body", "input", *p.path], "msg": p.message, "type": p.kind} for p in problems]
        )


def build(
    owner: str,
    version: ModelVersion,
    payload: dict[str, Any],
    *,
    webhook: dict[str, Any] | None = None,
    stream: bool = False,
    priority: Priority = Priority.INTERACTIVE,
) -> Prediction:
    """A new pending prediction of ``version`` (not stored yet); this request's logs now name it.

    Its class is ``interactive`` unless the caller says otherwise: only a create
    nobody waits on (:func:`priority_of`) is less.
    """
    prediction = Prediction(
        id=new_prediction_id(),
        owner=owner,
        model=version.ref,
        queue=version.queue,
        input=payload,
        status=Status.PENDING,
        created_at=0.0,
        updated_at=0.0,
        webhook=webhook,
        stream=stream,
        priority=priority,
    )
    logs.prediction_id.set(prediction.id)
    return prediction


def priority_of(body: dict[str, Any], wait: float | None) -> Priority:
    """A create's class: ``interactive`` when somebody waits on it (``Prefer: wait``, or a
    stream), else ``default``; the body may ask for a lower one, never a higher.

    Raises:
        RequestValidationError: When the body asks for a class above its own (422).
    """
    own = Priority.INTERACTIVE if wait is not None or body["stream"] else Priority.DEFAULT
    asked = body.get("priority")
    if asked is None:
        return own
    if Priority(asked).ranks_above(own):
        raise RequestValidationError.single(
            ["body", "priority"],
            f"This create runs as {own} at most (interactive is for creates somebody waits on: "
            f"Prefer: wait, or a stream); it may ask for a lower class, not {asked}.",
            "priority_too_high",
        )
    return Priority(asked)


def submit(
    services: Services, prediction: Prediction, version: ModelVersion, idempotency: Idempotency | None = None
) -> Prediction:
    """Stores ``prediction`` and queues its task, atomically; opens its event log if it streams.

    Returns:
        ``prediction``; or, when ``idempotency`` names an earlier prediction of the same
        request, that one (nothing new was stored: compare the ids).
    """
    message = services.messages.envelope(prediction.id, prediction.model, prediction.queue)
    init = ""
    if prediction.stream:  # stored without the input, which the record keeps once (see api.streams)
        init = json.dumps({k: v for k, v in render(prediction).items() if k != "input"})
    depth = int(version.options.get("max_queue_depth", services.settings.max_queue_depth))
    return services.store.create(
        prediction, message, init, batched=version.batching, max_queue_depth=depth, idempotency=idempotency
    )


def create(
    services: Services,
    owner: str,
    version: ModelVersion,
    body: dict[str, Any],
    wait: float | None,
    idempotency: Idempotency | None = None,
) -> Prediction:
    """Creates a prediction, then waits up to ``wait`` seconds for it to end when asked.

    With an ``idempotency`` key already used by the same request, answers with
    (and waits on) that request's prediction instead. Once the prediction is
    stored, nothing fails the request: a failed webhook hand-off is left to
    recovery, and a wait that Redis fails answers the prediction as last known,
    so the client never retries into a second prediction. (A streamed create
    with ``Prefer: wait`` answers with its events instead; see the view.)
    """
    webhook = body.get("webhook")
    if webhook:
        check_webhook(services, webhook)
    priority = priority_of(body, wait)
    prediction = build(
        owner, version, body["input"], webhook=webhook, stream=body["stream"], priority=priority
    )
    with services.notifier.watch(prediction.id) as watcher:
        stored = submit(services, prediction, version, idempotency)
        if stored.id == prediction.id:
            if webhook:
                hand_off_webhook(services, prediction.id)
            return wait_despite_faults(services, watcher, prediction, wait) if wait else prediction
    logs.prediction_id.set(stored.id)
    if not wait or stored.status.is_terminal:
        return stored
    with services.notifier.watch(stored.id) as watcher:
        current = services.store.get(stored.id) or stored  # read again, now that news would wake us
        return wait_despite_faults(services, watcher, current, wait)


def check_webhook(services: Services, webhook: dict[str, Any]) -> None:
    """Refuses a webhook whose address may not be posted to (a private one, unless allowed).

    Raises:
        RequestValidationError: Naming ``body.webhook.url`` (422).
    """
    try:
        check_url(webhook["url"], allow_private=services.settings.webhook_allow_private)
    except WebhookRefused as e:
        raise RequestValidationError.single(["body", "webhook", "url"], e.message, "url_refused") from e


def hand_off_webhook(services: Services, subject_id: str) -> None:
    """Asks a worker to deliver the webhook of a prediction (or batch) now; if that fails, recovery
    sends it (the write that queued the webhook made it due)."""
    try:
        services.messages.send_webhook_delivery(subject_id)
    except Exception:  # accepted work: whatever failed here, the answer is the prediction
        logger.warning("webhook hand-off failed; recovery will deliver it", exc_info=True)


def wait_despite_faults(
    services: Services,
    watcher: Watcher,
    prediction: Prediction,
    timeout: float,
    stop: threading.Event | None = None,
) -> Prediction:
    """:func:`wait_for`, for a prediction already accepted: a Redis failure does not end the wait.

    It reads again after ``RETRY_PAUSE`` seconds, until the deadline; then the
    prediction is answered as last known, so its create never fails (and is
    never retried into a duplicate) for a fault after it was stored.
    """
    deadline = time.monotonic() + timeout
    pause = stop or threading.Event()
    while True:
        try:
            return wait_for(services, watcher, prediction, max(0.0, deadline - time.monotonic()), stop)
        except redis.RedisError as e:
            logger.warning("Redis failed a wait on an accepted prediction: %s", e)
        remaining = deadline - time.monotonic()
        if remaining <= 0 or pause.wait(min(RETRY_PAUSE, remaining)):
            return prediction


def wait_for(
    services: Services,
    watcher: Watcher,
    prediction: Prediction,
    timeout: float,
    stop: threading.Event | None = None,
) -> Prediction:
    """The prediction once terminal, or as it stands after ``timeout`` seconds (or once ``stop`` is set).

    Sleeps on the process's shared notifier (registered before ``prediction``
    was last read) until news says it ended, and takes the record from the
    news (reading it back only when the news was too big to carry it, or lost):
    no polling, and no Redis connection held while waiting. Whoever sets
    ``stop`` must also set ``watcher.event``.
    """
    deadline = time.monotonic() + timeout
    while not prediction.status.is_terminal:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not watcher.event.wait(remaining) or (stop is not None and stop.is_set()):
            return services.store.get(prediction.id) or prediction
        watcher.event.clear()
        note, data = watcher.note, watcher.data
        if note is None or note in TERMINAL_STATUSES:
            ended = services.store.from_news(prediction.id, data) if note and data else None
            prediction = ended or services.store.get(prediction.id) or prediction
    return prediction


def cancel(services: Services, owner: str, prediction_id: str) -> None:
    """Requests cancellation; once requested, every repeat succeeds too, whatever the status now.

    A client that retries its cancel (after a timeout, or a proxy's 502) must
    not get an error when its first request was taken: repeats answer what the
    first request answered. That holds even for a prediction whose record says
    cancellation was requested but that ended otherwise: the first request was
    accepted (``200``), and cancellation is asynchronous, so its outcome is read
    from the status, never from this answer. (The scripts make a requested
    cancellation win over a later ending, so that record does not arise today;
    the answer would stand if it did.)

    Raises:
        NotFound: For an unknown id or another owner's prediction.
        Conflict: When the prediction ended otherwise (succeeded, failed,
            abandoned) before any cancellation was requested (409).
    """
    outcome = services.store.request_cancel(prediction_id, owner)
    if outcome is CancelOutcome.MISSING:
        raise NotFound("Prediction not found")
    if outcome is CancelOutcome.TERMINAL:
        raise Conflict("The prediction has already finished and cannot be cancelled")


def page(
    services: Services, owner: str, cursor_text: str | None, page_size: int, statuses: Collection[Status]
) -> dict[str, Any]:
    """One page of the owner's predictions, newest first, with cursors both ways."""
    index = services.store.index
    cursor = Cursor.decode(cursor_text) if cursor_text else None
    if cursor is not None and cursor.direction == NEWER:
        items, more_newer = index.page(owner, limit=page_size, newer_than=cursor.boundary, statuses=statuses)
        more_older = bool(items) and index.page(owner, limit=0, older_than=items[-1].id, statuses=statuses)[1]
    else:
        older_than = cursor.boundary if cursor else None
        items, more_older = index.page(owner, limit=page_size, older_than=older_than, statuses=statuses)
        more_newer = (
            bool(items)
            and cursor is not None
            and index.page(owner, limit=0, newer_than=items[0].id, statuses=statuses)[1]
        )
    return {
        "items": items,
        "next_cursor": Cursor(OLDER, items[-1].id).encode() if more_older else None,
        "previous_cursor": Cursor(NEWER, items[0].id).encode() if more_newer else None,
    }


def webhook_deliveries(found: Services, owner: str, prediction_id: str) -> History:
    """The delivery log of one of ``owner``'s predictions.

    Raises:
        NotFound: The prediction does not exist or is another owner's.
    """
    found.store.get_owned(prediction_id, owner)
    return found.outbox.history(prediction_id)

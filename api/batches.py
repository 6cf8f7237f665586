"""What the batch routes do: create, validate (check every line, then queue its parts), read, list,
cancel.

A batch's parts are ordinary predictions in the ``batch`` class (see
``common.store.batches``); its files are written by ``api.batch_outputs`` once
every part has ended, its window passed, or it was cancelled.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from api import batch_lines, offload, predictions
from api.services import Services
from common.errors import InvalidRequest, NotFound
from common.ids import new_prediction_id
from common.records import Prediction, Priority, Status
from common.store.batches import Batch, BatchStatus, Part, new_batch_id
from common.store.predictions import CancelOutcome

logger = logging.getLogger(__name__)

WINDOWS = {"24h": 24 * 3600}
"""The completion windows a batch may ask for, in seconds (OpenAI offers ``24h``)."""


def window_seconds(services: Services, window: str) -> int:
    """The window's length; ``INFERQ_BATCH_WINDOW`` shortens every window (tests, small setups)."""
    seconds = WINDOWS[window]
    override = services.settings.batch_window
    return int(override) if override else seconds


def create(services: Services, owner: str, body: dict[str, Any], base_url: str) -> Batch:
    """Makes the batch, ``validating``: its lines are checked, and its parts queued, by
    :func:`validate` within a fifth of a second (``api.batch_outputs``), as OpenAI checks a
    batch's file after answering its create. So a create answers at once, however large the file.

    Raises:
        NotFound: No such input file for this key (404).
        InvalidRequest: The file is not a batch input (400).
        RequestValidationError: A bad webhook (422).
    """
    webhook = body.get("webhook")
    if webhook:
        predictions.check_webhook(services, webhook)
    input_file = services.files.get_owned(body["input_file_id"], owner)
    if input_file.purpose != "batch":
        raise InvalidRequest(
            f"File {input_file.id} has purpose {input_file.purpose!r}; a batch reads one of purpose 'batch'.",
            param="input_file_id",
        )
    now = int(time.time())
    batch = Batch(
        id=new_batch_id(),
        owner=owner,
        status=BatchStatus.VALIDATING,
        endpoint=body["endpoint"],
        input_file_id=input_file.id,
        times={"created_at": now, "expires_at": now + window_seconds(services, body["completion_window"])},
        fields={
            "completion_window": body["completion_window"],
            "metadata": body["metadata"],
            "output_expires_after": body["output_expires_after"],
            "base_url": base_url,
            **({"webhook": webhook} if webhook else {}),
        },
    )
    services.batches.add(batch, due=now)
    return batch


def validate(services: Services, batch: Batch) -> None:
    """Checks a ``validating`` batch's every line: a bad one (or a file gone, not UTF-8, or needing
    more predictions than the key may have pending) fails the batch, and nothing runs. Otherwise
    its plan is stored and its parts queued, and it is ``in_progress``.

    One API process runs it for a batch at a time (the finisher's lock); a batch cancelled
    meanwhile is not queued, or has what was queued cancelled.
    """
    try:
        text = services.files.content(services.files.get_owned(batch.input_file_id, batch.owner))
        lines = text.decode("utf-8")
    except NotFound:
        fail(services, batch, [batch_lines.problem("invalid_file", "The input file was deleted.", 0)])
        return
    except UnicodeDecodeError as e:
        fail(services, batch, [batch_lines.problem("invalid_file", f"The input file is not UTF-8: {e}", 0)])
        return
    endpoint = batch.endpoint
    planned, problems = offload.in_thread(len(lines), lambda: batch_lines.check(services, endpoint, lines))
    if problems:
        fail(services, batch, problems)
        return
    plans = batch_lines.parts(batch.endpoint, planned)
    most = services.settings.max_pending_per_key
    if most and len(plans) > most:
        message = (
            f"This batch needs {len(plans)} predictions; a key may have {most} unfinished "
            "(INFERQ_MAX_PENDING_PER_KEY). Split the file."
        )
        fail(services, batch, [batch_lines.problem("too_many_pending", message, 0)])
        return
    parts = [Part(new_prediction_id(), plan.lines) for plan in plans]
    if not services.batches.plan_parts(batch.id, parts, len(planned)):
        return  # cancelled meanwhile: nothing was queued
    try:
        for number, (plan, part) in enumerate(zip(plans, parts, strict=True)):
            prediction = Prediction(
                id=part.prediction_id,
                owner=batch.owner,
                model=plan.version.ref,
                queue=plan.version.queue,
                input=plan.payload,
                status=Status.PENDING,
                created_at=0.0,
                updated_at=0.0,
                priority=Priority.BATCH,
                batch_part=f"{batch.id} {number} {len(plan.lines)}",
            )
            message = services.messages.envelope(prediction.id, prediction.model, prediction.queue)
            # No lane hint: a part is a full forward pass already, and a request somebody waits on
            # must not gather parts into its pass (it would wait for all of them).
            services.store.create(prediction, message, max_queue_depth=0)
    except Exception:
        logger.exception("queuing the parts of batch %s failed; it fails", batch.id)
        fail_unqueued(services, batch, parts)
        raise
    if not services.batches.started(batch.id, batch.times["expires_at"] or time.time()):
        cancel_parts(services, batch, parts)  # cancelled while they were queued (perhaps ended since)


def fail(services: Services, batch: Batch, problems: list[dict[str, Any]]) -> None:
    """Fails a ``validating`` batch with ``problems`` (its ``errors.data``); nothing of it runs."""
    errors = {"object": "list", "data": problems}
    moved = services.batches.move(
        batch.id, [BatchStatus.VALIDATING], BatchStatus.FAILED, failed_at=int(time.time()), errors=errors
    )
    services.batches.closed(batch.id)
    if moved:
        tell_webhook(services, batch)


def tell_webhook(services: Services, batch: Batch) -> None:
    """Asks for an ended batch's webhook now, if it has one (its ending queued it; recovery sends
    it otherwise)."""
    if batch.fields.get("webhook"):
        predictions.hand_off_webhook(services, batch.id)


def fail_unqueued(services: Services, batch: Batch, parts: list[Part]) -> None:
    """A batch whose parts could not all be queued: those queued are cancelled, and it fails."""
    cancel_parts(services, batch, parts)
    fail(services, batch, [batch_lines.problem("queueing_failed", "The batch could not be queued.", 0)])


def cancel_parts(services: Services, batch: Batch, parts: list[Part]) -> None:
    """Cancels ``parts`` (those not made, or ended, are left as they are)."""
    for part in parts:
        try:
            services.store.request_cancel(part.prediction_id, batch.owner)
        except Exception:  # its queue deadline ends it otherwise
            logger.warning("could not cancel part %s of batch %s", part.prediction_id, batch.id)


def cancel(services: Services, owner: str, batch_id: str) -> Batch:
    """Asks every part not ended to stop (``cancelling``); the batch ends ``cancelled`` with what
    finished once they all have. Repeats, and cancels of ended batches, change nothing."""
    batch = services.batches.get_owned(batch_id, owner)
    moved = services.batches.move(
        batch.id,
        [BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS],
        BatchStatus.CANCELLING,
        cancelling_at=int(time.time()),
    )
    if moved:
        stop_parts(services, batch)
    return services.batches.get_owned(batch_id, owner)


def stop_parts(services: Services, batch: Batch) -> None:
    """Cancels the parts that have not ended (cancelling an ended one changes nothing); a part
    whose prediction was never made (the queuing was cut short) ends with no result."""
    ended = services.batches.results(batch.id)
    for number, part in services.batches.plan(batch.id).items():
        if ended.get(number):  # it ran, or was cancelled, already
            continue
        outcome = services.store.request_cancel(part.prediction_id, batch.owner)
        if outcome is CancelOutcome.MISSING and number not in ended:
            services.batches.never_queued(batch.id, number)
    services.batches.postpone(batch.id, time.time())


def get(services: Services, owner: str, batch_id: str) -> Batch:
    return services.batches.get_owned(batch_id, owner)


def page(services: Services, owner: str, after: str | None, limit: int) -> dict[str, Any]:
    """``GET /v1/batches``: newest first, after ``after``."""
    found, more = services.batches.page(owner, limit=limit, after=after)
    data = [render(batch) for batch in found]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": more,
    }


def render(batch: Batch) -> dict[str, Any]:
    """The OpenAI batch object."""
    return batch.to_object()

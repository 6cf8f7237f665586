"""Moving batches on: validating new ones (``batches.validate``), and finishing them with their
output and error files once every part ended, the window passed, or they were cancelled.

Every API process looks at the batches that are due (``BatchStore.due``) five
times a second; a lock makes one of them validate or finish each batch, and one that dies
midway leaves the lock to lapse and the batch due again. Output lines are what
each endpoint answers to its one request, in OpenAI's batch shape; they are in
part order, which clients must not rely on (they join on ``custom_id``).
"""

from __future__ import annotations

import base64
import logging
import time
from typing import Any

import numpy as np
import orjson

from api import batches, compat, embeddings, images
from api.batch_lines import EMBEDDINGS, IMAGES
from api.services import Services
from common.records import Prediction, Status
from common.store.batches import Batch, BatchStatus, Line, Part
from common.wire import render

logger = logging.getLogger(__name__)

FINISH_INTERVAL = 0.2
"""Seconds between looks at the due batches in each API process (one sorted-set read when none
is due): a batch's files follow its last part within a fifth of a second."""

LOCK_SECONDS = 120
"""How long one process holds a batch it finishes; past it, another may finish it again."""

VALIDATION_LOCK_SECONDS = 600
"""How long one process holds a batch it validates (checks its lines, queues its parts: seconds
even for 50,000 lines); past it, another may. One that finds the parts planned already (the
first died queuing them) fails the batch."""


class BatchFinisher:
    """Moves due batches on: validates new ones, stops the parts of expired ones, and writes the
    files of those whose parts all ended."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def run_once(self) -> None:
        now = time.time()
        for batch_id in self.services.batches.due(now):
            try:
                self.look_at(batch_id, now)
            except Exception:
                logger.exception("could not finish batch %s; it stays due", batch_id)
                self.services.batches.postpone(batch_id, now + 10)

    def look_at(self, batch_id: str, now: float) -> None:
        store = self.services.batches
        batch = store.get(batch_id)
        if batch is None or batch.status.is_final:
            store.closed(batch_id)
            return
        if batch.status is BatchStatus.VALIDATING:
            self.validate(batch, now)
            return
        if batch.ended < batch.parts:
            expires_at = batch.times.get("expires_at") or now
            if now >= expires_at and batch.status is BatchStatus.IN_PROGRESS:
                store.move(batch.id, [BatchStatus.IN_PROGRESS], BatchStatus.IN_PROGRESS, expiring=True)
                batches.stop_parts(self.services, batch)
            store.postpone(batch.id, now + 1 if now >= expires_at else expires_at)
            return
        if not store.lock(batch.id, LOCK_SECONDS):
            return
        store.postpone(batch.id, now + LOCK_SECONDS + 5)
        self.finish(batch)

    def validate(self, batch: Batch, now: float) -> None:
        """Checks a new batch's lines and queues its parts (``batches.validate``), in one process."""
        store = self.services.batches
        if not store.lock(batch.id, VALIDATION_LOCK_SECONDS, validating=True):
            return
        store.postpone(batch.id, now + VALIDATION_LOCK_SECONDS + 5)
        try:
            batch = store.get(batch.id) or batch  # as it is now that this process holds it
            if batch.status is not BatchStatus.VALIDATING:
                return
            if batch.parts:  # planned, then its validator died queuing them
                batches.fail_unqueued(self.services, batch, list(store.plan(batch.id).values()))
            else:
                batches.validate(self.services, batch)
        finally:
            store.unlock(batch.id, validating=True)

    def finish(self, batch: Batch) -> None:
        """Writes the batch's files and ends it (``completed``, ``expired`` or ``cancelled``)."""
        store = self.services.batches
        before = [BatchStatus.IN_PROGRESS, BatchStatus.CANCELLING, BatchStatus.FINALIZING]
        store.move(batch.id, before, BatchStatus.FINALIZING, finalizing_at=int(time.time()))
        if batch.status is BatchStatus.CANCELLING:
            final, stamp, why = BatchStatus.CANCELLED, "cancelled_at", "batch_cancelled"
        elif batch.fields.get("expiring"):
            final, stamp, why = BatchStatus.EXPIRED, "expired_at", "batch_expired"
        else:
            final, stamp, why = BatchStatus.COMPLETED, "completed_at", "cancelled"
        outputs, errors, usage = self.lines(batch, why)
        expiry = (batch.fields.get("output_expires_after") or {}).get("seconds")
        values: dict[str, Any] = {stamp: int(time.time()), "usage": usage}
        for name, found, suffix in (
            ("output_file_id", outputs, "output"),
            ("error_file_id", errors, "error"),
        ):
            if found:
                data = b"".join(
                    orjson.dumps(line, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n" for line in found
                )
                file = self.services.files.create(
                    batch.owner, f"{batch.id}_{suffix}.jsonl", "batch_output", data, expires_after=expiry
                )
                values[name] = file.id
        store.move(batch.id, [BatchStatus.FINALIZING], final, **values)  # its webhook queued too
        store.closed(batch.id)
        batches.tell_webhook(self.services, batch)
        logger.info("batch %s %s: %d lines out, %d errors", batch.id, final, len(outputs), len(errors))

    def lines(self, batch: Batch, why: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any]:
        """The output lines, the error lines and the usage."""
        plan = self.services.batches.plan(batch.id)
        results = self.services.batches.results(batch.id)
        outputs: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        tokens = {"input": 0, "output": 0}
        for number in sorted(plan):
            part, snapshot = plan[number], results.get(number)
            prediction = Prediction.from_snapshot(snapshot) if snapshot else None
            if prediction is None or prediction.status is Status.CANCELLED:
                message = "The request did not run: " + why.replace("_", " ") + "."
                failed = {"code": why, "message": message}
                errors += [_line(batch, line, None, None, failed) for line in part.lines]
                continue
            failure = compat.outcome_error(prediction)
            if failure is not None:
                body = {
                    "error": {
                        "message": failure.message,
                        "type": failure.error_type,
                        "param": None,
                        "code": failure.code,
                    }
                }
                errors += [
                    _line(batch, line, prediction.id, failure.status_code, body) for line in part.lines
                ]
                continue
            for line, body in self.answers(batch, part, prediction, tokens):
                outputs.append(_line(batch, line, prediction.id, 200, body))
        usage = None
        if batch.endpoint in (EMBEDDINGS, IMAGES):
            usage = {
                "input_tokens": tokens["input"],
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": tokens["output"],
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": tokens["input"] + tokens["output"],
            }
        return outputs, errors, usage

    def answers(
        self, batch: Batch, part: Part, prediction: Prediction, tokens: dict[str, int]
    ) -> list[tuple[Line, dict[str, Any]]]:
        """Each line of a succeeded part with what its endpoint answers to it alone."""
        if batch.endpoint == EMBEDDINGS:
            found, start = [], 0
            for line in part.lines:
                items, count = int(line.extra["items"]), int(line.extra["tokens"])
                vectors = prediction.output["data"][start : start + items]
                start += items
                tokens["input"] += count
                encoding = line.extra["encoding_format"]
                body = embeddings.answer(prediction.model.key, vectors, count, encoding, floats=_floats)
                found.append((line, body))
            return found
        (line,) = part.lines
        if batch.endpoint == IMAGES:
            version = self.services.catalog.version(prediction.model.key)
            request = images.ImageRequest(version, prediction.input, line.extra["response_format"], False)
            body = images.respond(self.services, request, prediction, batch.fields.get("base_url", "/"))
            tokens["input"] += body["usage"]["input_tokens"]
            tokens["output"] += body["usage"]["output_tokens"]
            return [(line, body)]
        return [(line, render(prediction))]


def _floats(vector: str) -> Any:
    """A vector's floats as an array (written by orjson, 8 times faster than ``json.dumps`` of a
    list, to the same text: float32 values widened to float64, in their shortest repr)."""
    return np.frombuffer(base64.b64decode(vector), "<f4").astype(np.float64)


def _line(batch: Batch, line: Line, request_id: str | None, status: int | None, body: Any) -> dict[str, Any]:
    """One line of an output or error file (``request_id``: the part's prediction)."""
    line_id = f"batch_req_{batch.id.removeprefix('batch_')}_{line.number}"
    if status is None:
        return {"id": line_id, "custom_id": line.custom_id, "response": None, "error": body}
    return {
        "id": line_id,
        "custom_id": line.custom_id,
        "response": {"status_code": status, "request_id": request_id, "body": body},
        "error": None,
    }

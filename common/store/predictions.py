"""The prediction store: every read and write of prediction records in Redis.

Each state change is one Lua script, so it is atomic and needs one round trip:
a worker claims a prediction with a compare-and-set and a lease, renews the
lease while it runs, and ends it with exactly one terminal write; a cancel of
an unclaimed prediction ends it at once. Every ending is published, with the
ended record when it is small, on :func:`common.store.keys.updates_channel` so
waiters wake without polling (and need not read it back); starting is
published on :func:`common.store.keys.progress_channel`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

import redis

from common.config import Settings
from common.connections.masters import ReplicasBehind
from common.errors import (
    IdempotencyKeyExpired,
    IdempotencyKeyReused,
    InputTooLarge,
    NotFound,
    QueueFull,
    TooManyPending,
)
from common.records import Prediction, PredictionError, Status
from common.store import keys
from common.store.events import EventLog
from common.store.lanes import Hint, Lanes
from common.store.listing import OwnerIndex
from common.store.overdue import Overdue
from common.store.schedule import Schedule
from common.store.scripts import Scripts

logger = logging.getLogger(__name__)

IDEMPOTENCY_TTL = 24 * 3600
"""Seconds an ``Idempotency-Key`` keeps naming the prediction it created (as Stripe keeps them)."""


@dataclass(frozen=True)
class Idempotency:
    """A create's ``Idempotency-Key`` (scoped to the prediction's owner) and its request's fingerprint."""

    key: str
    fingerprint: str


class ClaimOutcome(StrEnum):
    """What :meth:`PredictionStore.claim` found."""

    CLAIMED = "claimed"
    """This worker now runs the prediction."""
    MISSING = "missing"
    """The record expired or never existed."""
    TERMINAL = "terminal"
    """It already ended (a redelivered copy of its message)."""
    BUSY = "busy"
    """Another live worker holds it."""
    CANCELLED = "cancelled"
    """Cancellation was requested before it ran; it is now cancelled."""
    ABANDONED = "abandoned"
    """Its queue deadline passed, or its workers died too often; it is now abandoned."""
    HELD = "held"
    """Its owner (or, for the next in line, every waiting owner) runs ``INFERQ_MAX_RUNNING_PER_KEY``
    predictions already; it waits."""


class CancelOutcome(StrEnum):
    """What :meth:`PredictionStore.request_cancel` did."""

    MISSING = "missing"
    TERMINAL = "terminal"
    """It ended otherwise (succeeded, failed, abandoned) with no cancellation requested."""
    CANCELLED = "cancelled"
    """It was not running, and is now cancelled."""
    REQUESTED = "requested"
    """It is running; its worker was told to stop."""
    REPEATED = "repeated"
    """It has ended, and its cancellation had been requested: a repeat of a request already taken."""


@dataclass(frozen=True)
class Ending:
    """How a claimed prediction ends: what :meth:`PredictionStore.finish_all` writes."""

    prediction_id: str
    token: str
    status: Status
    output: Any = None
    error: PredictionError | None = None
    metrics: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    """The result of a claim attempt, with the record when it was claimed."""

    outcome: ClaimOutcome
    prediction: Prediction | None = None


class PredictionStore:
    """Reads and writes prediction records; safe to share between threads and greenlets."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.redis = client
        self.settings = settings
        self._run = Scripts(client, settings)
        self._live_ttl = settings.live_ttl
        self.index = OwnerIndex(client)
        """Each owner's predictions, newest first."""
        self.events = EventLog(client, settings, self._run)
        """The predictions' event logs (which the scripts also write: init, restart, done, error)."""
        self.overdue = Overdue(client, settings, self._run)
        """What nobody is doing: lapsed leases, lost messages, missed queue deadlines."""
        self.lanes = Lanes(client)
        """Hints of queued predictions of batched versions, for gathering workers."""
        self.schedule = Schedule(client, self._run)
        """Which waiting prediction runs next, and the queues' figures."""

    # -- the API side -----------------------------------------------------------------

    def create(
        self,
        prediction: Prediction,
        message: str,
        init_event: str = "",
        *,
        batched: bool = False,
        max_queue_depth: int = 0,
        idempotency: Idempotency | None = None,
    ) -> Prediction:
        """Stores a new pending prediction, indexes it for its owner and queues ``message``, atomically.

        Args:
            prediction: The new record.
            message: Its task message (``common.queue.broker.TaskMessages.envelope``).
            init_event: For a streamed prediction, the data (JSON) of the ``init`` event
                that opens its event log.
            batched: Its version gathers predictions into batches: leave a hint in its lane.
            max_queue_depth: Refuse when the queue already holds this many tasks (0: never).
            idempotency: The request's key: in the same step, it is made to name this
                prediction for ``IDEMPOTENCY_TTL`` seconds, unless it already names another.

        Returns:
            The record with ``created_at``/``updated_at`` set from the Redis clock; or, when
            ``idempotency`` already names an earlier prediction of the same request, that
            prediction as it stands (and nothing was stored).

        Raises:
            InputTooLarge: When the input, as stored, exceeds ``INFERQ_MAX_INPUT_BYTES``; nothing was stored.
            QueueFull: When the queue holds ``max_queue_depth`` tasks; nothing was stored.
            TooManyPending: When the owner has ``INFERQ_MAX_PENDING_PER_KEY`` unfinished
                predictions; nothing was stored.
            IdempotencyKeyReused: The key names a prediction of a different request (422).
            IdempotencyKeyExpired: The key names a prediction that no longer exists (410).
        """
        fields = prediction.to_hash()
        if len(fields["input"]) > self.settings.max_input_bytes:
            raise InputTooLarge(
                f"The input is {len(fields['input'])} bytes as JSON; at most "
                f"{self.settings.max_input_bytes} are accepted (INFERQ_MAX_INPUT_BYTES).",
                param="input",
            )
        for name in ("created_at", "updated_at"):
            fields.pop(name)
        flat = [item for pair in fields.items() for item in pair]
        mapping = f"{prediction.id} {idempotency.fingerprint}" if idempotency else ""
        try:
            created = self._run(
                "create",
                prediction.id,
                int(self.settings.queue_deadline),
                self._live_ttl,
                message,
                init_event,
                max_queue_depth,
                keys.lanes_channel(),
                mapping,
                IDEMPOTENCY_TTL,
                self.settings.max_pending_per_key,
                self.settings.weight_of(prediction.owner),
                *flat,
                extra_keys=[
                    keys.owner_predictions(prediction.owner),
                    keys.celery_queue(prediction.queue),
                    keys.prediction_counts(),
                    *([keys.idempotency_key(prediction.owner, idempotency.key)] if idempotency else []),
                    *([keys.batch_lane(prediction.model.key)] if batched else []),
                ],
            )
        except ReplicasBehind:
            if idempotency is None:  # with a key, the client's retry finds this one instead
                self._withdraw(prediction.id)
            raise
        if created == "full":
            raise QueueFull(f"The queue of {prediction.model.key} is full; retry shortly", retry_after=5)
        if created == "busy":
            raise TooManyPending(
                f"This key has {self.settings.max_pending_per_key} predictions that have not ended "
                "(INFERQ_MAX_PENDING_PER_KEY); retry once some have",
                retry_after=5,
            )
        if isinstance(created, list):
            assert idempotency is not None  # only a keyed create finds an earlier prediction
            return self._earlier(prediction.owner, idempotency, created[1])
        prediction.created_at = prediction.updated_at = float(created)
        return prediction

    def _withdraw(self, prediction_id: str) -> None:
        """Takes back a create whose ``WAIT`` fell short (``withdraw.lua``): it is answered ``503``,
        and the client's retry makes a new prediction, so this one must not run too."""
        try:
            self._run("withdraw", prediction_id)
        except redis.RedisError as e:
            logger.warning("could not take back %s, answered 503 (%s): it may run", prediction_id, e)

    def _earlier(self, owner: str, idempotency: Idempotency, mapping: str) -> Prediction:
        """The prediction that ``mapping`` (``<id> <fingerprint>``) names, if made by the same request."""
        prediction_id, _, fingerprint = mapping.partition(" ")
        if fingerprint != idempotency.fingerprint:
            raise IdempotencyKeyReused(prediction_id)
        earlier = self.get(prediction_id)
        if earlier is None or earlier.owner != owner:
            raise IdempotencyKeyExpired(prediction_id)
        return earlier

    def prediction_counts(self) -> dict[str, int]:
        """How many predictions each model (``owner/name``) was asked for, ever."""
        counts = cast(dict[str, str], self.redis.hgetall(keys.prediction_counts()))
        return {model: int(count) for model, count in counts.items()}

    def get(self, prediction_id: str) -> Prediction | None:
        """The record, with its logs, or None when it does not exist (or expired)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys.prediction(prediction_id))
        pipe.get(keys.prediction_logs(prediction_id))
        data, logs = pipe.execute()
        if not data:
            return None
        return Prediction.from_hash(data, logs or "")

    @staticmethod
    def from_news(prediction_id: str, data: str) -> Prediction | None:
        """The ended record that the news of its ending carried (see ``keys.updates_channel``),
        or None when ``data`` is not such a record of ``prediction_id``."""
        try:
            prediction = Prediction.from_snapshot(json.loads(data))
        except (ValueError, TypeError, AttributeError):  # RecordError is a ValueError
            return None
        return prediction if prediction.id == prediction_id and prediction.status.is_terminal else None

    def get_owned(self, prediction_id: str, owner: str) -> Prediction:
        """The record if it exists and belongs to ``owner``.

        Raises:
            NotFound: Otherwise; another owner's prediction is indistinguishable from none.
        """
        prediction = self.get(prediction_id)
        if prediction is None or prediction.owner != owner:
            raise NotFound("Prediction not found")
        return prediction

    def request_cancel(self, prediction_id: str, owner: str) -> CancelOutcome:
        """Records that ``owner`` wants the prediction stopped (idempotent).

        An unclaimed prediction is cancelled on the spot, whether or not any worker
        is up; a running one is flagged (the flag is the source of truth) and its
        worker is told on the cancel channel. Once the flag is recorded, every
        repeat is answered as the first request was, whatever the status now.
        """
        return CancelOutcome(self._run("cancel", prediction_id, owner))

    # -- the worker side --------------------------------------------------------------

    def claim_next(self, hint: str, queue: str, token: str, *, loaded: Collection[str]) -> Claim:
        """Atomically takes the prediction that should run next on ``queue``, under a lease.

        The scheduler picks it (``common.store.schedule``): the highest class with
        work, in it the key whose turn it is, and that key's oldest; ``hint``, the
        prediction the task message named, is claimed itself only when nothing is
        in line (see ``lua/next.lua``). ``HELD``: every waiting key runs as many as
        ``INFERQ_MAX_RUNNING_PER_KEY`` allows; park the message (:meth:`park`).

        Args:
            hint: The prediction the task message named.
            queue: The queue the message came from.
            token: Unique to this attempt; every later write must present it.
            loaded: The model versions (``owner/name:N``) this worker has loaded: one of
                them goes straight to ``started``.
        """
        limit = self.settings.max_running_per_key
        return self._claimed(
            self._run("next", hint, *self._claim_args(token, " ".join(loaded)), queue, limit)
        )

    def claim(self, prediction_id: str, token: str, *, ready: bool) -> Claim:
        """Atomically takes this very prediction for this worker, under a lease.

        Args:
            prediction_id: The prediction to run.
            token: Unique to this attempt; every later write must present it.
            ready: The model is already loaded, so the prediction goes straight to ``started``.
        """
        args = (*self._claim_args(token, "1" if ready else "0"), self.settings.max_running_per_key)
        return self._claimed(self._run("claim", prediction_id, *args))

    @staticmethod
    def _claimed(result: list[Any]) -> Claim:
        outcome = ClaimOutcome(result[0])
        if outcome is not ClaimOutcome.CLAIMED:
            return Claim(outcome)
        fields = dict(zip(result[1::2], result[2::2], strict=True))
        return Claim(outcome, Prediction.from_hash(fields))

    def park(self, hint: str, queue: str, message: str) -> bool:
        """Sets ``message`` aside after a ``HELD`` claim, unless something became runnable
        meanwhile (then claim again); it goes back on ``queue`` when a run ends."""
        return bool(self._run("park", hint, queue, message, self.settings.max_running_per_key))

    def claim_hinted(self, hints: list[Hint], queue: str) -> list[tuple[Prediction, str]]:
        """Claims the hinted predictions that are still free (as ``started``: the model is loaded),
        and removes their task messages from ``queue`` so no worker picks them up for nothing, in
        one round trip (each claim removes its own message, ``lua/claim.lua``).

        Returns:
            ``(record, token)`` for each prediction claimed.
        """
        tokens = [uuid.uuid4().hex for _ in hints]
        limit = self.settings.max_running_per_key
        results = self._run.many(
            [
                ("claim", hint.prediction_id, (*self._claim_args(token, "1"), limit, hint.message))
                for hint, token in zip(hints, tokens, strict=True)
            ],
            extra_keys=[keys.celery_queue(queue)],
        )
        claimed = []
        for token, result in zip(tokens, results, strict=True):
            if result[0] == ClaimOutcome.CLAIMED.value:
                fields = dict(zip(result[1::2], result[2::2], strict=True))
                claimed.append((Prediction.from_hash(fields), token))
        return claimed

    def _claim_args(self, token: str, ready: str) -> tuple[Any, ...]:
        return (
            token,
            self.settings.lease_ttl,
            self.settings.max_attempts,
            ready,
            self._live_ttl,
        )

    def mark_started(self, prediction_id: str, token: str) -> bool:
        """Moves a claimed prediction from ``starting`` to ``started`` (its model is loaded)."""
        return bool(self._run("started", prediction_id, token))

    def renew(self, prediction_id: str, token: str) -> tuple[bool, bool]:
        """Extends this worker's lease.

        Returns:
            ``(still held, cancellation requested)``. Not held means another worker
            took the prediction over (or it ended): this worker must stop and discard.
        """
        held, cancel = self._run("renew", prediction_id, token, self.settings.lease_ttl)
        return bool(held), bool(cancel)

    def finish(
        self,
        prediction_id: str,
        token: str,
        status: Status,
        *,
        output: Any = None,
        error: PredictionError | None = None,
        metrics: dict[str, Any] | None = None,
        timings: dict[str, float] | None = None,
    ) -> bool:
        """Ends a claimed prediction. Only the claim holder can, and only once.

        Returns:
            Whether this call ended it (False: already terminal, or the claim was lost).

        Raises:
            ValueError: When ``status`` is not terminal.
        """
        ending = Ending(prediction_id, token, status, output, error, metrics, timings or {})
        return self.finish_all([ending])[0]

    def finish_all(self, endings: Sequence[Ending]) -> list[bool]:
        """Ends several claimed predictions (a batch) in one round trip; see :meth:`finish`."""
        calls = []
        for ending in endings:
            if not ending.status.is_terminal:
                raise ValueError(f"finish needs a terminal status, not {ending.status}")
            flat = [str(item) for pair in ending.timings.items() for item in (pair[0], repr(pair[1]))]
            error = json.dumps(ending.error.to_dict()) if ending.error else ""
            output, metrics = json.dumps(ending.output), json.dumps(ending.metrics)
            calls.append(
                (
                    "finish",
                    ending.prediction_id,
                    (ending.token, ending.status.value, output, error, metrics, *flat),
                )
            )
        return [bool(ended) for ended in self._run.many(calls)]

    def append_log(self, prediction_id: str, text: str) -> None:
        """Appends to the prediction's logs, which expire with the record."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.append(keys.prediction_logs(prediction_id), text)
        pipe.expire(keys.prediction_logs(prediction_id), self._live_ttl)
        pipe.execute()

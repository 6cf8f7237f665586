"""Every Redis key and channel inferq uses, built here and nowhere else.

One small function per key keeps the formats in one place (and under one
unit test), so two modules can never disagree about a key's shape.
"""

from __future__ import annotations

PREFIX = "inferq"
"""Namespace of every key inferq owns; nothing else in the Redis database is touched."""


def prediction(prediction_id: str) -> str:
    """Hash holding one prediction record."""
    return f"{PREFIX}:prediction:{prediction_id}"


def prediction_logs(prediction_id: str) -> str:
    """String the adapter's log lines are appended to."""
    return f"{PREFIX}:prediction:{prediction_id}:logs"


def prediction_events(prediction_id: str) -> str:
    """Stream holding a prediction's events (init, output chunks, done/error)."""
    return f"{PREFIX}:prediction:{prediction_id}:events"


def webhook_outbox(prediction_id: str) -> str:
    """List of record snapshots, one per status change, waiting to be POSTed to the prediction's webhook
    (or, for a batch's id, the batch's: one when it ends)."""
    return f"{PREFIX}:prediction:{prediction_id}:webhook"


def webhook_record(subject_id: str) -> str:
    """The record whose webhook an outbox delivers: a batch's (``batch_…``) or a prediction's."""
    return batch(subject_id) if subject_id.startswith("batch_") else prediction(subject_id)


def webhook_attempts(prediction_id: str) -> str:
    """Hash of the failed delivery attempts of the outbox's first snapshot (``count``, ``first``)."""
    return f"{PREFIX}:prediction:{prediction_id}:webhook-attempts"


def webhook_deliveries(prediction_id: str) -> str:
    """List of the prediction's last webhook delivery attempts (JSON, oldest first), written with
    the outbox change each led to, and expiring with the record."""
    return f"{PREFIX}:prediction:{prediction_id}:webhook-deliveries"


def webhook_lock(prediction_id: str) -> str:
    """Lock held by the one task delivering a prediction's webhooks (so they go out in order)."""
    return f"{PREFIX}:prediction:{prediction_id}:webhook-lock"


def webhooks_due() -> str:
    """Sorted set of predictions with webhooks to deliver, scored by when to try next (unix seconds)."""
    return f"{PREFIX}:webhooks-due"


def owner_predictions(owner: str) -> str:
    """Sorted set of an owner's prediction ids, all scored 0 and ordered by their time-ordered ids."""
    return f"{PREFIX}:owner:{owner}:predictions"


def idempotency_key(owner: str, key: str) -> str:
    """String ``<prediction id> <request fingerprint>``: the prediction an owner's ``Idempotency-Key``
    created (set by the create script, with the prediction, so one key makes one prediction)."""
    return f"{PREFIX}:owner:{owner}:idempotency:{key}"


def file(file_id: str) -> str:
    """Hash of one uploaded file's metadata (owner, size, times, name, purpose); its bytes are in
    the file storage under the file's id."""
    return f"{PREFIX}:file:{file_id}"


def owner_files(owner: str) -> str:
    """Sorted set of an owner's file ids, all scored 0 and ordered by their time-ordered ids."""
    return f"{PREFIX}:owner:{owner}:files"


def files_expiry() -> str:
    """Sorted set of the ids of files that expire, scored by when (unix seconds): the sweep's list."""
    return f"{PREFIX}:files-expiry"


def prediction_counts() -> str:
    """Hash of ``owner/name`` to how many predictions the model was asked for."""
    return f"{PREFIX}:prediction-counts"


def unfinished_counts() -> str:
    """Hash of owner to how many of its predictions have not ended (the create script checks
    ``INFERQ_MAX_PENDING_PER_KEY`` against it; the terminal write takes one off)."""
    return f"{PREFIX}:unfinished"


def finished_counts() -> str:
    """Hash of ``<owner/name> <status>`` to how many predictions of the model ended so."""
    return f"{PREFIX}:stats:finished"


def duration_histogram(name: str) -> str:
    """Hash of a duration histogram (``wait`` or ``run``): ``<owner/name> <bucket bound>`` to counts,
    plus ``<owner/name> sum`` and ``<owner/name> count``."""
    return f"{PREFIX}:stats:{name}-seconds"


def pending() -> str:
    """Sorted set of unclaimed prediction ids, scored by their queue deadline (unix seconds)."""
    return f"{PREFIX}:pending"


def leases() -> str:
    """Sorted set of claimed prediction ids, scored by when the claim lapses (unix seconds)."""
    return f"{PREFIX}:leases"


def updates_channel() -> str:
    """Pub/sub channel carrying what waiters act on: ``<id> <status>[ <record>]`` when a prediction
    ends (the record as JSON when it is small), ``<id> event`` when its event log grows."""
    return f"{PREFIX}:updates"


def progress_channel() -> str:
    """Pub/sub channel carrying ``<id> starting`` and ``<id> started`` as a prediction starts.

    Kept off :func:`updates_channel` so that waiting API processes are woken
    once per prediction, when it ends; it is there for observers (the
    benchmarks, the tests, a dashboard).
    """
    return f"{PREFIX}:progress"


def cancel_channel() -> str:
    """Pub/sub channel carrying ``<id>`` whenever cancellation of a running prediction is requested."""
    return f"{PREFIX}:cancel"


def batch_lane(model_version: str) -> str:
    """List of hints (``<id>\n<task message>``) of queued predictions of a batched ``owner/name:N``."""
    return f"{PREFIX}:lane:{model_version}"


def lanes_channel() -> str:
    """Pub/sub channel carrying a lane's name (:func:`batch_lane`) whenever a hint is pushed onto it."""
    return f"{PREFIX}:lanes"


def schedule() -> str:
    """Hash of the scheduler's figures (``common.store.schedule``): ``queued <queue> <class>`` and
    ``running <queue> <class>`` counts, ``owner <owner>`` and ``owner <owner> <queue> <class>``
    running counts, ``clock <queue> <class>`` (the class's turn order has reached this pass) and
    ``weight <owner>`` (a key's share, when not 1)."""
    return f"{PREFIX}:schedule"


def schedule_turns(queue: str, priority: str) -> str:
    """Sorted set of the owners with predictions waiting on ``queue`` in class ``priority``,
    scored by their pass: the lowest has the next turn.

    The scripts build this key and the two below in Lua too (``lua/schedule.lua``, from the
    prefix :func:`schedule`); ``tests/unit/test_keys.py`` holds both alike.
    """
    return f"{schedule()}:{queue}:{priority}"


def schedule_waiting(queue: str, priority: str, owner: str) -> str:
    """Sorted set of one owner's prediction ids waiting on ``queue`` in class ``priority``, scored
    by creation time (unix seconds): the owner's next is the lowest."""
    return f"{schedule_turns(queue, priority)}:{owner}"


def schedule_parked(queue: str) -> str:
    """List of task messages of ``queue`` set aside while its waiting predictions' owners all run
    as many as ``INFERQ_MAX_RUNNING_PER_KEY`` allows; one goes back on the queue as each run ends."""
    return f"{schedule()}:{queue}:parked"


def schedule_parked_queues() -> str:
    """Set of the queues that have parked messages (:func:`schedule_parked`)."""
    return f"{schedule()}:parked-queues"


def batch(batch_id: str) -> str:
    """Hash of one batch (``common.store.batches``): its fields, and the counts the store's scripts
    keep as its predictions end (``completed``, ``failed`` lines; ``ended`` parts).

    The scripts build this key and :func:`batch_results` in Lua too (``lua/ending.lua``, from the
    prefix :func:`batch_prefix`); ``tests/unit/test_keys.py`` holds both alike.
    """
    return f"{batch_prefix()}{batch_id}"


def batch_prefix() -> str:
    """What every batch's keys begin with."""
    return f"{PREFIX}:batch:"


def batch_results(batch_id: str) -> str:
    """Hash of a batch's part number to how its prediction ended (``{"status", "output", "error"}``
    as JSON), written by the prediction's terminal write itself, so each part ends there once."""
    return f"{batch(batch_id)}:results"


def batch_lock(batch_id: str) -> str:
    """String held (with an expiry) by the one API process writing a batch's files."""
    return f"{batch(batch_id)}:lock"


def batch_validation_lock(batch_id: str) -> str:
    """String held (with an expiry) by the one API process checking a batch's lines and queuing
    its parts."""
    return f"{batch(batch_id)}:validation-lock"


def batch_plan(batch_id: str) -> str:
    """Hash of a batch's part number to the part's plan (its prediction and its lines, as JSON)."""
    return f"{batch(batch_id)}:plan"


def batch_line_counts() -> str:
    """Hash of ``completed`` and ``failed`` to how many batch lines ended so, ever (for ``/metrics``)."""
    return f"{PREFIX}:stats:batch-lines"


def owner_batches(owner: str) -> str:
    """Sorted set of an owner's batch ids, all scored 0 and ordered by their time-ordered ids."""
    return f"{PREFIX}:owner:{owner}:batches"


def batches_open() -> str:
    """Sorted set of the batches not ended yet, scored by when they next need looking at (unix
    seconds): their window's end, or now once their last part ended (the scripts set that)."""
    return f"{PREFIX}:batches-open"


def rate_limit_prefix() -> str:
    """Prefix of the rate limiter's counters (one per API key and window, kept by flask-limiter)."""
    return f"{PREFIX}:ratelimit"


def worker_heartbeats(queue: str) -> str:
    """Sorted set of live workers consuming ``queue``, scored by when their heartbeat lapses."""
    return f"{PREFIX}:workers:{queue}"


def worker_processes(queue: str) -> str:
    """Hash of each worker consuming ``queue`` to its pool processes (its ``--concurrency``)."""
    return f"{PREFIX}:workers:{queue}:processes"


def celery_queue(queue: str) -> str:
    """The list kombu's Redis transport keeps a Celery queue's messages in (priority 0: the queue's name).

    Outside the ``inferq`` namespace because Celery workers consume it.
    """
    return queue


def celery_unacked() -> str:
    """Hash of the messages Celery workers have taken but not acknowledged (kombu's Redis transport)."""
    return "unacked"


def celery_unacked_index() -> str:
    """Sorted set of those messages' delivery tags, scored by when they were taken (unix seconds)."""
    return "unacked_index"


def orphan_scan_lock() -> str:
    """Held by the one process scanning for orphaned predictions in a round."""
    return f"{PREFIX}:orphan-scan"

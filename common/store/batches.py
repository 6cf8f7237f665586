"""Batches in Redis: the batch record, its plan of parts, and the parts' outcomes.

A batch runs as *parts*: each part is one ordinary prediction, in the ``batch``
priority class, that runs some of the batch's lines at once (many embedding
lines in one forward pass, or one line of any other endpoint). So a batch
gets what every prediction has: one terminal status through worker crashes,
cancellation with no worker up, recovery. A part's prediction carries
``batch_part`` (``<batch id> <part number> <lines>``), and its terminal write
(``lua/ending.lua``) keeps the ended record in the batch's results and counts
its lines, in the same atomic step: every line's outcome is recorded once.

The batch's own status moves by compare-and-set (:meth:`BatchStore.move`), so
of several API processes finishing a batch at once, one does.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, cast

import redis

from common.errors import NotFound
from common.store import keys

MOVE = """
-- KEYS[1] the batch, KEYS[2] its webhook outbox, KEYS[3] the webhooks-due zset. ARGV[1] the
-- statuses it may be in (space-separated), ARGV[2] now (unix seconds) when the move ends the
-- batch, else '', then field/value pairs to write (the first pair is the status). Returns 1 if it
-- moved. A batch with a webhook that ends is queued for delivery in the same step, so exactly
-- once: the snapshot names the status; the deliverer renders the batch as it is then.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return 0 end
for allowed in string.gmatch(ARGV[1], '%S+') do
  if allowed == status then
    redis.call('HSET', KEYS[1], unpack(ARGV, 3))
    if ARGV[2] ~= '' and redis.call('HEXISTS', KEYS[1], 'webhook') == 1 then
      local id = redis.call('HGET', KEYS[1], 'id')
      redis.call('RPUSH', KEYS[2], cjson.encode({batch = id, status = ARGV[4]}))
      redis.call('ZADD', KEYS[3], ARGV[2], id)
    end
    return 1
  end
end
return 0
"""


NEVER_QUEUED = """
-- KEYS[1] the batch, KEYS[2] its results, KEYS[3] the open batches. ARGV[1] the part's number,
-- ARGV[2] now, ARGV[3] the batch's id. A part whose prediction was never made ends empty-handed,
-- as lua/ending.lua ends a part (once; a batch whose last part ended is due now). Returns 1 if so.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[2], ARGV[1], '{}') == 0 then return 0 end
if redis.call('HINCRBY', KEYS[1], 'ended', 1) >= tonumber(redis.call('HGET', KEYS[1], 'parts') or '0') then
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
end
return 1
"""


class BatchStatus(StrEnum):
    """A batch's lifecycle, as OpenAI names it."""

    VALIDATING = "validating"
    FAILED = "failed"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    COMPLETED = "completed"
    EXPIRED = "expired"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (BatchStatus.FAILED, BatchStatus.COMPLETED, BatchStatus.EXPIRED, BatchStatus.CANCELLED)


TIMESTAMPS = (
    "created_at",
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)
"""The batch object's timestamps (unix seconds, or null)."""


@dataclass(frozen=True)
class Line:
    """One input line as a part runs it: its ``custom_id``, its number in the file (1-based), and
    what the endpoint's answer needs besides the output (its inputs' count and tokens, its
    encoding, ...)."""

    custom_id: str
    number: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Part:
    """A prediction that runs some of a batch's lines."""

    prediction_id: str
    lines: list[Line]

    def to_json(self) -> str:
        return json.dumps(
            {
                "prediction": self.prediction_id,
                "lines": [[x.custom_id, x.number, x.extra] for x in self.lines],
            }
        )

    @classmethod
    def from_json(cls, raw: str) -> Part:
        found = json.loads(raw)
        return cls(found["prediction"], [Line(c, n, e) for c, n, e in found["lines"]])


@dataclass
class Batch:
    """A batch record; ``fields`` holds what the API shows beyond the typed attributes."""

    id: str
    owner: str
    status: BatchStatus
    endpoint: str
    input_file_id: str
    total: int = 0
    completed: int = 0
    failed: int = 0
    parts: int = 0
    ended: int = 0
    times: dict[str, int | None] = field(default_factory=dict)
    fields: dict[str, Any] = field(default_factory=dict)
    """``completion_window``, ``metadata``, ``errors``, ``output_file_id``, ``error_file_id``,
    ``output_expires_after``, ``webhook``: JSON values."""

    def to_hash(self) -> dict[str, str]:
        flat = {
            "id": self.id,
            "owner": self.owner,
            "status": self.status.value,
            "endpoint": self.endpoint,
            "input_file_id": self.input_file_id,
            "total": str(self.total),
            "parts": str(self.parts),
        }
        for name in TIMESTAMPS:
            value = self.times.get(name)
            flat[name] = "" if value is None else str(value)
        for name, value in self.fields.items():
            flat[name] = json.dumps(value)
        return flat

    def to_object(self) -> dict[str, Any]:
        """The OpenAI batch object (what ``GET /v1/batches/{id}`` answers, and its webhook posts)."""
        fields = self.fields
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "model": fields.get("model"),
            "errors": fields.get("errors"),
            "input_file_id": self.input_file_id,
            "completion_window": fields.get("completion_window", "24h"),
            "status": self.status.value,
            "output_file_id": fields.get("output_file_id"),
            "error_file_id": fields.get("error_file_id"),
            **{name: self.times.get(name) for name in TIMESTAMPS},
            "request_counts": {"total": self.total, "completed": self.completed, "failed": self.failed},
            "metadata": fields.get("metadata"),
            "usage": fields.get("usage"),
        }

    @classmethod
    def from_hash(cls, data: Mapping[str, str]) -> Batch:
        typed = {"id", "owner", "status", "endpoint", "input_file_id", "total", "completed", "failed"}
        typed |= {"parts", "ended", *TIMESTAMPS}
        return cls(
            id=data["id"],
            owner=data["owner"],
            status=BatchStatus(data["status"]),
            endpoint=data["endpoint"],
            input_file_id=data["input_file_id"],
            total=int(data.get("total") or 0),
            completed=int(data.get("completed") or 0),
            failed=int(data.get("failed") or 0),
            parts=int(data.get("parts") or 0),
            ended=int(data.get("ended") or 0),
            times={name: int(data[name]) if data.get(name) else None for name in TIMESTAMPS},
            fields={k: json.loads(v) for k, v in data.items() if k not in typed},
        )


def new_batch_id() -> str:
    """``batch_`` and 32 hex digits, time-ordered (the milliseconds first) so ids sort by creation."""
    return f"batch_{int(time.time() * 1000):012x}{uuid.uuid4().hex[:20]}"


class BatchStore:
    """Reads and writes batches; reached from requests as ``services().batches``."""

    def __init__(self, client: redis.Redis, retention: float) -> None:
        self.redis = client
        self.retention = int(retention)
        self._kept = max(self.retention, 24 * 3600)
        """Seconds an ended batch's record is kept."""
        self._move = client.register_script(MOVE)
        self._never_queued = client.register_script(NEVER_QUEUED)

    def add(self, batch: Batch, due: float) -> None:
        """Stores a new ``validating`` batch, indexed for its owner, due for a look at ``due``."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.batch(batch.id), items=[item for pair in batch.to_hash().items() for item in pair])
        pipe.zadd(keys.owner_batches(batch.owner), {batch.id: 0})
        pipe.zadd(keys.batches_open(), {batch.id: due})
        pipe.execute()

    def get(self, batch_id: str) -> Batch | None:
        data = cast(dict[str, str], self.redis.hgetall(keys.batch(batch_id)))
        return Batch.from_hash(data) if data else None

    def get_owned(self, batch_id: str, owner: str) -> Batch:
        """The batch if it exists and belongs to ``owner``.

        Raises:
            NotFound: Otherwise; another owner's batch is indistinguishable from none.
        """
        batch = self.get(batch_id) if batch_id.startswith("batch_") else None
        if batch is None or batch.owner != owner:
            raise NotFound("Batch not found", param="batch_id")
        return batch

    def page(self, owner: str, *, limit: int, after: str | None) -> tuple[list[Batch], bool]:
        """Up to ``limit`` of ``owner``'s batches, newest first, older than ``after``; and whether
        more follow."""
        top = f"({after}" if after else "+"
        ids = cast(list[str], self.redis.zrevrangebylex(keys.owner_batches(owner), top, "-", 0, limit + 1))
        pipe = self.redis.pipeline(transaction=False)
        for batch_id in ids:
            pipe.hgetall(keys.batch(batch_id))
        found, gone = [], []
        for batch_id, data in zip(ids, pipe.execute(), strict=True):
            if data:
                found.append(Batch.from_hash(data))
            else:
                gone.append(batch_id)
        if gone:
            self.redis.zrem(keys.owner_batches(owner), *gone)
        return found[:limit], len(found) > limit

    def move(self, batch_id: str, allowed: Sequence[BatchStatus], to: BatchStatus, **values: Any) -> bool:
        """Sets the status to ``to`` (and the field/value pairs ``values``: timestamps, or what
        :attr:`Batch.fields` holds) if it is one of ``allowed``: a compare-and-set. A move that ends
        a batch with a webhook queues its delivery in the same step."""
        pairs: list[Any] = ["status", to.value]
        for name, value in values.items():
            pairs += [name, str(value) if name in TIMESTAMPS else json.dumps(value)]
        ending = repr(time.time()) if to.is_final else ""
        written = self._move(
            keys=[keys.batch(batch_id), keys.webhook_outbox(batch_id), keys.webhooks_due()],
            args=[" ".join(allowed), ending, *pairs],
        )
        return bool(written)

    def plan_parts(self, batch_id: str, plan: Sequence[Part], total: int) -> bool:
        """Stores a ``validating`` batch's plan (before its parts' predictions exist: a part that
        ends must find its batch) and its ``total`` lines; False, storing nothing, when the batch
        is no longer ``validating`` (it was cancelled meanwhile)."""
        batch_key = keys.batch(batch_id)
        with self.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(batch_key)
                if pipe.hget(batch_key, "status") != BatchStatus.VALIDATING.value:
                    return False
                pipe.multi()
                pipe.hset(
                    keys.batch_plan(batch_id), mapping={str(n): part.to_json() for n, part in enumerate(plan)}
                )
                pipe.hset(batch_key, mapping={"total": total, "parts": len(plan)})
                pipe.execute()
            except redis.WatchError:  # it moved meanwhile: cancelled
                return False
        return True

    def started(self, batch_id: str, due: float) -> bool:
        """Its parts are all queued: ``in_progress``, due for a look at ``due`` (its window's end)
        unless sooner (its last part ended already); False if it was cancelled meanwhile."""
        moved = self.move(
            batch_id, [BatchStatus.VALIDATING], BatchStatus.IN_PROGRESS, in_progress_at=int(time.time())
        )
        if moved:
            self.redis.zadd(keys.batches_open(), {batch_id: due}, lt=True)
        return moved

    def plan(self, batch_id: str) -> dict[int, Part]:
        raw = cast(dict[str, str], self.redis.hgetall(keys.batch_plan(batch_id)))
        return {int(number): Part.from_json(value) for number, value in raw.items()}

    def never_queued(self, batch_id: str, number: int) -> bool:
        """Ends part ``number``, whose prediction does not exist (its batch was cancelled while its
        parts were queued, and the queuing stopped), with no result: its lines did not run. A
        prediction made for it after all is ignored (its part has ended) and cancelled."""
        written = self._never_queued(
            keys=[keys.batch(batch_id), keys.batch_results(batch_id), keys.batches_open()],
            args=[number, repr(time.time()), batch_id],
        )
        return bool(written)

    def results(self, batch_id: str) -> dict[int, dict[str, Any]]:
        """Each ended part's record as it ended (a snapshot: its hash fields plus ``logs``)."""
        raw = cast(dict[str, str], self.redis.hgetall(keys.batch_results(batch_id)))
        return {int(number): json.loads(value) for number, value in raw.items()}

    def lock(self, batch_id: str, seconds: float, *, validating: bool = False) -> bool:
        """Takes the batch, to write its files (or, ``validating``, to check its lines and queue
        its parts), for ``seconds`` at most: False when another process holds it."""
        key = keys.batch_validation_lock(batch_id) if validating else keys.batch_lock(batch_id)
        return bool(self.redis.set(key, "1", nx=True, ex=int(seconds)))

    def unlock(self, batch_id: str, *, validating: bool = False) -> None:
        self.redis.delete(keys.batch_validation_lock(batch_id) if validating else keys.batch_lock(batch_id))

    def due(self, now: float, limit: int = 20) -> list[str]:
        """The open batches due for a look (window over, or every part ended)."""
        return cast(list[str], self.redis.zrangebyscore(keys.batches_open(), "-inf", now, start=0, num=limit))

    def postpone(self, batch_id: str, when: float) -> None:
        self.redis.zadd(keys.batches_open(), {batch_id: when})

    def closed(self, batch_id: str) -> None:
        """The batch ended: off the open set; its plan and results go, its record expires after
        the retention window (its files keep their own expiry)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrem(keys.batches_open(), batch_id)
        pipe.delete(keys.batch_plan(batch_id), keys.batch_results(batch_id))
        pipe.expire(keys.batch(batch_id), self._kept)
        pipe.execute()

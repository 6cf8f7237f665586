"""The scheduler: which waiting prediction a worker runs next, and the queues' figures.

A model's Celery queue holds task messages, one per waiting prediction (or a
few more), but a message does not decide which prediction runs: it means "run
the next one on this queue", and the claim picks it (``lua/next.lua``):

1. the highest class with work (:class:`~common.records.Priority`: ``interactive``,
   then ``default``, then ``batch``);
2. in it, the API key whose turn it is: each key waiting in the class has a
   pass, the lowest goes next and its pass moves on by 1 ÷ its weight
   (``INFERQ_KEY_WEIGHTS``), so keys take turns in proportion to their weights
   however deep any one key's line is; a key that was not waiting joins at the
   class's current pass, so it goes next rather than after the others' backlog;
3. that key's oldest waiting prediction.

A key that runs ``INFERQ_MAX_RUNNING_PER_KEY`` predictions (across all workers)
is skipped; when only such keys wait, the worker parks its message
(:meth:`PredictionStore.park`) and takes the next, and every run's end puts one
parked message back. Everything here is kept by the store's scripts in the same
atomic steps that create, claim and end predictions, so the figures are exact
counts, not samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

import redis

from common.connections import redis_clock
from common.records import ModelRef, Priority
from common.store import keys
from common.store.scripts import Scripts


@dataclass(frozen=True)
class Line:
    """One class of one queue: what waits in it, and what of it runs."""

    queued: int = 0
    running: int = 0
    oldest_age: float | None = None
    """Seconds the oldest waiting prediction has waited (None: none waits)."""


@dataclass
class QueueFigures:
    """A queue's lines by class (of every key's predictions, or of one key's)."""

    queue: str
    lines: dict[Priority, Line] = field(default_factory=dict)
    running: int = 0
    parked: int = 0

    @property
    def queued(self) -> int:
        return sum(line.queued for line in self.lines.values())


@dataclass(frozen=True)
class Oldest:
    """The longest-waiting prediction of a queue."""

    prediction_id: str
    age: float


class Schedule:
    """Reads the scheduler's state; reached as ``PredictionStore.schedule``."""

    def __init__(self, client: redis.Redis, scripts: Scripts) -> None:
        self.redis = client
        self._run = scripts

    def figures(self, queues: list[str], owner: str | None = None) -> list[QueueFigures]:
        """Each queue's lines by class: all keys' predictions, or only ``owner``'s."""
        state = cast(dict[str, str], self.redis.hgetall(keys.schedule()))
        heads = self._heads(queues, owner)
        pipe = self.redis.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(keys.schedule_parked(queue))
        parked = pipe.execute()
        now = redis_clock(self.redis)
        found = []
        for queue, parked_count in zip(queues, parked, strict=True):
            figures = QueueFigures(queue, parked=parked_count)
            for priority in Priority:
                line_heads = heads[queue, priority]
                oldest = min((score for _, score, _ in line_heads), default=None)
                if owner is None:
                    queued = int(state.get(f"queued {queue} {priority}", 0))
                    running = int(state.get(f"running {queue} {priority}", 0))
                else:
                    queued = sum(size for _, _, size in line_heads)
                    running = int(state.get(f"owner {owner} {queue} {priority}", 0))
                age = None if oldest is None else max(0.0, now - oldest)
                figures.lines[priority] = Line(queued, running, age)
            figures.running = sum(line.running for line in figures.lines.values())
            found.append(figures)
        return found

    def waiting_queues(self) -> list[str]:
        """The queues that have waiting predictions."""
        state = cast(dict[str, str], self.redis.hgetall(keys.schedule()))
        return sorted({name.split(" ")[1] for name in state if name.startswith("queued ")})

    def oldest(self, queue: str) -> Oldest | None:
        """The prediction that has waited longest on ``queue``, of every class and key."""
        heads = self._heads([queue], None)
        firsts = [head for priority in Priority for head in heads[queue, priority]]
        if not firsts:
            return None
        prediction_id, created, _ = min(firsts, key=lambda head: head[1])
        return Oldest(prediction_id, max(0.0, redis_clock(self.redis) - created))

    def _heads(
        self, queues: list[str], owner: str | None
    ) -> dict[tuple[str, Priority], list[tuple[str, float, int]]]:
        """Per queue and class, each waiting key's oldest prediction: ``(id, created, how many)``."""
        lines = [(queue, priority) for queue in queues for priority in Priority]
        if owner is None:
            pipe = self.redis.pipeline(transaction=False)
            for queue, priority in lines:
                pipe.zrange(keys.schedule_turns(queue, priority), 0, -1)
            owners = pipe.execute()
        else:
            owners = [[owner]] * len(lines)
        pipe = self.redis.pipeline(transaction=False)
        for (queue, priority), line_owners in zip(lines, owners, strict=True):
            for each in line_owners:
                waiting = keys.schedule_waiting(queue, priority, each)
                pipe.zrange(waiting, 0, 0, withscores=True)
                pipe.zcard(waiting)
        replies = iter(pipe.execute())
        heads: dict[tuple[str, Priority], list[tuple[str, float, int]]] = {}
        for line, line_owners in zip(lines, owners, strict=True):
            heads[line] = []
            for _ in line_owners:
                first, size = next(replies), next(replies)
                if first:
                    heads[line].append((first[0][0], float(first[0][1]), int(size)))
        return heads

    def parked_queues(self) -> list[str]:
        """The queues that have parked messages."""
        return sorted(cast(set[str], self.redis.smembers(keys.schedule_parked_queues())))

    def unpark(self, queue: str, limit: int, most: int = 10) -> int:
        """Puts parked messages of ``queue`` back while a waiting prediction may run; see unpark.lua."""
        return int(self._run("unpark", "-", queue, most, limit))

    def model_of(self, prediction_id: str) -> ModelRef | None:
        """The model version of a prediction, for a task message naming it."""
        raw = self.redis.hget(keys.prediction(prediction_id), "model")
        return None if raw is None else ModelRef.from_json(cast(str, raw))

"""Batch lanes: hints of the queued predictions of a batched model version, for gathering a batch.

Creating a prediction of a batched version also pushes ``<id>\\n<task message>``
onto the version's lane (:func:`common.store.keys.batch_lane`) and publishes the
lane's name on :func:`common.store.keys.lanes_channel`. A worker gathering a batch
takes what the lane holds, then waits for news of more on its process's one
subscription. It waits with a timeout measured here: Redis ends a blocking pop
(``BLPOP``) only on its ``hz`` tick, 100 ms by default, so a gap of a few
milliseconds would idle the model for up to a tenth of a second per batch
(and Redis 6 reads a timeout under 1 ms as "for ever").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import cast

import redis

from common.records import ModelRef
from common.store import keys
from common.store.notifier import Notifier


@dataclass(frozen=True)
class Hint:
    """A queued prediction of a batched version, and its task message as it sits in the queue."""

    prediction_id: str
    message: str


class Lanes:
    """Takes hints from the lanes of batched versions (see the module docstring)."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._news: Notifier | None = None
        self._lock = threading.Lock()

    def take(self, model: ModelRef, count: int, wait: float, gap: float) -> list[Hint]:
        """Takes up to ``count`` hints of queued predictions of ``model``.

        While hints keep arriving less than ``gap`` seconds apart (a burst of
        requests), it keeps taking them, for at most ``wait`` seconds in all; a
        quiet gap ends the batch. Hints can be stale (the prediction already
        ran) or lost (a worker died holding them): a hinted prediction also has
        its own task message, so a hint is only ever a chance to run it sooner,
        in a batch.
        """
        lane = keys.batch_lane(model.key)
        deadline = time.monotonic() + wait
        with self._subscription().watch(lane) as watcher:
            hints = self.pop(model, count)
            while len(hints) < count and (remaining := min(gap, deadline - time.monotonic())) > 0:
                if not watcher.event.wait(remaining):
                    break
                watcher.event.clear()
                hints += self.pop(model, count - len(hints))
        return hints

    def pop(self, model: ModelRef, count: int) -> list[Hint]:
        """Takes up to ``count`` hints that ``model``'s lane holds now, without waiting."""
        raw = cast(list[str], self.redis.lpop(keys.batch_lane(model.key), count) or [])
        hints = []
        for entry in raw:
            prediction_id, _, message = entry.partition("\n")
            hints.append(Hint(prediction_id, message))
        return hints

    @contextmanager
    def news(self, model: ModelRef, event: threading.Event) -> Iterator[None]:
        """Sets ``event`` whenever a hint is pushed onto ``model``'s lane, for the duration of the block."""
        with self._subscription().watch(keys.batch_lane(model.key), event):
            yield

    def close(self) -> None:
        """Stops listening for news of the lanes (returns once the listener has stopped)."""
        with self._lock:
            news, self._news = self._news, None
        if news is not None:
            news.stop(wait=True)

    def _subscription(self) -> Notifier:
        with self._lock:
            if self._news is None:
                self._news = Notifier(self.redis, keys.lanes_channel())
            return self._news

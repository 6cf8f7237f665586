"""Watching predictions change status without polling: a listener on inferq's news channels.

Every status change is published as ``<id> <status>`` (an ending with the
record after it) on ``common.store.keys.updates_channel()`` or, as a prediction
starts, ``common.store.keys.progress_channel()``; :class:`Updates` subscribes once and
timestamps (``time.perf_counter()``) the first time it sees each status of each
prediction, so a benchmark can wait for, count and time terminal statuses with
one Redis connection however many predictions it runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Iterable

import redis

from common.store import keys
from common.store.notifier import split_news

TERMINAL = frozenset({"succeeded", "failed", "cancelled", "abandoned"})
"""The statuses a prediction ends in."""


class Updates:
    """Records when each prediction was seen in each status, as the news arrives.

    Args:
        redis_url: The Redis the inferq processes use.
    """

    def __init__(self, redis_url: str) -> None:
        self._client = redis.Redis.from_url(redis_url, decode_responses=True)
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(keys.updates_channel(), keys.progress_channel())
        for _ in range(2):  # the subscribe confirmations
            self._pubsub.get_message(ignore_subscribe_messages=False, timeout=5)
        self.seen: dict[str, dict[str, float]] = {}
        """Prediction id to status to when it was first seen."""
        self.terminal: dict[str, list[str]] = {}
        """Prediction id to every terminal status published for it (more than one would be a bug)."""
        self.last_terminal_at = 0.0
        """When the latest terminal status arrived (``perf_counter``)."""
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="updates", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stopping.is_set():
            message = self._pubsub.get_message(timeout=0.2)
            if message is None:
                continue
            now = time.perf_counter()
            prediction_id, status, _ = split_news(str(message["data"]))
            with self._changed:
                self.seen.setdefault(prediction_id, {}).setdefault(status, now)
                if status in TERMINAL:
                    self.terminal.setdefault(prediction_id, []).append(status)
                    self.last_terminal_at = now
                self._changed.notify_all()

    def when(self, prediction_id: str, status: str) -> float | None:
        """When ``prediction_id`` was first seen in ``status``, if it was."""
        with self._changed:
            return self.seen.get(prediction_id, {}).get(status)

    def status(self, prediction_id: str) -> str | None:
        """The first terminal status seen for ``prediction_id``, if any."""
        with self._changed:
            ended = self.terminal.get(prediction_id)
            return ended[0] if ended else None

    def wait_for(
        self, prediction_ids: Iterable[str], statuses: Collection[str] = TERMINAL, timeout: float = 60.0
    ) -> bool:
        """Blocks until every one of ``prediction_ids`` was seen in one of ``statuses``; False on timeout."""
        wanted = list(prediction_ids)
        deadline = time.monotonic() + timeout
        with self._changed:
            while not all(self.seen.get(p, {}).keys() & statuses for p in wanted):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 0.5))
            return True

    def wait_count(self, count: int, timeout: float = 60.0) -> int:
        """Blocks until ``count`` predictions have ended (or ``timeout``); returns how many have."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.terminal) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(min(remaining, 0.5))
            return len(self.terminal)

    def reset(self) -> None:
        """Forgets everything seen so far (between rounds)."""
        with self._changed:
            self.seen.clear()
            self.terminal.clear()
            self.last_terminal_at = 0.0

    def close(self) -> None:
        """Stops listening and closes the connection."""
        self._stopping.set()
        self._thread.join(5)
        self._pubsub.close()
        self._client.close()

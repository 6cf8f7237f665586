"""Waiting for many predictions to end, by listening to the updates channel (no polling)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import redis

from common.config import Settings
from common.connections import redis_client
from common.store import keys
from common.store.notifier import split_news

TERMINAL = frozenset({"succeeded", "failed", "cancelled", "abandoned"})


class Terminals:
    """Collects the terminal status of every prediction it is told about, as they are published.

    It survives Redis going away: after reconnecting it re-reads the statuses it
    was still waiting for, since messages sent while disconnected are lost.
    """

    def __init__(self, redis_url: str, master: str | None = None) -> None:
        if master is None:
            self._client = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=5)
        else:  # through the Sentinels, following a failover
            self._client = redis_client(
                Settings.defaults(redis_url=redis_url, redis_master=master), retries=3
            )
        self._statuses: dict[str, str] = {}
        self.published: dict[str, list[str]] = {}
        """Prediction id to every terminal status published for it, as heard (not re-read): more
        than one different status would be a prediction ended twice."""
        self._expected: set[str] = set()
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._subscribed = threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)
        self._thread.start()
        assert self._subscribed.wait(10), "could not subscribe to the updates channel"

    def expect(self, prediction_ids: Iterable[str]) -> None:
        """Starts waiting for these predictions (ones already ended are read at once)."""
        with self._changed:
            self._expected.update(prediction_ids)
        self._reread()

    def wait(self, timeout: float) -> dict[str, str]:
        """Blocks until every expected prediction ended (or ``timeout``); returns their statuses."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not self._expected <= self._statuses.keys():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(min(remaining, 1.0))
            return {pid: self._statuses.get(pid, "not ended") for pid in self._expected}

    def close(self) -> None:
        """Stops listening."""
        self._stopping.set()
        self._thread.join(5)
        self._client.close()

    def _record(self, prediction_id: str, status: str | None, *, heard: bool = False) -> None:
        if status in TERMINAL:
            with self._changed:
                self._statuses[prediction_id] = str(status)
                if heard:
                    self.published.setdefault(prediction_id, []).append(str(status))
                self._changed.notify_all()

    def _reread(self) -> None:
        with self._changed:
            waiting = sorted(self._expected - self._statuses.keys())
        if not waiting:
            return
        pipe = self._client.pipeline(transaction=False)
        for prediction_id in waiting:
            pipe.hget(keys.prediction(prediction_id), "status")
        for prediction_id, status in zip(waiting, pipe.execute(), strict=True):
            self._record(prediction_id, status)

    def _listen(self) -> None:
        while not self._stopping.is_set():
            try:
                pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(keys.updates_channel())
                pubsub.get_message(ignore_subscribe_messages=False, timeout=5)
                self._subscribed.set()
                self._reread()
                while not self._stopping.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None:
                        prediction_id, status, _ = split_news(message["data"])
                        self._record(prediction_id, status, heard=True)
            except (redis.ConnectionError, redis.TimeoutError):
                self._stopping.wait(0.2)

"""Wake-ups for code waiting on predictions, from one pub/sub connection per process.

Publishers send ``"<prediction id>[ <note>[ <data>]]"`` (the store sends the
new status as the note, and the ended record as the data when it is small). A
waiter registers for an id, and is woken with the note and data of each
message about it; after a reconnection every waiter is woken with no note,
since messages sent while disconnected are lost, and must re-read. So hundreds
of waiters share one Redis connection and no one polls.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.client import PubSub

from common.backoff import Backoff

logger = logging.getLogger(__name__)

LISTEN_TIMEOUT = 1.0
"""Seconds a read of the subscription waits before the listener checks whether to stop."""

RECONNECT_DELAY = 0.5
"""Seconds before the first attempt to re-subscribe after the subscription fails (doubling after that)."""

MAX_RECONNECT_DELAY = 2.0
"""Seconds between attempts to re-subscribe at most, while they keep failing."""


def split_news(message: str) -> tuple[str, str, str]:
    """``(prediction id, note, data)`` of a message on the updates (or progress) channel; '' when absent."""
    prediction_id, _, rest = message.partition(" ")
    note, _, data = rest.partition(" ")
    return prediction_id, note, data


@dataclass(eq=False)
class Watcher:
    """One waiter's view: ``event`` fires on news; ``note`` and ``data`` are the latest (no note: re-read)."""

    event: threading.Event = field(default_factory=threading.Event)
    note: str | None = None
    data: str | None = None


class Notifier:
    """Relays a pub/sub channel of prediction ids to the threads (or greenlets) waiting on them."""

    def __init__(self, client: redis.Redis, channel: str) -> None:
        self._client = client
        self._channel = channel
        self._watchers: dict[str, set[Watcher]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._backoff = Backoff(
            f"listening on {channel}", logger, first=RECONNECT_DELAY, cap=MAX_RECONNECT_DELAY
        )

    def start(self) -> None:
        """Starts the listener thread once; later calls do nothing."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._listen, name="inferq-notifier", daemon=True)
                self._thread.start()

    def stop(self, wait: bool = False) -> None:
        """Stops the listener thread (it exits within a second; ``wait`` for it to)."""
        self._stopping.set()
        if wait and self._thread is not None:
            self._thread.join()

    @contextmanager
    def watch(self, prediction_id: str, event: threading.Event | None = None) -> Iterator[Watcher]:
        """Registers for news of ``prediction_id`` for the duration of the block.

        Register first, then read (or create) the record: a change published in
        between is not missed, and neither is one published while the listener
        was (re)connecting, since it wakes every waiter once subscribed. Clear
        the event before acting on the note. The listener starts (on the first
        watch) only once the watcher is registered, so that wake reaches it.

        Args:
            prediction_id: The prediction to hear about.
            event: Fire this event instead of a new one (to share one between watches).
        """
        watcher = Watcher(event or threading.Event())
        with self._lock:
            self._watchers.setdefault(prediction_id, set()).add(watcher)
        self.start()
        try:
            yield watcher
        finally:
            with self._lock:
                watching = self._watchers.get(prediction_id)
                if watching is not None:
                    watching.discard(watcher)
                    if not watching:
                        del self._watchers[prediction_id]

    def wake(self, prediction_id: str) -> None:
        """Wakes this process's waiters on ``prediction_id`` with no note (they re-check everything)."""
        self._wake(prediction_id)

    def _wake(self, message: str) -> None:
        prediction_id, note, data = split_news(message)
        with self._lock:
            watchers = list(self._watchers.get(prediction_id, ()))
        for watcher in watchers:
            watcher.data = data or None
            watcher.note = note or None
            watcher.event.set()

    def _wake_all(self) -> None:
        with self._lock:
            watchers = [watcher for watching in self._watchers.values() for watcher in watching]
        for watcher in watchers:
            watcher.note = watcher.data = None
            watcher.event.set()

    def _listen(self) -> None:
        """Relays the channel until stopped; any error (not only a lost connection: Redis may
        answer with ``OOM``, ``READONLY``, ``BUSY``...) wakes every waiter to re-read, and the
        listener subscribes again after a backoff."""
        while not self._stopping.is_set():
            with self._backoff.round():
                self._relay()
            if self._backoff.delay is not None:
                self._wake_all()
                self._stopping.wait(self._backoff.delay)

    def _relay(self) -> None:
        """Subscribes, then wakes the waiters of each message until stopped (or until an error)."""
        pubsub = self._client.pubsub()
        try:
            pubsub.subscribe(self._channel)
            subscribed = False
            while not self._stopping.is_set():
                message = self._next(pubsub)
                if message is None:
                    continue
                if message["type"] == "subscribe" and not subscribed:
                    subscribed = True  # the first message confirms the subscription
                    self._backoff.succeeded()
                    self._wake_all()
                elif message["type"] == "message":
                    self._wake(message["data"])
        finally:
            pubsub.close()

    @staticmethod
    def _next(pubsub: PubSub) -> dict[str, Any] | None:
        """The next message, or None after ``LISTEN_TIMEOUT`` seconds without one.

        A blocking read of the connection: ``get_message(timeout=...)`` polls the
        socket twice a message before reading it, which under gevent (the API)
        costs as much again as the rest of the message's handling.
        """
        assert pubsub.connection is not None  # subscribed
        try:
            response = pubsub.connection.read_response(
                disconnect_on_error=False, push_request=True, timeout=LISTEN_TIMEOUT
            )
        except redis.TimeoutError:
            pubsub.check_health()  # a PING now and then, answered as a message
            return None
        return pubsub.handle_message(response)

"""Worker liveness: a worker counts as live on its queues once a pool process has loaded its models.

A pool process announces the worker when its models are loaded; from then on
the worker's main process keeps the announcement fresh (re-creating it if it
vanished, say after a Redis restart), so readiness means "can run a prediction
now", not merely "started".

Every score is on the Redis server's clock (``TIME``), as in the store's
scripts, never on a host's: a worker whose host clock runs behind would
otherwise write heartbeats that have already lapsed (and vanish from
``/readyz``), and one whose clock runs ahead would drop the others' as lapsed.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import cast

import redis

from common.backoff import FIRST_DELAY, Backoff
from common.connections import redis_clock
from common.store import keys
from common.store.predictions import PredictionStore

logger = logging.getLogger(__name__)

HEARTBEAT_TTL = 10.0
"""Seconds a worker counts as live after its last heartbeat."""


class Heartbeat:
    """Marks this worker live on each queue it consumes, for readiness checks and tests."""

    def __init__(self, store: PredictionStore, worker: str, queues: list[str], processes: int = 1) -> None:
        """
        Args:
            processes: The worker's pool processes (its ``--concurrency``), counted by
                :func:`live_processes`.
        """
        self.store = store
        self.worker = worker
        self.queues = queues
        self.processes = processes
        self._announced = False

    def announce(self) -> None:
        """Marks this worker live on every one of its queues (a pool process, once its models loaded).

        If Redis cannot take it now (down, or refusing writes), a daemon thread keeps trying
        until it does: the main process only refreshes an announcement, never makes one.
        """
        try:
            self._write(refresh_only=False)
        except redis.RedisError as e:
            logger.warning("cannot announce worker %s yet: %s (%s)", self.worker, e, type(e).__name__)
            threading.Thread(target=self._announce_later, name="inferq-announce", daemon=True).start()

    def _announce_later(self) -> None:
        backoff = Backoff(f"announcing worker {self.worker}", logger)
        while True:
            with backoff.round():
                self._write(refresh_only=False)
                return
            time.sleep(backoff.delay or FIRST_DELAY)

    def beat(self) -> None:
        """Refreshes this worker's entries once a pool process announced it, and drops lapsed ones."""
        refreshed = self._write(refresh_only=not self._announced)
        self._announced = self._announced or refreshed

    def _write(self, *, refresh_only: bool) -> bool:
        now = redis_clock(self.store.redis)
        pipe = self.store.redis.pipeline(transaction=False)
        for queue in self.queues:
            entry = {self.worker: now + HEARTBEAT_TTL}
            pipe.zadd(keys.worker_heartbeats(queue), entry, xx=refresh_only, ch=True)
            pipe.zremrangebyscore(keys.worker_heartbeats(queue), "-inf", now)
            pipe.hset(keys.worker_processes(queue), self.worker, self.processes)
        return any(pipe.execute()[::3])

    def retire(self) -> None:
        """Removes this worker's entries (it is stopping), for good."""
        self._announced = False
        pipe = self.store.redis.pipeline(transaction=False)
        for queue in self.queues:
            pipe.zrem(keys.worker_heartbeats(queue), self.worker)
            pipe.hdel(keys.worker_processes(queue), self.worker)
        pipe.execute()


def live_workers(store: PredictionStore, queue: str) -> int:
    """How many workers heart-beat on ``queue`` recently."""
    return int(store.redis.zcount(keys.worker_heartbeats(queue), redis_clock(store.redis), "+inf"))


def live_processes(store: PredictionStore, queue: str) -> int:
    """How many pool processes the live workers on ``queue`` have, all told."""
    client = store.redis
    live = cast(list[str], client.zrangebyscore(keys.worker_heartbeats(queue), redis_clock(client), "+inf"))
    if not live:
        return 0
    counts = cast(list[str | None], client.hmget(keys.worker_processes(queue), live))
    return sum(int(count or 1) for count in counts)

"""Worker liveness: each worker's main process heart-beats on every queue it consumes."""

from __future__ import annotations

import time

from common import keys
from common.store import PredictionStore

HEARTBEAT_TTL = 10.0
"""Seconds a worker counts as live after its last heartbeat."""


class Heartbeat:
    """Marks this worker live on each queue it consumes, for readiness checks and tests."""

    def __init__(self, store: PredictionStore, worker: str, queues: list[str]) -> None:
        self.store = store
        self.worker = worker
        self.queues = queues

    def beat(self) -> None:
        """Refreshes this worker's entry on every one of its queues."""
        now = time.time()
        pipe = self.store.redis.pipeline(transaction=False)
        for queue in self.queues:
            pipe.zadd(keys.worker_heartbeats(queue), {self.worker: now + HEARTBEAT_TTL})
            pipe.zremrangebyscore(keys.worker_heartbeats(queue), "-inf", now)
        pipe.execute()

    def retire(self) -> None:
        """Removes this worker's entries (a clean shutdown)."""
        pipe = self.store.redis.pipeline(transaction=False)
        for queue in self.queues:
            pipe.zrem(keys.worker_heartbeats(queue), self.worker)
        pipe.execute()


def live_workers(store: PredictionStore, queue: str) -> int:
    """How many workers heart-beat on ``queue`` recently."""
    return int(store.redis.zcount(keys.worker_heartbeats(queue), time.time(), "+inf"))

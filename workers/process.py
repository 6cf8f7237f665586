"""What each worker process builds for itself after it is forked: Redis clients, runner, deliverer."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import redis

from common.catalog import Catalog
from common.config import Settings
from common.connections import redis_client
from common.queue.broker import TaskMessages
from common.store import keys
from common.store.notifier import Notifier
from common.store.outbox import Outbox
from common.store.predictions import PredictionStore
from workers.runner import Runner
from workers.supervisor import Supervisor
from workers.webhooks import WebhookDeliverer

WORKER_REDIS_RETRIES = 10
"""Retries of a Redis command in a worker (with backoff), so a Redis blip does not fail a run."""


@dataclass
class _Built:
    pid: int
    runner: Runner
    deliverer: WebhookDeliverer


class ProcessState:
    """Builds this process's runner and webhook deliverer on first use, and again after a fork."""

    def __init__(self, settings: Settings, catalog: Catalog, messages: TaskMessages) -> None:
        self.settings = settings
        self.catalog = catalog
        self.messages = messages
        self._lock = threading.Lock()
        self._built: _Built | None = None

    def _get(self) -> _Built:
        with self._lock:
            if self._built is None or self._built.pid != os.getpid():
                client: redis.Redis = redis_client(self.settings, retries=WORKER_REDIS_RETRIES)
                store = PredictionStore(client, self.settings)
                supervisor = Supervisor(store, Notifier(client, keys.cancel_channel()), self.settings)
                runner = Runner(self.settings, self.catalog, store, supervisor, self.messages)
                deliverer = WebhookDeliverer(Outbox(client), self.settings)
                self._built = _Built(os.getpid(), runner, deliverer)
            return self._built

    def runner(self) -> Runner:
        """The runner of the current process (pool children get their own)."""
        return self._get().runner

    def deliverer(self) -> WebhookDeliverer:
        """The webhook deliverer of the current process."""
        return self._get().deliverer

"""What each worker process builds for itself after it is forked: Redis clients, runner, supervisor."""

from __future__ import annotations

import os
import threading

from common import keys
from common.catalog import Catalog
from common.config import Settings
from common.connections import redis_client
from common.notifier import Notifier
from common.store import PredictionStore
from workers.runner import Runner
from workers.supervisor import Supervisor

WORKER_REDIS_RETRIES = 10
"""Retries of a Redis command in a worker (with backoff), so a Redis blip does not fail a run."""


class ProcessState:
    """Builds this process's runner on first use, and again after a fork."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._runner: Runner | None = None

    def runner(self) -> Runner:
        """The runner of the current process (pool children get their own)."""
        with self._lock:
            if self._runner is None or self._pid != os.getpid():
                client = redis_client(self.settings, retries=WORKER_REDIS_RETRIES)
                store = PredictionStore(client, self.settings)
                notifier = Notifier(client, keys.cancel_channel())
                supervisor = Supervisor(store, notifier, self.settings)
                self._runner = Runner(self.settings, self.catalog, store, supervisor)
                self._pid = os.getpid()
            return self._runner

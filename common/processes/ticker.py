"""A daemon thread that runs housekeeping jobs at a fixed interval."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from common.backoff import Backoff

logger = logging.getLogger(__name__)


class Ticker:
    """Calls each job every ``interval`` seconds in one daemon thread.

    A failing job is logged, not fatal, and skipped for a backoff that grows
    while it keeps failing (:class:`~common.backoff.Backoff`); the other jobs go on.
    """

    def __init__(self, name: str, interval: float, jobs: list[Callable[[], object]]) -> None:
        self._jobs = [(job, Backoff(f"housekeeping job {_name(job)}", logger)) for job in jobs]
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Ticker:
        """Starts the thread and returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Asks the thread to exit after its current round."""
        self._stopping.set()

    def _loop(self) -> None:
        while not self._stopping.wait(self._interval):
            for job, backoff in self._jobs:
                if backoff.due():
                    with backoff.round():
                        job()


def _name(job: Callable[[], object]) -> str:
    return str(getattr(job, "__name__", job))

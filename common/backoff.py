"""Background loops that outlive Redis errors: log the error, wait a growing delay, go on.

Every long-lived thread (the supervisor of running predictions, the notifiers'
listeners, the tickers that run recovery and heartbeats) runs each round of
its work through a :class:`Backoff`. An error ends only that round: any
``RedisError`` (a dropped connection, ``OOM command not allowed`` at
``maxmemory``, ``READONLY`` after a failover, ``BUSY`` while a script runs,
``LOADING`` after a restart) is logged in one line, anything else with its
traceback; then the loop waits, twice as long after each failure in a row up
to a cap, and tries again. A loop that died instead would leave its work
undone for the life of the process: leases unrenewed, cancels unrelayed.
A run's terminal write is tried again the same way (``workers.runner``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis

FIRST_DELAY = 0.1
"""Seconds a loop waits after its first failure in a row."""

MAX_DELAY = 5.0
"""Seconds a loop waits between attempts at most, however long the failures go on."""


class Backoff:
    """The failures in a row of one background loop, and how long it should wait before its next round.

    Args:
        what: What the loop does, for the log (``"renewing leases"``).
        logger: Where failures are logged.
        first: The delay after one failure; it doubles with each further failure in a row.
        cap: The longest delay.
        clock: A monotonic clock (tests pass a fake one).
    """

    def __init__(
        self,
        what: str,
        logger: logging.Logger,
        *,
        first: float = FIRST_DELAY,
        cap: float = MAX_DELAY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self.failures = 0
        """Rounds that failed in a row (0 after a success)."""
        self.delay: float | None = None
        """Seconds to wait after the last failure; None while the loop is not failing."""
        self._logger = logger
        self._first = first
        self._cap = cap
        self._clock = clock
        self._retry_at = 0.0

    @contextmanager
    def round(self) -> Iterator[None]:
        """Runs one round of the loop: an exception is logged and counted, not raised; success resets."""
        try:
            yield
        except Exception as e:
            self.failed(e)
        else:
            self.succeeded()

    def succeeded(self) -> None:
        """Forgets the failures (for a round that lasts long, once it is known to be working)."""
        if self.failures:
            self._logger.info("%s works again after %d failure(s)", self.what, self.failures)
        self.failures = 0
        self.delay = None
        self._retry_at = 0.0

    def due(self) -> bool:
        """Whether the delay after the last failure (if any) is over."""
        return self._clock() >= self._retry_at

    def failed(self, error: Exception) -> float:
        """Counts a failure and logs it (a ``RedisError`` in one line, anything else with its
        traceback); returns the delay to wait before the next attempt."""
        self.failures += 1
        self.delay = min(self._cap, self._first * 2 ** min(self.failures - 1, 32))
        self._retry_at = self._clock() + self.delay
        self._logger.warning(
            "%s failed: %s (%s); retrying in %.1f s",
            self.what,
            error,
            type(error).__name__,
            self.delay,
            exc_info=None if isinstance(error, redis.RedisError) else error,
        )
        return self.delay

"""kombu's Redis transport, building one Redis client per channel rather than one per command.

kombu's Redis channel wraps its connection pool in a new ``redis.Redis`` object
for every command it sends outside the event loop (``conn_or_acquire``): twice
per task, when a message is taken (recorded as unacknowledged) and when it is
acknowledged. redis-py 8 spends about 0.17 ms building one, on the worker's main
process and, for the first, before the task reaches a pool process. This
channel builds one and keeps it while its pool lasts; the pool, the commands
and every other behaviour are kombu's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    """A kombu Redis channel that reuses one client object over its connection pool."""

    _kept: redis.Redis | None = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        kept = self._kept
        if kept is None or kept.connection_pool is not self.pool:
            kept = self._kept = self._create_client()
        yield kept


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel

"""Redis clients: one bounded pool per process, shared by every request and task in it."""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from common.config import Settings

REFUSALS = ("OOM", "READONLY", "BUSY", "MASTERDOWN", "LOADING")
"""Error codes with which a working Redis refuses a command for now: at ``maxmemory``, a replica
after a failover, a script running too long, a replica that lost its master, loading its data."""

SOCKET_TIMEOUT = 5.0
"""Seconds a single Redis command may take before the caller sees a timeout (and a 503)."""


def redis_client(settings: Settings, *, retries: int = 1, url: str | None = None) -> redis.Redis:
    """Builds a client whose pool holds at most ``settings.redis_max_connections`` connections.

    The pool blocks (briefly) instead of opening more connections, so hundreds of
    concurrent requests in one process never mean hundreds of Redis connections.

    Args:
        settings: Where the URL and the pool size come from.
        retries: Attempts after a connection error, with exponential backoff (up
            to 2 s apart). Every inferq script is safe to repeat.
        url: A Redis URL other than ``settings.redis_url``.
    """
    pool = redis.BlockingConnectionPool.from_url(
        url or settings.required_redis_url,
        max_connections=settings.redis_max_connections,
        timeout=SOCKET_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        health_check_interval=30,
        decode_responses=True,
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.05), retries),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )
    return redis.Redis(connection_pool=pool)


def redis_unavailable(e: BaseException) -> bool:
    """Whether ``e`` means Redis cannot serve right now (down, slow, or refusing), not a bug.

    A refusal inside a store script reaches redis-py as a generic script error
    (``Error running script ...: -OOM command not allowed ...`` on Redis 6), so
    the message is read as well as the class.
    """
    if isinstance(e, (redis.ConnectionError, redis.TimeoutError, redis.exceptions.ReadOnlyError)):
        return True
    if isinstance(e, (redis.exceptions.OutOfMemoryError, redis.exceptions.MasterDownError)):
        return True
    if isinstance(e, redis.ResponseError):
        message = str(e)
        return any(message.startswith(f"{code} ") or f"-{code} " in message for code in REFUSALS)
    return False


def redis_clock(client: redis.Redis) -> float:
    """The Redis server's time (unix seconds): the one clock every process shares."""
    seconds, microseconds = client.time()
    return seconds + microseconds / 1_000_000

"""Redis clients: one bounded pool per process, shared by every request and task in it.

Every Redis client inferq makes is built here, from ``INFERQ_REDIS_URL``: the
store's (and the notifier's subscription, which shares its pool), the Celery
broker's (:func:`broker_settings`) and the rate limiter's
(:func:`limiter_storage`). A ``sentinel://`` URL makes each of them ask the
Sentinels where the master is whenever it opens a connection, so a failover
is followed by reconnecting: a connection to a demoted master is dropped
(redis-py turns its ``READONLY`` into ``ConnectionError("The previous master
is now a slave")``) and the next one goes to the new master. How connections
follow the master, and how acknowledged writes are confirmed on it, is
``common.connections.masters``.
"""

from __future__ import annotations

import ssl
from typing import Any

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry
from redis.sentinel import SentinelConnectionPool

from common.config import Settings
from common.config.sentinel_url import SentinelUrl
from common.connections.masters import MasterConnection, MasterSSLConnection, SettledSentinels

REFUSALS = ("OOM", "READONLY", "BUSY", "MASTERDOWN", "LOADING")
"""Error codes with which a working Redis refuses a command for now: at ``maxmemory``, a replica
after a failover, a script running too long, a replica that lost its master, loading its data."""

SOCKET_TIMEOUT = 5.0
"""Seconds a single Redis command may take before the caller sees a timeout (and a 503)."""

SENTINEL_TIMEOUT = 1.0
"""Seconds a question to one Sentinel may take before the next Sentinel is asked."""


class BlockingSentinelPool(SentinelConnectionPool, redis.BlockingConnectionPool):
    """redis-py's Sentinel pool, bounded like :class:`redis.BlockingConnectionPool`: a full pool
    makes callers wait (briefly) instead of opening more connections."""


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
    url = url or settings.required_redis_url
    options: dict[str, Any] = {
        "max_connections": settings.redis_max_connections,
        "timeout": SOCKET_TIMEOUT,
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": SOCKET_TIMEOUT,
        "health_check_interval": 30,
        "decode_responses": True,
        "retry": Retry(ExponentialBackoff(cap=2.0, base=0.05), retries),
        "retry_on_error": [redis.ConnectionError, redis.TimeoutError],
    }
    sentinels = SentinelUrl.parse(url)
    if sentinels is None:
        return redis.Redis(connection_pool=redis.BlockingConnectionPool.from_url(url, **options))
    manager = SettledSentinels(list(sentinels.hosts), sentinel_kwargs=_sentinel_kwargs(settings, sentinels))
    pool = BlockingSentinelPool(
        settings.redis_master,
        manager,
        db=sentinels.db,
        username=sentinels.username,
        password=sentinels.password,
        connection_class=MasterSSLConnection if sentinels.tls else MasterConnection,
        **options,
    )
    return redis.Redis(connection_pool=pool)


def _sentinel_kwargs(settings: Settings, sentinels: SentinelUrl) -> dict[str, Any]:
    """How to talk to the Sentinels themselves: quickly (a dead one is skipped), with their own
    password (never the Redis one), over TLS when the URL says ``sentinels://``.

    Without retries: the next Sentinel is the retry. redis-py's default (three, with
    growing random pauses) spent ~4 s on each dead Sentinel before asking the next.
    """
    return {
        "socket_timeout": SENTINEL_TIMEOUT,
        "socket_connect_timeout": SENTINEL_TIMEOUT,
        "retry": Retry(NoBackoff(), 0),
        "password": settings.sentinel_password,
        **({"ssl": True} if sentinels.tls else {}),
    }


def broker_settings(settings: Settings) -> dict[str, Any]:
    """Celery's ``broker_url`` and ``broker_transport_options`` (and ``broker_use_ssl``) for
    ``INFERQ_REDIS_URL``.

    A Sentinel URL becomes kombu's ``sentinel://h1:26379;sentinel://h2:26379/db``
    (with the Redis credentials on each) and the master name and Sentinel
    password as transport options; kombu's Sentinel channel then builds its
    pool with ``Sentinel.master_for``, as :func:`redis_client` does.
    """
    url = settings.required_redis_url
    options: dict[str, Any] = {"visibility_timeout": settings.visibility_timeout}
    sentinels = SentinelUrl.parse(url)
    if sentinels is None:
        return {"broker_url": url, "broker_transport_options": options}
    credentials = ""
    if sentinels.password:
        credentials = f"{sentinels.username or ''}:{sentinels.password}@"
    broker = ";".join(
        f"sentinel://{credentials}{host}:{port}/{sentinels.db}" for host, port in sentinels.hosts
    )
    options["master_name"] = settings.redis_master
    options["sentinel_kwargs"] = _sentinel_kwargs(settings, sentinels)
    found: dict[str, Any] = {"broker_url": broker, "broker_transport_options": options}
    if sentinels.tls:
        found["broker_use_ssl"] = {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    return found


def limiter_storage(settings: Settings) -> tuple[str, dict[str, Any]]:
    """flask-limiter's ``storage_uri`` and ``storage_options`` for ``INFERQ_REDIS_URL``.

    limits names Sentinels ``redis+sentinel://[:password@]h1:26379,h2:26379/<master>``;
    the database and the Sentinels' password travel as options (without one, limits
    would send the Redis password to the Sentinels), and counters are read from the master.
    """
    url = settings.required_redis_url
    sentinels = SentinelUrl.parse(url)
    if sentinels is None:
        return url, {}
    credentials = ""
    if sentinels.password:
        credentials = f"{sentinels.username or ''}:{sentinels.password}@"
    hosts = ",".join(f"{host}:{port}" for host, port in sentinels.hosts)
    uri = f"redis+sentinel://{credentials}{hosts}/{settings.redis_master}"
    options = {
        "db": sentinels.db,
        # limits would read counters from a replica: stale counts, and every check stalled
        # while the replicas are (bench/failover.py --lag).
        "use_replicas": False,
        "socket_timeout": SOCKET_TIMEOUT,
        "sentinel_kwargs": _sentinel_kwargs(settings, sentinels),
        **({"ssl": True} if sentinels.tls else {}),
    }
    return uri, options


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

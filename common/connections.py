"""Redis clients: one bounded pool per process, shared by every request and task in it.

Every Redis client inferq makes is built here, from ``INFERQ_REDIS_URL``: the
store's (and the notifier's subscription, which shares its pool), the Celery
broker's (:func:`broker_settings`) and the rate limiter's
(:func:`limiter_storage`). A ``sentinel://`` URL makes each of them ask the
Sentinels where the master is whenever it opens a connection, so a failover
is followed by reconnecting: a connection to a demoted master is dropped
(redis-py turns its ``READONLY`` into ``ConnectionError("The previous master
is now a slave")``) and the next one goes to the new master.
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
import weakref
from typing import Any

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.retry import Retry
from redis.sentinel import (
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)

from common.config import Settings
from common.config.sentinel_url import SentinelUrl

logger = logging.getLogger(__name__)

REFUSALS = ("OOM", "READONLY", "BUSY", "MASTERDOWN", "LOADING")
"""Error codes with which a working Redis refuses a command for now: at ``maxmemory``, a replica
after a failover, a script running too long, a replica that lost its master, loading its data."""

SOCKET_TIMEOUT = 5.0
"""Seconds a single Redis command may take before the caller sees a timeout (and a 503)."""

SENTINEL_TIMEOUT = 1.0
"""Seconds a question to one Sentinel may take before the next Sentinel is asked."""

WATCH_INTERVAL = 1.0
"""Seconds between two questions of a process's :class:`MasterWatch` to the Sentinels."""


REPLICAS_ACK_TIMEOUT_MS = 1000
"""Milliseconds a write waits for ``INFERQ_REDIS_REPLICAS_ACK`` replicas (``WAIT``) before it is
taken as unavailable: replicas on a working network answer within a few milliseconds."""

SLOW_WRITE = 0.5
"""Seconds past which an acknowledged write is confirmed with the Sentinels (:func:`confirm_master`):
one that took longer may have waited on a master that was paused and replaced meanwhile."""


class ReplicasBehind(redis.ConnectionError):
    """Fewer replicas than ``INFERQ_REDIS_REPLICAS_ACK`` confirmed a write in time.

    The write is on the master, but a failover now could lose it, so it does not
    count yet: callers treat it like a lost connection (a ``503``, a retry), and
    every inferq script is safe to repeat.

    Attributes:
        acked: How many replicas confirmed it.
        wanted: How many were asked for.
    """

    def __init__(self, acked: int, wanted: int) -> None:
        super().__init__(f"only {acked} of {wanted} replica(s) confirmed the write")
        self.acked = acked
        self.wanted = wanted


class MasterReplaced(ReplicasBehind):
    """The server an acknowledged write went to is not the master the Sentinels name now.

    A master paused past the Sentinels' down-after (a frozen VM) answers every
    request that waited on it the moment it wakes, and a replica the Sentinels
    have not yet pointed at the new master still acknowledges it (``WAIT``).
    Then that replica resyncs from the new master and the write is gone, so it
    does not count: like any :class:`ReplicasBehind`, a create is answered
    ``503`` and an ending is retried, on the new master.
    """

    def __init__(self, server: tuple[str, int] | None, acked: int, wanted: int) -> None:
        super().__init__(acked, wanted)
        self.args = (f"the write went to {server}, which the Sentinels no longer name master",)
        self.server = server


_SENT = threading.local()
"""Per thread: ``address``, the server of the last command this thread sent on a
:class:`MasterConnection` (what :func:`confirm_master` asks about)."""


class MasterConnection(SentinelManagedConnection):
    """A connection to the master the Sentinels name, asked again every time it (re)connects.

    redis-py's own asks only when the pool hands out a connection. A command that
    fails on the wire (the master killed under it) is retried on the same
    connection, and redis-py 8 reconnects that one to the address it had: the
    dead master, until every retry is spent (13 s here). A run's ending lost so
    would let its lease lapse and the prediction run twice (``bench/failover.py
    --lag``).
    """

    def connect(self) -> None:
        check = self.connection_pool.check_connection
        self.retry.call_with_retry(lambda: self.connect_check_health(check), lambda error: None)

    def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True) -> None:
        if self._sock is None:
            self.host, self.port = self.connection_pool.get_master_address()
        super().connect_check_health(check_health, retry_socket_connect=False)
        WATCH.add(self)

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        super().send_packed_command(command, check_health)
        _SENT.address = (self.host, int(self.port))


class MasterWatch:
    """Cuts this process's connections to a Redis the Sentinels no longer name master.

    A master paused past the Sentinels' down-after (a frozen VM, a stalled
    disk) is replaced while it sleeps. Woken, it still calls itself master, and
    keeps every connection it had, until the Sentinels demote it: up to ~10 s
    later, as they look at a former master's role only so often. Meanwhile a
    worker's broker consumer blocked on it hears of no task, and a subscription
    hears no news. Once every ``WATCH_INTERVAL`` seconds the watch asks the
    Sentinels where the master is and shuts the socket of every
    :class:`MasterConnection` to another server: its owner sees the connection
    closed and reconnects through the Sentinels, as after any dropped connection.

    One per process, started by the first connection made in it (a forked
    process starts its own).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: weakref.WeakSet[MasterConnection] = weakref.WeakSet()
        self._pid = 0

    def add(self, connection: MasterConnection) -> None:
        """Watches ``connection`` while it lives."""
        with self._lock:
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._connections = weakref.WeakSet()
                threading.Thread(target=self._run, name="inferq-master-watch", daemon=True).start()
            self._connections.add(connection)

    def cut_stale(self) -> int:
        """Shuts every watched connection to a server the Sentinels do not name master; returns how
        many. A group whose Sentinels name none now (mid-failover, or none answers) is left alone."""
        with self._lock:
            connections = list(self._connections)
        masters: dict[tuple[Any, ...], tuple[str, int] | None] = {}
        cut = 0
        for connection in connections:
            sock = connection._sock
            if sock is None:
                continue
            pool = connection.connection_pool
            group = _sentinel_group(pool)
            if group not in masters:
                try:
                    masters[group] = pool.sentinel_manager.discover_master(pool.service_name)
                except redis.RedisError:
                    masters[group] = None
            master = masters[group]
            if master is not None and (connection.host, int(connection.port)) != (master[0], int(master[1])):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                    cut += 1
                except OSError:
                    pass  # closed by its owner meanwhile
        if cut:
            logger.warning("cut %d connection(s) to a Redis the Sentinels no longer name master", cut)
        return cut

    def _run(self) -> None:
        while True:
            time.sleep(WATCH_INTERVAL)
            try:
                self.cut_stale()
            except Exception:  # never let the watch die; the next turn looks again
                logger.exception("watching the Sentinels' master failed")


def _sentinel_group(pool: Any) -> tuple[Any, ...]:
    """The master name and Sentinels of a pool: pools that share them share the answer."""
    sentinels = tuple(
        (s.connection_pool.connection_kwargs.get("host"), s.connection_pool.connection_kwargs.get("port"))
        for s in pool.sentinel_manager.sentinels
    )
    return (pool.service_name, tuple(sorted(sentinels, key=str)))


WATCH = MasterWatch()
"""This process's watch over its :class:`MasterConnection`s."""


class MasterSSLConnection(MasterConnection, SentinelManagedSSLConnection):
    """:class:`MasterConnection` over TLS."""


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
    manager = Sentinel(list(sentinels.hosts), sentinel_kwargs=_sentinel_kwargs(settings, sentinels))
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


def follow_master(client: redis.Redis) -> None:
    """Asks the Sentinels, for a client that finds Redis through them, where the master is now;
    idle connections to a former one are dropped.

    For a write that fewer replicas than ``INFERQ_REDIS_REPLICAS_ACK`` confirmed
    (:class:`ReplicasBehind`): it may have gone to a master cut off from its
    replicas, which the Sentinels have already replaced. Both call themselves
    master until the Sentinels demote the old one (seconds later), so without
    asking, every retry would go to the old one and fall short again.
    """
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        try:
            pool.get_master_address()
        except redis.RedisError:
            pass  # no Sentinel answers now: the next attempt asks again


def confirm_master(client: redis.Redis, acked: int, wanted: int) -> None:
    """Raises :class:`MasterReplaced` unless the server this thread last sent a command to is the
    master the Sentinels name now (or no Sentinel answers); for a client that finds Redis through
    them, after a write acknowledged by ``acked`` replicas of ``wanted`` that took over ``SLOW_WRITE``.

    A write so slow may have waited out a pause in which its master was
    replaced (:class:`MasterReplaced`); every connection to it is then cut at
    once. Only slow writes ask: a fresh connection asks the Sentinels as it
    opens, and :class:`MasterWatch` cuts old ones to a replaced master within
    ``WATCH_INTERVAL`` (a fast write in that window is the gap left open).
    """
    pool = client.connection_pool
    if not isinstance(pool, SentinelConnectionPool):
        return
    server = getattr(_SENT, "address", None)
    try:
        host, port = pool.sentinel_manager.discover_master(pool.service_name)
    except redis.RedisError:
        raise MasterReplaced(server, acked, wanted) from None  # unconfirmed does not count
    if server != (host, int(port)):
        WATCH.cut_stale()  # the retry must not find an idle connection to it in the pool
        raise MasterReplaced(server, acked, wanted)


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

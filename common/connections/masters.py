"""The master a Sentinel group names: connections that follow it, and writes confirmed on it.

A :class:`MasterConnection` asks the Sentinels where the master is whenever it
(re)connects; the process's :class:`MasterWatch` cuts every one of them left on
a server the Sentinels no longer name. A write acknowledged by replicas
(``INFERQ_REDIS_REPLICAS_ACK``) counts only when enough of them have it
(:class:`ReplicasBehind`) and, when it was slow, only if its server is still
the master (:func:`confirm_master`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import weakref
from typing import Any, cast

import redis
from redis.sentinel import (
    MasterNotFoundError,
    Sentinel,
    SentinelConnectionPool,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)

logger = logging.getLogger(__name__)

WATCH_INTERVAL = 1.0
"""Seconds between two questions of a process's :class:`MasterWatch` to the Sentinels, when none of
them announces a new master meanwhile."""

IDLE_LOOK = 0.1
"""Seconds between two looks of a watch with no connection to watch (yet)."""

SUBSCRIBE_TIMEOUT = 1.0
"""Seconds a Sentinel gets to confirm the watch's subscription before the next one is tried."""


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
    hears no news. So the watch asks the Sentinels where the master is as soon
    as one of them announces a new one or a master down (:data:`NEWS`, heard on
    a subscription to one Sentinel of each group), and every ``WATCH_INTERVAL``
    seconds besides, and shuts the socket of every :class:`MasterConnection` to
    another server, or to the master they see down or are replacing: its owner
    sees the connection closed and reconnects through the Sentinels
    (:class:`SettledSentinels`: not while a failover runs), as after any
    dropped connection. A master asleep when the Sentinels agree it is down so
    has no connection of inferq's left when it wakes.

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
        """Shuts every watched connection to a server the Sentinels do not name master, or to one
        they see down or are replacing (:meth:`SettledSentinels.survey`); returns how many. A group
        whose Sentinels do not answer, or disagree, is left alone."""
        with self._lock:
            connections = list(self._connections)
        masters: dict[tuple[Any, ...], tuple[tuple[str, int] | None, tuple[str, int] | None]] = {}
        cut = 0
        for connection in connections:
            sock = connection._sock
            if sock is None:
                continue
            pool = connection.connection_pool
            group = _sentinel_group(pool)
            if group not in masters:
                masters[group] = _survey(pool)
            master, replaced = masters[group]
            address = (connection.host, int(connection.port))
            if (master is not None and address != master) or address == replaced:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                    cut += 1
                except OSError:
                    pass  # closed by its owner meanwhile
        if cut:
            logger.warning("cut %d connection(s) to a Redis that is not the Sentinels' settled master", cut)
        return cut

    def _run(self) -> None:
        news = SwitchNews()
        while True:
            with self._lock:
                connections = list(self._connections)
            try:
                news.wait({_sentinel_group(c.connection_pool): c.connection_pool for c in connections})
                self.cut_stale()
            except Exception:  # never let the watch die; the next turn looks again
                logger.exception("watching the Sentinels' master failed")
                time.sleep(WATCH_INTERVAL)


NEWS = ("+switch-master", "+odown")
"""What the watch hears from a Sentinel: a new master, and a master down by the Sentinels'
agreement (a failover follows: its connections are cut while it is down, before it can wake)."""


class SwitchNews:
    """The watch's ears: a subscription to :data:`NEWS` on one Sentinel of each group (the next one
    when it stops answering)."""

    def __init__(self) -> None:
        self._subscriptions: dict[tuple[Any, ...], tuple[int, Any]] = {}

    def follow(self, groups: dict[tuple[Any, ...], Any]) -> None:
        """Subscribes to each of ``groups`` (group → a pool of it) not yet followed, and stops
        following those no longer among them."""
        for gone in [group for group in self._subscriptions if group not in groups]:
            self._drop(gone)
            del self._subscriptions[gone]
        for group, pool in groups.items():
            if self._subscriptions.get(group, (0, None))[1] is None:
                self._subscribe(group, pool)

    def wait(self, groups: dict[tuple[Any, ...], Any]) -> bool:
        """Follows ``groups``; returns True once a Sentinel of theirs announced a new master or a
        master down, False after ``WATCH_INTERVAL`` seconds without."""
        self.follow(groups)
        if not groups:
            time.sleep(IDLE_LOOK)
            return False
        share = WATCH_INTERVAL / len(groups)
        for group in groups:
            started = time.monotonic()
            pubsub = self._subscriptions[group][1]
            try:
                while pubsub is not None and (left := share - (time.monotonic() - started)) > 0:
                    if pubsub.get_message(ignore_subscribe_messages=True, timeout=left) is not None:
                        return True
            except (redis.RedisError, OSError):
                self._drop(group)
            left = share - (time.monotonic() - started)
            if left > 0:
                time.sleep(left)
        return False

    def _subscribe(self, group: tuple[Any, ...], pool: Any) -> None:
        """Subscribes on the group's next Sentinel, confirmed; if it does not answer, the group is
        polled alone until the next turn tries the one after."""
        index = self._subscriptions.get(group, (0, None))[0]
        sentinels = pool.sentinel_manager.sentinels
        pubsub = sentinels[index % len(sentinels)].pubsub()
        try:
            pubsub.subscribe(*NEWS)
            confirmed = pubsub.get_message(timeout=SUBSCRIBE_TIMEOUT)
        except (redis.RedisError, OSError):
            confirmed = None
        if confirmed is None:
            pubsub.close()
            self._subscriptions[group] = (index + 1, None)
        else:
            self._subscriptions[group] = (index, pubsub)

    def _drop(self, group: tuple[Any, ...]) -> None:
        """Closes the group's subscription; the next is made on its next Sentinel."""
        index, pubsub = self._subscriptions.get(group, (0, None))
        if pubsub is not None:
            pubsub.close()
        self._subscriptions[group] = (index + 1, None)


def _survey(pool: Any) -> tuple[tuple[str, int] | None, tuple[str, int] | None]:
    """The pool's settled master, or the one being replaced (:meth:`SettledSentinels.survey`);
    ``(None, None)`` when neither is known."""
    manager = pool.sentinel_manager
    try:
        if isinstance(manager, SettledSentinels):
            return manager.survey(pool.service_name)
        host, port = manager.discover_master(pool.service_name)
        return (host, int(port)), None
    except redis.RedisError:
        return None, None


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
    settled master the Sentinels name now (:meth:`SettledSentinels.discover_master`; unconfirmed,
    none answering, does not count either); for a client that finds Redis through them, after a
    write acknowledged by ``acked`` replicas of ``wanted`` that took over ``SLOW_WRITE``.

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


NOT_SETTLED = {"o_down", "failover_in_progress"}
"""A Sentinel's flags of a master that is down by the Sentinels' agreement, or being replaced."""


class SettledSentinels(Sentinel):
    """redis-py's ``Sentinel``, whose answer to "where is the master" is one no failover is replacing.

    redis-py takes the first Sentinel's answer. While a failover runs, only its
    leader knows (``failover_in_progress``), and until the leader has pointed the
    replicas at the new master every Sentinel names the old one: a master woken
    then would take writes that a replica not yet moved acknowledges, and that
    are lost when it moves. So every Sentinel is asked; the master is the one
    the newest configuration (``config-epoch``) names, and there is none while a
    Sentinel of that configuration sees it down by agreement (``o_down``) or is
    failing it over. A Sentinel that alone cannot reach it (``s_down``), or knows
    too few others, is passed over, as redis-py passes it over; one still on an
    older configuration (it missed a failover) is outvoted.
    """

    def discover_master(self, service_name: str) -> tuple[str, int]:
        master, replaced = self.survey(service_name)
        if master is None:
            why = "is being failed over" if replaced else "has no master all answering Sentinels agree on"
            raise MasterNotFoundError(f"{service_name!r} {why}")
        return master

    def survey(self, service_name: str) -> tuple[tuple[str, int] | None, tuple[str, int] | None]:
        """``(the settled master, None)``; ``(None, the master being replaced)`` while it is down by
        agreement or failed over; ``(None, None)`` when no Sentinel answers or they disagree."""
        newest: list[dict[str, Any]] = []
        for sentinel in self.sentinels:
            try:
                masters = cast(dict[str, dict[str, Any]], sentinel.sentinel_masters())
            except (redis.ConnectionError, redis.TimeoutError):
                continue
            state = masters.get(service_name)
            if not state:
                continue
            epoch = int(state.get("config-epoch") or 0)
            if not newest or epoch > int(newest[0].get("config-epoch") or 0):
                newest = [state]
            elif epoch == int(newest[0].get("config-epoch") or 0):
                newest.append(state)
        for state in newest:
            if _flags(state) & NOT_SETTLED:
                return None, self._address(state)
        addresses = {self._address(state) for state in newest if self.check_master_state(state, service_name)}
        return (addresses.pop(), None) if len(addresses) == 1 else (None, None)

    def _address(self, state: dict[str, Any]) -> tuple[str, int]:
        forced = self._force_master_ip
        return (forced if forced is not None else state["ip"], int(state["port"]))


def _flags(state: dict[str, Any]) -> set[str]:
    flags = state.get("flags") or ""
    return set(flags.split(",")) if isinstance(flags, str) else set(flags)

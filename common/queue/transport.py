"""kombu's Redis transport, with two costs taken off a task's path to its pool process.

- kombu's Redis channel wraps its connection pool in a new ``redis.Redis``
  object for every command it sends outside the event loop
  (``conn_or_acquire``): twice per task, when a message is taken (recorded as
  unacknowledged) and when it is acknowledged. redis-py 8 spends about 0.17 ms
  building one. :class:`Channel` builds one and keeps it while its pool lasts.
- kombu records a taken message as unacknowledged (``MULTI ZADD HSET EXEC``)
  and waits for Redis's reply before the message reaches Celery, so every
  task waited a round trip before a pool process could start it.
  :class:`QoS` sends the record after Celery has the message (in a worker, on
  the event loop's turn after the one on which the pool writes the task to its
  process) and reads the reply before its connection's next command. The
  record still reaches Redis before the task can be acknowledged: one
  connection carries both, in order. Acknowledgements are sent the same way,
  and a message settled before its record was sent needs neither.

A taken message is thus only in a worker's memory for a little longer (two
turns of its loop, well under a millisecond while a pool process is free). A
message lost then (the worker killed, or the record lost with its connection)
leaves its prediction waiting with a message neither queued nor recorded, and
recovery queues it again (``common.queue.recovery``), as it does for the same loss
under kombu's own order. Every other behaviour is kombu's.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import redis
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.utils.json import dumps

from common.connections.masters import MasterConnection, MasterSSLConnection

logger = logging.getLogger(__name__)


class QoS(kombu_redis.QoS):
    """kombu's Redis QoS, recording taken messages without waiting for Redis's reply.

    :meth:`hold` keeps a message's tag in memory while the consumer's callback
    runs; :meth:`record` then sends the record. A message acknowledged before
    it was recorded is never recorded, so its acknowledgement needs no command.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._unrecorded: set[str] = set()
        self._connection: Any = None
        self._connection_pool: Any = None
        self._unread = 0
        """Replies sent for and not yet read on ``_connection``."""

    def hold(self, message: Any, delivery_tag: str) -> None:
        """Counts ``message`` as delivered (for prefetch), without recording it in Redis yet."""
        with self._lock:
            virtual.QoS.append(self, message, delivery_tag)
            self._unrecorded.add(delivery_tag)

    def record(self, message: Any, delivery_tag: str) -> None:
        """Records a held message as unacknowledged in Redis, unless it was settled meanwhile
        (acknowledged or rejected)."""
        with self._lock:
            if delivery_tag not in self._unrecorded:
                return
            self._unrecorded.discard(delivery_tag)
            delivery = message.delivery_info
            payload = dumps([message._raw, delivery["exchange"], delivery["routing_key"]])
            self._send(
                ("ZADD", self._key(self.unacked_index_key), time.time(), delivery_tag),
                ("HSET", self._key(self.unacked_key), delivery_tag, payload),
            )

    def append(self, message: Any, delivery_tag: str) -> None:
        """Records a message taken outside :meth:`Channel.basic_consume`'s callback, as kombu does."""
        self.hold(message, delivery_tag)
        self.record(message, delivery_tag)

    def ack(self, delivery_tag: str) -> None:
        with self._lock:
            if delivery_tag in self._unrecorded:
                self._unrecorded.discard(delivery_tag)
            else:
                self._send(
                    ("ZREM", self._key(self.unacked_index_key), delivery_tag),
                    ("HDEL", self._key(self.unacked_key), delivery_tag),
                )
            virtual.QoS.ack(self, delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if requeue:  # kombu restores it by tag, which settles first (as restores at shutdown do)
            super().reject(delivery_tag, requeue=True)
        else:
            self.ack(delivery_tag)

    def restore_by_tag(self, tag: str, client: Any = None, leftmost: bool = False) -> None:
        self.settle()
        super().restore_by_tag(tag, client, leftmost)

    def restore_visible(self, *args: Any, **kwargs: Any) -> None:
        self.settle()
        super().restore_visible(*args, **kwargs)

    def settle(self) -> None:
        """Returns once every record and acknowledgement sent has reached Redis (kombu's restores
        read the records back)."""
        with self._lock:
            held = [(tag, self._delivered.get(tag)) for tag in self._unrecorded]
        for tag, message in held:
            if message is not None:
                self.record(message, tag)
        with self._lock:
            self._read_replies()

    def close(self) -> None:
        """Lets go of this QoS's connection (its channel has closed)."""
        with self._lock:
            self._forget_connection()

    def _key(self, name: str) -> str:
        return str(self.channel.global_keyprefix or "") + name

    def _send(self, *commands: tuple[Any, ...]) -> None:
        """Sends ``commands`` in one transaction; their replies are read before the next send.

        A failure is logged, not raised: the task has already been handed on,
        and what a lost record leaves behind is recovered (see the module docstring).
        """
        try:
            self._read_replies()
            connection = self._live_connection()
            transaction = [("MULTI",), *commands, ("EXEC",)]
            connection.send_packed_command(connection.pack_commands(transaction))
            self._unread += len(transaction)
        except redis.RedisError as e:
            self._forget_connection()
            logger.warning("could not record a broker message's state in Redis: %s", e)

    def _read_replies(self) -> None:
        try:
            while self._unread:
                self._unread -= 1
                self._connection.read_response()
        except redis.RedisError as e:
            self._forget_connection()
            logger.warning("a broker message's state may not have been recorded in Redis: %s", e)

    def _live_connection(self) -> Any:
        """:meth:`_own_connection`, replaced first if Redis has closed it: a send into a closed
        socket can succeed, and the record would be lost without a word."""
        connection = self._own_connection()
        try:
            closed = connection.can_read(timeout=0)  # no reply is owed, so anything to read is the end
        except redis.ConnectionError:
            closed = True
        if closed:
            self._forget_connection()
            connection = self._own_connection()
        return connection

    def _own_connection(self) -> Any:
        """This QoS's own connection from its channel's current pool."""
        pool = self.channel.pool
        if self._connection is None or self._connection_pool is not pool:
            self._forget_connection()
            self._connection, self._connection_pool = pool.get_connection(), pool
        return self._connection

    def _forget_connection(self) -> None:
        connection, pool = self._connection, self._connection_pool
        self._connection = self._connection_pool = None
        self._unread = 0
        if connection is not None:
            connection.disconnect()
            pool.release(connection)


class Channel(kombu_redis.Channel):
    """A kombu Redis channel that reuses one client object over its connection pool, and hands
    a taken message on before recording it."""

    QoS = QoS
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

    def close(self) -> None:
        super().close()
        if isinstance(self._qos, QoS):
            self._qos.close()

    def basic_consume(
        self, queue: str, no_ack: bool, callback: Callable[[Any], Any], consumer_tag: str, **kwargs: Any
    ) -> Any:
        tag = super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)
        if not no_ack and isinstance(self.qos, QoS):
            self.connection._callbacks[queue] = functools.partial(self._hand_on, callback)
        return tag

    def _hand_on(self, callback: Callable[[Any], Any], raw_message: Any) -> Any:
        """kombu's consume callback, with the message recorded after Celery has it, not before."""
        message = self.Message(raw_message, channel=self)
        qos = self.qos
        qos.hold(message, message.delivery_tag)
        try:
            return callback(message)
        finally:
            loop = self.connection.event_loop
            if loop is None:
                qos.record(message, message.delivery_tag)
            else:  # the pool writes the task to its process on the loop's next turn; record on the one after
                loop.call_soon(loop.call_soon, qos.record, message, message.delivery_tag)


class SentinelChannel(Channel, kombu_redis.SentinelChannel):
    """:class:`Channel` on the master the Sentinels name: its connections ask them again on every
    reconnect, and are cut when the Sentinels name another (``common.connections.masters.MasterWatch``),
    so a consumer blocked on a master that was replaced while paused moves to the new one."""

    connection_class = MasterConnection
    connection_class_ssl = MasterSSLConnection  # type: ignore[assignment]  # kombu names its own, alike


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with :class:`Channel`."""

    Channel = Channel
    event_loop: Any = None
    """The worker's event loop, once this transport is registered with one."""

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        super().register_with_event_loop(connection, loop)
        self.event_loop = loop


class SentinelTransport(Transport, kombu_redis.SentinelTransport):
    """kombu's Redis Sentinel transport with :class:`SentinelChannel`."""

    Channel = SentinelChannel

"""A Redis primary, two replicas and three Sentinels watching them, all on loopback: a failover to
test (``tests/integration/test_sentinel.py``) and to measure (``bench/failover.py``)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from common.processes.embedded_redis import EmbeddedRedis, free_port, server_binary

MASTER = "inferq"
"""The name the Sentinels monitor the primary by (``INFERQ_REDIS_MASTER``)."""

DOWN_AFTER_MS = 1000
"""Milliseconds without an answer before a Sentinel thinks the master is down."""

FAILOVER_TIMEOUT_MS = 5000
"""Sentinel's ``failover-timeout``: how long one failover attempt may take before another is tried."""

BACK_WITHIN = (DOWN_AFTER_MS + FAILOVER_TIMEOUT_MS) / 1000 + 5
"""Seconds after the primary dies by which the API must accept creates again (issue #26's bound);
inferq's leases (``INFERQ_LEASE_TTL``) are kept above it, so that none lapses during the failover."""

START_TIMEOUT = 15.0
"""Seconds for the group to come up (the replica synced, the Sentinels agreeing on it)."""


class SentinelGroup:
    """A primary, two replicas and three Sentinels, each a process of its own, stopped by :meth:`stop`.

    Two replicas, so that after a failover the new master still has one: with
    ``INFERQ_REDIS_REPLICAS_ACK=1`` a master without replicas accepts nothing.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.servers = [
            EmbeddedRedis(root / "primary", appendonly=True),
            EmbeddedRedis(root / "replica", appendonly=True),
            EmbeddedRedis(root / "replica-2", appendonly=True),
        ]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self._sentinels: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """``INFERQ_REDIS_URL`` naming the three Sentinels."""
        return "sentinel://" + ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports) + "/0"

    def start(self) -> SentinelGroup:
        """Starts everything and returns once the Sentinels see the replica (or stops what it
        started, and raises)."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> SentinelGroup:
        primary, *replicas = self.servers
        primary.start()
        for replica in replicas:
            replica.start()
            with self.client(replica) as client:
                client.replicaof("127.0.0.1", str(primary.port))
        for port in self.sentinel_ports:
            self.start_sentinel(port, primary.port)
        for replica in replicas:
            self._wait(lambda r=replica: self._synced(primary, r), "the replicas synced")
        self._wait(lambda: self._sentinels_see_replica(), "the Sentinels saw the replica")
        return self

    def start_sentinel(self, port: int, primary_port: int) -> None:
        """Starts (or starts again) the Sentinel on ``port``, with a config file of its own."""
        conf = self.root / f"sentinel-{port}" / "sentinel.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {conf.parent}\nlogfile {conf.parent / 'sentinel.log'}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2\n"
            f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {MASTER} 1\n"
        )
        command = [server_binary(), str(conf), "--sentinel"]
        self.stop_sentinel(port)  # never two on one port: the one before is reaped
        self._sentinels[port] = subprocess.Popen(command, stdin=subprocess.DEVNULL)

    def stop_sentinel(self, port: int) -> None:
        """Stops one Sentinel."""
        process = self._sentinels.pop(port, None)
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def master_port(self) -> int | None:
        """The port of the master the Sentinels name now (the first that answers)."""
        for port in self.sentinel_ports:
            if port not in self._sentinels:
                continue
            try:
                with self.sentinel(port) as sentinel:
                    host_port = sentinel.sentinel_get_master_addr_by_name(MASTER)
            except redis.RedisError:
                continue
            if host_port:
                return int(host_port[1])
        return None

    def server_on(self, port: int) -> EmbeddedRedis:
        """The server listening on ``port``."""
        return next(server for server in self.servers if server.port == port)

    def replace_paused_master(
        self, within: float = BACK_WITHIN, paused: Callable[[], None] | None = None
    ) -> int:
        """Freezes the master the Sentinels name (``SIGSTOP``) until they name another (within
        ``within`` seconds), then lets it run on; returns its port. Woken, it calls itself master
        until the Sentinels demote it, seconds later. ``paused`` is called once it is frozen."""
        old_port = self.master_port()
        assert old_port is not None
        with self.paused(self.server_on(old_port)):
            if paused is not None:
                paused()
            self._wait(lambda: self.master_port() not in (None, old_port), "another master", within)
        return old_port

    @contextmanager
    def paused(self, server: EmbeddedRedis) -> Iterator[None]:
        """``server`` frozen (``SIGSTOP``) while the block runs, then let run on (``SIGCONT``)."""
        pid = self.pid(server)
        os.kill(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(pid, signal.SIGCONT)

    def pid(self, server: EmbeddedRedis) -> int:
        """The process id of ``server``."""
        with self.client(server) as client:
            return int(client.info("server")["process_id"])

    def name_master(self, server: EmbeddedRedis, sentinel_ports: list[int] | None = None) -> None:
        """Has every Sentinel (or those on ``sentinel_ports``) monitor ``server`` as the master from
        now on, as a failover to it would, while the master they named goes on (with its replicas)
        unaware."""
        for port in self.sentinel_ports if sentinel_ports is None else sentinel_ports:
            with self.sentinel(port) as sentinel:
                sentinel.sentinel_remove(MASTER)
                sentinel.sentinel_monitor(MASTER, "127.0.0.1", server.port, 2)

    def stop(self) -> None:
        """Stops every process of the group."""
        for port in list(self._sentinels):
            self.stop_sentinel(port)
        for server in self.servers:
            server.stop(kill=True)

    @staticmethod
    def client(server: EmbeddedRedis) -> redis.Redis:
        """A plain client of one server (not through the Sentinels)."""
        return redis.Redis(port=server.port, decode_responses=True, socket_timeout=5)

    def sentinel(self, port: int) -> redis.Redis:
        """A client of the Sentinel on ``port``."""
        return redis.Redis(port=port, decode_responses=True, socket_timeout=1, socket_connect_timeout=1)

    @staticmethod
    def _synced(primary: EmbeddedRedis, replica: EmbeddedRedis) -> bool:
        with SentinelGroup.client(replica) as client:
            info = client.info("replication")
        return bool(info.get("master_link_status") == "up")

    def _sentinels_see_replica(self) -> bool:
        for port in self.sentinel_ports:
            with self.sentinel(port) as sentinel:
                try:
                    if not (sentinel.sentinel_slaves(MASTER) and sentinel.sentinel_sentinels(MASTER)):
                        return False
                except redis.RedisError:
                    return False
        return True

    @staticmethod
    def _wait(condition: object, what: str, timeout: float = START_TIMEOUT) -> None:
        assert callable(condition)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if condition():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"not {what} within {timeout:g} s")
            time.sleep(0.1)

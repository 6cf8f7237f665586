"""A working Redis that refuses writes for a while, as it does at ``maxmemory`` or after a failover."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest
import redis

from common.processes.embedded_redis import free_port


@contextmanager
def out_of_memory(client: redis.Redis) -> Iterator[str]:
    """Redis at ``maxmemory``: writes are refused with ``OOM command not allowed`` until the block ends."""
    before = client.config_get("maxmemory")["maxmemory"]
    client.config_set("maxmemory", 1)
    try:
        with pytest.raises(redis.exceptions.OutOfMemoryError):
            client.set("inferq-tests:probe", "1")
        yield "OOM command not allowed"
    finally:
        client.config_set("maxmemory", before)


@contextmanager
def read_only(client: redis.Redis) -> Iterator[str]:
    """Redis a replica (of a master that is not there, as after a failover): writes are refused with
    ``READONLY`` until the block ends."""
    client.replicaof("127.0.0.1", str(free_port()))
    try:
        with pytest.raises(redis.exceptions.ReadOnlyError):
            client.set("inferq-tests:probe", "1")
        yield "READONLY"
    finally:
        client.replicaof("NO", "ONE")


REFUSALS: dict[str, Callable[[redis.Redis], AbstractContextManager[str]]] = {
    "oom": out_of_memory,
    "readonly": read_only,
}
"""Each way of refusing writes, by the name tests parametrize on."""

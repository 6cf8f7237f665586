"""Which Redis errors mean "Redis cannot serve right now" rather than a bug."""

from __future__ import annotations

import pytest
import redis
import redis.sentinel

from common.config import Settings
from common.connections import (
    BlockingSentinelPool,
    broker_settings,
    limiter_storage,
    redis_client,
    redis_unavailable,
)
from common.connections.masters import MasterConnection, ReplicasBehind, SettledSentinels
from common.queue.broker import celery_config


@pytest.mark.parametrize(
    "error",
    [
        redis.ConnectionError("Connection reset by peer"),
        redis.TimeoutError("Timeout reading from socket"),
        redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
        redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
        redis.ConnectionError("The previous master is now a slave"),
        redis.sentinel.MasterNotFoundError("No master found for 'inferq'"),
        ReplicasBehind(0, 1),
        redis.ResponseError("BUSY Redis is busy running a script. You can only call SCRIPT KILL."),
        redis.ResponseError(
            "Error running script (call to f_c78): @user_script:1: @user_script: 1: "
            "-OOM command not allowed when used memory > 'maxmemory'."
        ),
        redis.ResponseError(
            "Error running script (call to f_c78): @user_script:1: @user_script: 1: "
            "-READONLY You can't write against a read only replica."
        ),
    ],
)
def test_refusals_and_outages_are_unavailable(error: Exception) -> None:
    assert redis_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        redis.ResponseError("Error running script (call to f_1): @user_script:3: attempt to index nil"),
        redis.exceptions.NoScriptError("No matching script."),
        ValueError("OOM in a message of another kind"),
    ],
)
def test_bugs_are_not_unavailable(error: Exception) -> None:
    assert not redis_unavailable(error)


SENTINELS = "sentinel://:secret@10.0.0.1:26379,10.0.0.2,10.0.0.3:26380/2"


def sentinel_settings(**overrides: object) -> Settings:
    return Settings.defaults(redis_url=SENTINELS, redis_master="inferq", **overrides)


def test_a_sentinel_url_builds_a_bounded_pool_that_asks_the_sentinels() -> None:
    client = redis_client(sentinel_settings(sentinel_password="watchers", redis_max_connections=7))
    pool = client.connection_pool
    assert isinstance(pool, BlockingSentinelPool) and pool.max_connections == 7
    assert pool.connection_class is MasterConnection  # asks the Sentinels again on each reconnect
    assert pool.service_name == "inferq"
    assert pool.connection_kwargs["password"] == "secret" and pool.connection_kwargs["db"] == 2
    sentinels = pool.sentinel_manager.sentinels
    assert [
        (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
        for s in sentinels
    ] == [("10.0.0.1", 26379), ("10.0.0.2", 26379), ("10.0.0.3", 26380)]
    assert all(s.connection_pool.connection_kwargs["password"] == "watchers" for s in sentinels)
    # A Sentinel that does not answer is skipped for the next one at once, not retried for seconds.
    assert all(s.get_retry().get_retries() == 0 for s in sentinels)


def test_a_sentinel_url_makes_kombus_sentinel_broker() -> None:
    config = celery_config(sentinel_settings())
    assert config["broker_url"] == (
        "sentinel://:secret@10.0.0.1:26379/2;sentinel://:secret@10.0.0.2:26379/2;"
        "sentinel://:secret@10.0.0.3:26380/2"
    )
    # kombu's Sentinel transport, on connections that leave a master the Sentinels no longer name
    assert config["broker_transport"] == "common.queue.transport:SentinelTransport"
    options = config["broker_transport_options"]
    assert options["master_name"] == "inferq" and options["sentinel_kwargs"]["password"] is None
    assert options["visibility_timeout"] == sentinel_settings().visibility_timeout


def test_a_plain_url_keeps_inferqs_transport() -> None:
    settings = Settings.defaults(redis_url="redis://127.0.0.1:6390/0")
    assert broker_settings(settings)["broker_url"] == "redis://127.0.0.1:6390/0"
    assert celery_config(settings)["broker_transport"] == "common.queue.transport:Transport"
    assert limiter_storage(settings) == ("redis://127.0.0.1:6390/0", {})


def test_a_sentinel_url_makes_limits_sentinel_storage() -> None:
    uri, options = limiter_storage(sentinel_settings(sentinel_password="watchers"))
    assert uri == "redis+sentinel://:secret@10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26380/inferq"
    assert options["db"] == 2 and options["sentinel_kwargs"]["password"] == "watchers"
    assert options["use_replicas"] is False  # counts read where they are written


def test_sentinels_over_tls() -> None:
    settings = Settings.defaults(redis_url="sentinels://h1,h2/0", redis_master="m")
    connection_class = redis_client(settings).connection_pool.connection_class
    assert issubclass(connection_class, MasterConnection) and issubclass(
        connection_class, redis.SSLConnection
    )
    assert broker_settings(settings)["broker_use_ssl"]


class FakeSentinel:
    """A Sentinel's answer to ``SENTINEL MASTERS`` (or its silence)."""

    def __init__(self, state: dict[str, object] | None) -> None:
        self.state = state

    def sentinel_masters(self) -> dict[str, object]:
        if self.state is None:
            raise redis.ConnectionError("no answer")
        return {"inferq": self.state}


def seen(port: int, epoch: int = 1, flags: str = "master") -> dict[str, object]:
    """A master's state as redis-py parses it (with its flags' booleans)."""
    marks = set(flags.split(","))
    return {
        "ip": "10.0.0.9",
        "port": port,
        "config-epoch": epoch,
        "flags": flags,
        "num-other-sentinels": 2,
        **{
            key: flag in marks
            for key, flag in (("is_master", "master"), ("is_sdown", "s_down"), ("is_odown", "o_down"))
        },
    }


def settled(*states: dict[str, object] | None) -> tuple[str, int]:
    manager = SettledSentinels([])
    manager.sentinels = [FakeSentinel(state) for state in states]  # type: ignore[misc]
    return manager.discover_master("inferq")


def test_the_settled_master_is_the_newest_configurations() -> None:
    assert settled(seen(1), seen(1), seen(1)) == ("10.0.0.9", 1)
    assert settled(None, seen(1)) == ("10.0.0.9", 1)  # one answer is enough
    assert settled(seen(1), seen(2, epoch=2), seen(2, epoch=2)) == ("10.0.0.9", 2)  # one missed a failover
    assert settled(seen(1, flags="master,s_down"), seen(1)) == ("10.0.0.9", 1)  # one cannot reach it alone


@pytest.mark.parametrize(
    "states",
    [
        # The failover's leader knows; the others go on naming the old master until it is done.
        (seen(1), seen(1, flags="master,failover_in_progress"), seen(1)),
        (seen(1, flags="master,s_down,o_down"), seen(1)),  # down by the Sentinels' agreement
        (seen(1), seen(2)),  # two masters in one configuration
        (None, None, None),  # nobody answers
        (seen(1, flags="master,s_down"),),
    ],
)
def test_there_is_no_settled_master_while_it_is_replaced_or_disputed(
    states: tuple[dict[str, object] | None, ...],
) -> None:
    with pytest.raises(redis.sentinel.MasterNotFoundError):
        settled(*states)

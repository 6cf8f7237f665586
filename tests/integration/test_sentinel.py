"""Redis Sentinel: the primary SIGKILLed under load, the replica promoted, nothing accepted lost.

The API and two workers find Redis through three Sentinels; a steady load of
creates (sync and async), streams and cancels runs through the failover. With
``INFERQ_REDIS_REPLICAS_ACK=1`` every prediction answered ``201`` ends in
exactly one terminal status and runs at most once; during the failover the API
answers ``503`` with ``Retry-After``, never a ``500`` or a hang. The same holds
when the primary is frozen until it is replaced and then woken, calling itself
master for seconds more: every client of inferq's leaves it at once.
"""

from __future__ import annotations

import collections
import threading
import time
from pathlib import Path

import httpx
import pytest
import redis

from common.config import Settings
from common.connections import masters, redis_client
from common.processes.embedded_redis import EmbeddedRedis
from tests.integration.sentinel_load import REQUEST_TIMEOUT, Load, inferq, running
from tests.integration.sentinels import BACK_WITHIN, FAILOVER_TIMEOUT_MS, MASTER, SentinelGroup
from tests.integration.terminals import Terminals
from workers.process import WORKER_REDIS_RETRIES

pytestmark = pytest.mark.slow


def test_a_command_cut_off_by_the_failover_is_retried_on_the_new_master(group: SentinelGroup) -> None:
    # redis-py retries a command whose connection broke on that same connection; reconnected to
    # the address it had, it would knock on the dead master until its retries ran out, and a
    # worker's ending would be lost (its lease lapsing, the prediction running twice).
    client = redis_client(
        Settings.defaults(redis_url=group.url, redis_master=MASTER), retries=WORKER_REDIS_RETRIES
    )
    old_port = group.master_port()
    assert old_port is not None and client.ping()
    answered: dict[str, object] = {}

    def blocked() -> None:
        try:
            answered["value"] = client.blpop(["nothing"], timeout=1)
        except redis.RedisError as e:
            answered["error"] = e

    thread = threading.Thread(target=blocked)
    thread.start()
    time.sleep(0.3)  # blocked on the master
    group.server_on(old_port).stop(kill=True)
    thread.join(60)
    assert answered == {"value": None}
    assert int(client.info("server")["tcp_port"]) == group.master_port() != old_port
    client.close()


def test_a_connection_blocked_on_a_master_replaced_while_paused_moves_to_the_new_one(
    group: SentinelGroup,
) -> None:
    # Woken, the old master still calls itself master, and would keep the clients that block on
    # it a second at a time (a worker's broker consumer, a subscription) until the Sentinels
    # demote it, ~10 s later: no task, no news meanwhile.
    client = redis_client(
        Settings.defaults(redis_url=group.url, redis_master=MASTER), retries=WORKER_REDIS_RETRIES
    )
    old_master = SentinelGroup.client(group.server_on(group.master_port() or 0))
    answered: dict[str, object] = {}

    def consuming() -> None:
        deadline = time.monotonic() + 60
        while "value" not in answered and time.monotonic() < deadline:
            try:
                if found := client.blpop(["news"], timeout=1):  # as kombu's consumer does
                    answered["value"] = found
                    answered["old master's role"] = old_master.info("replication")["role"]
            except redis.RedisError as e:
                answered["error"] = e

    assert client.ping()
    thread = threading.Thread(target=consuming)
    thread.start()
    time.sleep(0.3)  # blocked on the master
    group.replace_paused_master()
    new_master = SentinelGroup.client(group.server_on(group.master_port() or 0))
    new_master.rpush("news", "here")
    thread.join(70)
    # Taken from the new master before the old one was demoted: the watch moved the connection.
    assert answered == {"value": ("news", "here"), "old master's role": "master"}
    for opened in (client, new_master, old_master):
        opened.close()


def test_the_watch_hears_the_sentinels_announce_a_new_master(
    group: SentinelGroup, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A master asleep when it is replaced must have no connection of inferq's left when it wakes
    # (a write on one, acknowledged by a replica not yet repointed, would be lost): the watch cuts
    # them as the Sentinels announce the new master (+switch-master), not at its next turn.
    monkeypatch.setattr(masters, "WATCH_INTERVAL", 60.0)  # only the announcement ends a wait
    client = redis_client(Settings.defaults(redis_url=group.url, redis_master=MASTER))
    assert client.ping()
    followed = {("the group",): client.connection_pool}
    news = masters.SwitchNews()
    news.follow(followed)
    heard: list[bool] = []
    thread = threading.Thread(target=lambda: heard.append(news.wait(followed)))
    thread.start()
    old_port = group.master_port()
    with group.sentinel(group.sentinel_ports[1]) as sentinel:  # another Sentinel leads it
        sentinel.execute_command("SENTINEL", "FAILOVER", MASTER)
    thread.join(30)
    assert heard == [True]
    assert group.master_port() not in (None, old_port)
    news.follow({})
    client.close()


def test_a_failover_under_load_loses_nothing_and_runs_nothing_twice(
    group: SentinelGroup, tmp_path: Path
) -> None:
    with inferq(group, tmp_path, workers=2, queues=["tests.runs", "inferq.echo"]) as load:
        bodies = [load.create_async, load.create_sync, load.create_and_cancel, load.follow_streams]
        with running(load, bodies):
            time.sleep(3)
            old_primary = kill_the_master(group, load)
            time.sleep(3)  # some load on the new master

        assert load.problems == [], load.problems
        assert load.answers[503] > 0, load.answers  # the failover was seen
        assert all(text in ("one two three", "unfinished") for text in load.streamed), load.streamed
        assert_each_ended_once(group, load, {"succeeded", "cancelled"})

        _old_primary_rejoins_as_a_replica_nobody_writes_to(group, old_primary, load)


def test_two_failovers_in_a_row_with_a_sentinel_down(group: SentinelGroup, tmp_path: Path) -> None:
    group.stop_sentinel(group.sentinel_ports[0])  # the first one every client asks
    # Two Sentinels left can split their votes, and then elect again after a random delay of up to
    # a failover-timeout: a failover may take that much longer.
    within = BACK_WITHIN + FAILOVER_TIMEOUT_MS / 1000
    with inferq(group, tmp_path, failover=within) as load:
        with running(load, [load.create_async, load.create_sync]):
            time.sleep(2)
            first_at = time.monotonic()
            first = kill_the_master(group, load, within)
            rejoin(group, first)  # the second failover needs a replica left to promote after it
            # A Sentinel starts no failover of a master within twice the failover-timeout of its last.
            time.sleep(max(0.0, first_at + 2 * FAILOVER_TIMEOUT_MS / 1000 - time.monotonic()))
            kill_the_master(group, load, within)
            time.sleep(2)

        assert load.problems == [], load.problems
        assert_each_ended_once(group, load, {"succeeded"})


def test_a_master_paused_past_down_after_finds_itself_replaced_and_takes_nothing(
    group: SentinelGroup, tmp_path: Path
) -> None:
    # A master frozen (a VM paused, a long fork) is failed over; resumed, it still calls itself
    # master until the Sentinels demote it (up to ~10 s: they look at a former master's role
    # only so often). Everyone connected to it before writes there meanwhile: nothing it accepts
    # may count, and workers consuming its queue must find the new master's.
    with inferq(group, tmp_path, workers=2, queues=["tests.runs", "inferq.echo"]) as load:
        with running(load, [load.create_async, load.create_sync, load.create_and_cancel]):
            time.sleep(2)
            pause_the_master(group, load)  # asserts every consumer and subscription left it
            time.sleep(3)

        assert load.problems == [], load.problems
        # Those that hung on it are answered the moment it wakes, confirmed by a replica the
        # Sentinels have not yet moved to the new master: slow writes, each checked with them.
        assert_each_ended_once(group, load, {"succeeded", "cancelled"}, within=45)


def test_with_no_replica_a_create_is_refused_at_once_and_does_not_run(
    group: SentinelGroup, tmp_path: Path
) -> None:
    with inferq(group, tmp_path, concurrency=1) as load:
        replicas = [s for s in group.servers if s.port != group.master_port()]
        for replica in replicas:
            replica.stop(kill=True)
        master = SentinelGroup.client(group.server_on(group.master_port() or 0))
        group._wait(lambda: master.info("replication")["connected_slaves"] == 0, "the replicas gone")
        with (
            master,
            httpx.Client(base_url=load.base_url, headers=load.headers(), timeout=REQUEST_TIMEOUT) as http,
        ):
            for _ in range(3):
                load.create_async(http)  # a hang would be a TimeoutException here
            assert load.answers == {503: 3}, load.answers
            assert load.problems == [], load.problems  # each with Retry-After

            for replica in replicas:
                replica.start()
                with SentinelGroup.client(replica) as client:
                    client.replicaof("127.0.0.1", str(group.master_port()))
            group._wait(lambda: master.info("replication")["connected_slaves"] == 2, "the replicas back")
            load.create_async(http)
            assert load.answers[201] == 1, load.answers
            assert_each_ended_once(group, load, {"succeeded"})
            accepted = load.accepted[0][2]
            # The refused ones were taken back (their clients send them again), not left to run:
            # failed saying why, or cancelled if a worker had claimed one (its claim unconfirmed too).
            refused = [p["id"] for p in http.get("/v1/predictions").json()["items"] if p["id"] != accepted]
            terminals = Terminals(group.url, MASTER)
            terminals.expect(refused)
            statuses = terminals.wait(timeout=60)
            terminals.close()
            assert len(refused) == 3 and set(statuses.values()) <= {"failed", "cancelled"}, statuses
            for prediction_id, status in statuses.items():
                if status == "failed":
                    error = http.get(f"/v1/predictions/{prediction_id}").json()["error"]
                    assert "INFERQ_REDIS_REPLICAS_ACK" in error["message"], error
        runs = load.record.read_text().splitlines()
        assert [line.split()[1] for line in runs] == [accepted] * 2  # its start and end: only it ran


def kill_the_master(group: SentinelGroup, load: Load, within: float = BACK_WITHIN) -> EmbeddedRedis:
    """SIGKILLs the master the Sentinels name and returns once the API accepted a create sent after
    it (within ``within`` seconds); returns the killed server."""
    old_port = group.master_port()
    assert old_port is not None
    old_primary = group.server_on(old_port)
    old_primary.stop(kill=True)
    killed_at = time.monotonic()
    deadline = killed_at + within + 5
    while time.monotonic() < deadline and not any(sent > killed_at for sent, _, _ in load.accepted):
        time.sleep(0.1)
    back = sorted(at - killed_at for sent, at, _ in load.accepted if sent > killed_at)
    assert back and back[0] < within, f"a create sent after the kill accepted after {back[:1]} s"
    assert group.master_port() not in (None, old_port)
    print(f"back after {back[0]:.2f} s; answers so far {dict(load.answers)}")
    return old_primary


def pause_the_master(group: SentinelGroup, load: Load, within: float = BACK_WITHIN) -> None:
    """Has the master replaced while paused (:meth:`SentinelGroup.replace_paused_master`), and
    returns once the API accepted a create sent after the pause began."""
    paused_at = time.monotonic()
    old_port = group.replace_paused_master(within)
    print(f"another master after {time.monotonic() - paused_at:.2f} s")
    with SentinelGroup.client(group.server_on(old_port)) as old_master:
        # Workers' broker consumers and every process's subscriptions leave it before it is demoted.
        deadline = time.monotonic() + 5
        while (waiting := _waiting_clients(old_master)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert waiting == [] and old_master.info("replication")["role"] == "master", waiting
    deadline = paused_at + within + 5
    while time.monotonic() < deadline and not any(sent > paused_at for sent, _, _ in load.accepted):
        time.sleep(0.1)
    back = sorted(at - paused_at for sent, at, _ in load.accepted if sent > paused_at)
    assert back and back[0] < within, f"a create sent after the pause accepted after {back[:1]} s"
    print(f"back after {back[0]:.2f} s; answers so far {dict(load.answers)}")


def _waiting_clients(server: redis.Redis) -> list[str]:
    """``server``'s clients that wait on it (blocked pops and subscriptions): command, address, age."""
    waiting = {"brpop", "blpop", "subscribe", "psubscribe", "ssubscribe"}
    return [
        f"{client['cmd']} from {client['addr']} for {client['age']} s"
        for client in server.client_list()
        if client["cmd"] in waiting and not client["name"].startswith("sentinel-")  # the Sentinels' own
    ]


def rejoin(group: SentinelGroup, server: EmbeddedRedis) -> SentinelGroup:
    """Starts a killed master again and waits until the Sentinels made it a synced replica."""
    server.start()
    with SentinelGroup.client(server) as client:
        group._wait(
            lambda: client.info("replication").get("master_link_status") == "up",
            "the old master a replica",
            30,
        )
    return group


def assert_each_ended_once(group: SentinelGroup, load: Load, allowed: set[str], within: float = 120) -> None:
    """Every prediction answered ``201`` ended in exactly one terminal status (one of ``allowed``)
    within ``within`` seconds, and none ran to the end twice."""
    ids = [prediction_id for _, _, prediction_id in load.accepted]
    terminals = Terminals(group.url, MASTER)
    try:
        terminals.expect(ids)
        statuses = terminals.wait(timeout=within)
        published = dict(terminals.published)
    finally:
        terminals.close()
    ended = collections.Counter(statuses.values())
    assert set(ended) <= allowed, ended
    assert [p for p in ids if len(set(published.get(p, []))) > 1] == []
    runs = collections.Counter(
        prediction_id
        for kind, prediction_id, _ in map(str.split, load.record.read_text().splitlines())
        if kind == "done"
    )
    assert [pid for pid, done in runs.items() if done > 1] == []


def _old_primary_rejoins_as_a_replica_nobody_writes_to(
    group: SentinelGroup, old_primary: object, load: Load
) -> None:
    server = next(server for server in group.servers if server is old_primary)
    server.start()  # the Sentinels make it a replica of the new master
    client = SentinelGroup.client(server)
    group._wait(lambda: client.info("replication")["role"] == "slave", "the old primary a replica", 30)
    with (
        client,
        httpx.Client(base_url=load.base_url, headers=load.headers(), timeout=REQUEST_TIMEOUT) as http,
    ):
        for _ in range(10):
            load.create_sync(http)
        assert "cmdstat_evalsha" not in client.info("commandstats")  # no inferq script ran on it
        assert client.info("replication")["role"] == "slave"

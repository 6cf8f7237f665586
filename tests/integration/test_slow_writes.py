"""An acknowledged write that took longer than ``SLOW_WRITE`` counts only if the server it went to is
still the master the Sentinels name (:func:`common.connections.masters.confirm_master`).

A master frozen past the Sentinels' down-after is replaced while it sleeps.
Woken, it answers every write that waited on it, and a replica the Sentinels
have not yet pointed at the new master acknowledges them (``WAIT``); then that
replica resyncs from the new master and the writes are gone
(``bench/failover.py --fault pause``). Here the Sentinels are made to name
another server while the master is frozen, and its replicas go on following
it: the acknowledgement succeeds, as in that race, and only the Sentinels can
tell the write apart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from common.config import Settings
from common.connections import redis_client
from common.connections.masters import SLOW_WRITE, WATCH, MasterReplaced, ReplicasBehind
from common.processes.embedded_redis import EmbeddedRedis
from common.records import Prediction, Status
from common.store import keys
from common.store.predictions import PredictionStore
from tests.integration.sentinels import MASTER, SentinelGroup
from tests.unit.stores import new

pytestmark = pytest.mark.slow


@pytest.fixture
def store(group: SentinelGroup) -> Iterator[PredictionStore]:
    """A store that finds Redis through ``group``'s Sentinels, each write acknowledged by a replica,
    with a connection already open to the master."""
    settings = Settings.defaults(redis_url=group.url, redis_master=MASTER, redis_replicas_ack=1)
    found = PredictionStore(redis_client(settings), settings)
    new(found)
    yield found
    found.redis.close()


@pytest.fixture
def watch_held(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's master watch does not cut connections on its own turns (a turn between the
    Sentinels' change and the write's answer would move the write first); it still cuts when asked."""
    cut_stale = WATCH.cut_stale
    monkeypatch.setattr(
        WATCH,
        "cut_stale",
        lambda: 0 if threading.current_thread().name == "inferq-master-watch" else cut_stale(),
    )


def create_while_paused(
    group: SentinelGroup, store: PredictionStore, meanwhile: Callable[[], None] | None = None
) -> dict[str, Prediction | ReplicasBehind]:
    """Sends a create to the master while it is frozen for longer than ``SLOW_WRITE``; calls
    ``meanwhile`` before it wakes. Returns the create's ``prediction`` or its ``error``."""
    answered: dict[str, Prediction | ReplicasBehind] = {}

    def create() -> None:
        try:
            answered["prediction"] = new(store)
        except ReplicasBehind as e:
            answered["error"] = e

    thread = threading.Thread(target=create)
    with group.paused(group.server_on(group.master_port() or 0)):
        thread.start()
        time.sleep(SLOW_WRITE + 0.2)  # below the Sentinels' down-after: they keep it as master
        if meanwhile is not None:
            meanwhile()
    thread.join(20)
    assert not thread.is_alive()
    return answered


def test_a_slow_write_to_a_replaced_master_does_not_count_and_the_client_moves_at_once(
    group: SentinelGroup, store: PredictionStore, watch_held: None, tmp_path: Path
) -> None:
    old = SentinelGroup.client(group.server_on(group.master_port() or 0))
    elsewhere = EmbeddedRedis(tmp_path / "elsewhere").start()
    try:
        answered = create_while_paused(group, store, lambda: group.name_master(elsewhere))
        error = answered.get("error")
        assert isinstance(error, MasterReplaced), answered
        assert error.acked >= 1  # its replicas acknowledged it: only the Sentinels tell it apart
        # The create is on the old master, which a failover would undo: it was answered unavailable.
        assert old.zcard(keys.owner_predictions("alice")) == 2
        # Every connection to the old master was cut: the next command goes to the one named now.
        assert int(store.redis.info("server")["tcp_port"]) == elsewhere.port
    finally:
        old.close()
        elsewhere.stop(kill=True)


def test_a_slow_write_counts_only_if_every_sentinel_names_its_master(
    group: SentinelGroup, store: PredictionStore, watch_held: None, tmp_path: Path
) -> None:
    """While a failover runs, its leader knows before the others: one Sentinel naming another
    master is enough for the write not to count, whichever the client asked first."""
    elsewhere = EmbeddedRedis(tmp_path / "elsewhere").start()
    try:
        last = group.sentinel_ports[-1:]
        answered = create_while_paused(group, store, lambda: group.name_master(elsewhere, last))
        assert isinstance(answered.get("error"), MasterReplaced), answered
    finally:
        elsewhere.stop(kill=True)


def test_a_slow_write_to_the_master_still_named_counts(group: SentinelGroup, store: PredictionStore) -> None:
    answered = create_while_paused(group, store)
    prediction = answered.get("prediction")
    assert isinstance(prediction, Prediction), answered
    found = store.get(prediction.id)
    assert found is not None and found.status is Status.PENDING

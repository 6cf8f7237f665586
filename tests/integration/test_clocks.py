"""Liveness on one clock: workers whose hosts' clocks disagree neither vanish nor evict each other."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis

from common.config import Settings
from common.store import keys
from common.store.heartbeats import Heartbeat, live_workers
from common.store.predictions import PredictionStore

HOUR = 3600.0
QUEUE = "tests.clocks"
"""Served by no worker but this file's (the session's worker heart-beats on the shared queues)."""
ONE_MODEL = f"""models:
  - owner: tests
    name: clocks
    versions: [{{number: 1, adapter: "tests.fixtures.adapters.records_runs:RecordsRuns", queue: {QUEUE}}}]
"""


@contextmanager
def host_clock(monkeypatch: pytest.MonkeyPatch, offset: float) -> Iterator[None]:
    """Within the block, this process's host clock (``time.time``) is ``offset`` seconds off."""
    real = time.time
    with monkeypatch.context() as patched:
        patched.setattr(time, "time", lambda: real() + offset)
        yield


def test_two_heartbeat_writers_with_skewed_host_clocks_both_stay_live(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = PredictionStore(redis_client, Settings.defaults())
    behind = Heartbeat(store, "behind@host-a", ["q"])
    ahead = Heartbeat(store, "ahead@host-b", ["q"])

    with host_clock(monkeypatch, -HOUR):
        behind.announce()
    with host_clock(monkeypatch, +HOUR):
        ahead.announce()
    for _ in range(2):
        with host_clock(monkeypatch, -HOUR):
            behind.beat()
        with host_clock(monkeypatch, +HOUR):
            ahead.beat()  # drops lapsed entries: a host clock would have dropped the other as lapsed

    live = redis_client.zrange(keys.worker_heartbeats("q"), 0, -1)
    assert sorted(live) == ["ahead@host-b", "behind@host-a"]
    for offset in (-HOUR, 0.0, +HOUR):  # whoever asks, whatever its host clock says
        with host_clock(monkeypatch, offset):
            assert live_workers(store, "q") == 2


def test_a_worker_with_a_skewed_clock_neither_vanishes_from_readyz_nor_evicts_a_real_worker(
    own_api: Callable[..., str], redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(ONE_MODEL)
    base = own_api(INFERQ_MODELS=str(models))
    launcher = own_api.launcher  # type: ignore[attr-defined]
    launcher.start_worker([QUEUE, "inferq.webhooks"])
    assert httpx.get(f"{base}/readyz").json()["queues"][QUEUE] == 1
    (real_worker,) = redis_client.zrange(keys.worker_heartbeats(QUEUE), 0, -1)

    store = PredictionStore(redis_client, Settings.defaults())
    behind = Heartbeat(store, "behind@elsewhere", [QUEUE])
    ahead = Heartbeat(store, "ahead@elsewhere", [QUEUE])
    try:
        with host_clock(monkeypatch, -HOUR):
            behind.announce()
        with host_clock(monkeypatch, +HOUR):
            ahead.announce()
            ahead.beat()

        assert redis_client.zscore(keys.worker_heartbeats(QUEUE), real_worker) is not None
        ready = httpx.get(f"{base}/readyz")
        assert ready.status_code == 200
        assert ready.json()["queues"][QUEUE] == 3
    finally:
        behind.retire()
        ahead.retire()

"""Taking hints from a batched version's lane, on a real Redis (its blocking timeouts are the point)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from common.config import Settings
from common.ids import new_prediction_id
from common.records import ModelRef, Prediction, Status
from common.store.lanes import Hint
from common.store.predictions import PredictionStore

MODEL = ModelRef("tests", "batched-embed", 1)


@pytest.fixture
def store(redis_client: redis.Redis) -> Iterator[PredictionStore]:
    store = PredictionStore(redis_client, Settings.defaults())
    yield store
    store.lanes.close()


def queue(store: PredictionStore) -> str:
    """Creates a pending prediction of the batched ``MODEL``; returns its id."""
    prediction_id = new_prediction_id()
    prediction = Prediction(
        prediction_id, "alice", MODEL, "tests.batched-embed", {"input": ["hi"]}, Status.PENDING, 0.0, 0.0
    )
    store.create(prediction, f"task {prediction_id}", batched=True)
    return prediction_id


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Runs ``call`` in a daemon thread; its result lands in the returned list."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    return thread, result


def test_hints_come_in_order_up_to_the_count_asked(store: PredictionStore) -> None:
    ids = [queue(store) for _ in range(3)]
    taken = store.lanes.take(MODEL, 2, wait=0, gap=0)
    assert taken == [Hint(ids[0], f"task {ids[0]}"), Hint(ids[1], f"task {ids[1]}")]
    assert [hint.prediction_id for hint in store.lanes.take(MODEL, 2, wait=0, gap=0)] == [ids[2]]


def test_a_hint_pushed_while_gathering_joins_the_batch(store: PredictionStore) -> None:
    first = queue(store)
    gathering, result = in_thread(lambda: store.lanes.take(MODEL, 2, wait=60, gap=60))
    gathering.join(0.2)
    assert gathering.is_alive()  # one hint of the two asked for: still gathering
    second = queue(store)
    gathering.join(10)
    assert not gathering.is_alive()
    assert [hint.prediction_id for hint in result[0]] == [first, second]


def test_a_gap_under_a_millisecond_ends_on_a_quiet_lane(store: PredictionStore) -> None:
    # Redis 6 reads a blocking pop's timeout under 1 ms as "for ever": a lane that stayed
    # quiet kept the worker (and the batch it had gathered) waiting for the next request.
    first = queue(store)
    gathering, result = in_thread(lambda: store.lanes.take(MODEL, 8, wait=0.05, gap=0.0008))
    gathering.join(10)
    assert not gathering.is_alive()
    assert [hint.prediction_id for hint in result[0]] == [first]

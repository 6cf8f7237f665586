"""A create that fewer replicas than ``INFERQ_REDIS_REPLICAS_ACK`` confirmed is answered ``503`` and
taken back (``withdraw.lua``), so that only the client's retry runs; on fakeredis, whose lack of
``WAIT`` is stood in for by raising :class:`ReplicasBehind` after the create ran."""

from collections.abc import Callable, Iterator

import fakeredis
import pytest

from common.connections.masters import ReplicasBehind
from common.ids import new_prediction_id
from common.records import Prediction, Status
from common.store import keys
from common.store.predictions import ClaimOutcome, Idempotency, PredictionStore
from common.store.scripts import Scripts
from tests.unit.stores import MODEL, QUEUE, listening, new, status

Meanwhile = Callable[[str], object]
"""What happens between a create's script and its unconfirmed ``WAIT`` (a worker's claim, say)."""


@pytest.fixture
def unconfirmed(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Meanwhile]]:
    """Every create runs, then falls short of its replicas; the test may add what happens meanwhile."""
    meanwhile: list[Meanwhile] = []
    original = Scripts.__call__

    def call(self: Scripts, script: str, prediction_id: str, *args: object, **kwargs: object) -> object:
        result = original(self, script, prediction_id, *args, **kwargs)  # type: ignore[arg-type]
        if script == "create":
            for happening in meanwhile:
                happening(prediction_id)
            raise ReplicasBehind(0, 1)
        return result

    monkeypatch.setattr(Scripts, "__call__", call)
    yield meanwhile


def only_prediction(client: fakeredis.FakeRedis) -> str:
    [prediction_id] = client.zrange(keys.owner_predictions("alice"), 0, -1)
    return str(prediction_id)


def test_an_unclaimed_create_ends_failed_and_never_runs(
    store: PredictionStore, client: fakeredis.FakeRedis, unconfirmed: list[Meanwhile]
) -> None:
    with pytest.raises(ReplicasBehind):
        new(store)
    prediction = store.get(only_prediction(client))
    assert prediction is not None and prediction.status is Status.FAILED
    assert prediction.error is not None and "INFERQ_REDIS_REPLICAS_ACK" in prediction.error.message
    assert store.claim(prediction.id, "t1", ready=False).outcome is ClaimOutcome.TERMINAL
    assert client.zcard(keys.pending()) == 0
    assert client.hget(keys.unfinished_counts(), "alice") is None


def test_one_claimed_meanwhile_is_cancelled_as_its_worker_hears(
    store: PredictionStore, client: fakeredis.FakeRedis, unconfirmed: list[Meanwhile]
) -> None:
    unconfirmed.append(lambda prediction_id: store.claim(prediction_id, "t1", ready=False))
    cancels = listening(client, keys.cancel_channel())
    with pytest.raises(ReplicasBehind):
        new(store)
    prediction_id = only_prediction(client)
    assert cancels.get_message(timeout=1)["data"] == prediction_id
    cancels.close()
    assert store.renew(prediction_id, "t1") == (True, True)  # its worker is told to stop
    assert status(store, prediction_id) is Status.STARTING


def test_with_an_idempotency_key_it_is_kept_for_the_retry_to_find(
    store: PredictionStore, client: fakeredis.FakeRedis, unconfirmed: list[Meanwhile]
) -> None:
    prediction = Prediction(new_prediction_id(), "alice", MODEL, QUEUE, {}, Status.PENDING, 0.0, 0.0)
    with pytest.raises(ReplicasBehind):
        store.create(prediction, "task", idempotency=Idempotency("k1", "f1"))
    assert status(store, prediction.id) is Status.PENDING

"""Helpers of the store's unit tests (the fixtures are in ``conftest.py``).

The scripts read the Redis clock (``TIME``), which fakeredis takes from the real
clock; time is "driven" by writing lapsed scores into the pending and leases
sorted sets, exactly where the scripts look for deadlines.
"""

import fakeredis
from redis.client import PubSub

from common.ids import new_prediction_id
from common.records import ModelRef, Prediction, Status
from common.store import keys
from common.store.predictions import ClaimOutcome, PredictionStore

MODEL = ModelRef("inferq", "echo", 1)
QUEUE = "inferq.echo"
LONG_AGO = 1.0
"""A score before any Redis clock reading: a lease or queue deadline that has lapsed."""


def new(store: PredictionStore, owner: str = "alice", init_event: str = "", **fields: object) -> Prediction:
    """Creates a pending prediction, queuing the message ``task <id>``."""
    prediction_id = new_prediction_id()
    prediction = Prediction(
        prediction_id, owner, MODEL, QUEUE, {"prompt": "hi"}, Status.PENDING, 0.0, 0.0, **fields
    )
    return store.create(prediction, f"task {prediction_id}", init_event)


def claimed(store: PredictionStore, token: str) -> Prediction:
    prediction = new(store)
    assert store.claim(prediction.id, token, ready=False).outcome is ClaimOutcome.CLAIMED
    return prediction


def status(store: PredictionStore, prediction_id: str) -> Status:
    prediction = store.get(prediction_id)
    assert prediction is not None
    return prediction.status


def lapse_lease(client: fakeredis.FakeRedis, prediction_id: str) -> None:
    client.zadd(keys.leases(), {prediction_id: LONG_AGO})


def lapse_queue_deadline(client: fakeredis.FakeRedis, prediction_id: str) -> None:
    client.zadd(keys.pending(), {prediction_id: LONG_AGO})


def messages(prediction_id: str, model: ModelRef, queue: str) -> str:
    return f"again {prediction_id} {model.key} {queue}"


def listening(client: fakeredis.FakeRedis, channel: str) -> PubSub:
    """A subscription to ``channel``, confirmed (so nothing published after this is missed)."""
    pubsub = client.pubsub()
    pubsub.subscribe(channel)
    assert pubsub.get_message(timeout=1)["type"] == "subscribe"
    return pubsub

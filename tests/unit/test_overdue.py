"""Abandonment and recovery of overdue predictions (``PredictionStore.overdue``), on fakeredis."""

import time
from collections.abc import Callable

import fakeredis

from common.config import Settings
from common.ids import new_prediction_id
from common.records import ErrorSource, PredictionError, Status
from common.store import keys
from common.store.predictions import ClaimOutcome, PredictionStore
from tests.unit.stores import (
    LONG_AGO,
    QUEUE,
    claimed,
    lapse_lease,
    lapse_queue_deadline,
    messages,
    new,
    status,
)

# -- abandonment and recovery ------------------------------------------------------------------


def test_too_many_attempts_abandon_the_prediction(
    client: fakeredis.FakeRedis, updates: Callable[[], list[str]]
) -> None:
    store = PredictionStore(client, Settings.defaults(max_attempts=2))
    prediction = claimed(store, "t1")
    lapse_lease(client, prediction.id)
    assert store.claim(prediction.id, "t2", ready=False).outcome is ClaimOutcome.CLAIMED
    lapse_lease(client, prediction.id)
    assert store.claim(prediction.id, "t3", ready=False).outcome is ClaimOutcome.ABANDONED
    abandoned = store.get(prediction.id)
    assert abandoned is not None and abandoned.status is Status.ABANDONED
    assert abandoned.error == PredictionError(
        ErrorSource.INTERNAL, "The worker running this prediction was lost 2 times; giving up."
    )
    assert client.zscore(keys.leases(), prediction.id) is None
    assert updates()[-1] == f"{prediction.id} abandoned"


def test_claim_past_the_queue_deadline_abandons(store: PredictionStore, client: fakeredis.FakeRedis) -> None:
    prediction = new(store)
    lapse_queue_deadline(client, prediction.id)
    assert store.claim(prediction.id, "t1", ready=False).outcome is ClaimOutcome.ABANDONED
    abandoned = store.get(prediction.id)
    assert abandoned is not None and abandoned.error is not None
    assert (abandoned.status, abandoned.error.source) == (Status.ABANDONED, ErrorSource.INTERNAL)
    assert "queue deadline" in abandoned.error.message


def test_release_lapsed_requeues(
    store: PredictionStore, client: fakeredis.FakeRedis, updates: Callable[[], list[str]]
) -> None:
    prediction, live = claimed(store, "t1"), claimed(store, "t2")
    client.delete(keys.celery_queue(QUEUE))
    updates()
    lapse_lease(client, prediction.id)
    assert store.overdue.release_lapsed(time.time(), messages) == [prediction.id]
    assert client.lrange(keys.celery_queue(QUEUE), 0, -1) == [f"again {prediction.id} inferq/echo:1 {QUEUE}"]
    assert client.hget(keys.prediction(prediction.id), "claim") == ""
    assert client.zscore(keys.leases(), prediction.id) is None
    assert client.zscore(keys.pending(), prediction.id) > time.time()
    assert client.zscore(keys.leases(), live.id) is not None
    assert updates() == []
    again = store.claim(prediction.id, "t3", ready=True)
    assert again.outcome is ClaimOutcome.CLAIMED and again.prediction is not None
    assert (again.prediction.status, again.prediction.attempts) == (Status.STARTED, 2)


def test_release_lapsed_trusts_the_redis_clock_over_its_argument(
    store: PredictionStore, client: fakeredis.FakeRedis
) -> None:
    prediction = claimed(store, "t1")
    assert store.overdue.release_lapsed(time.time() + 10**6, messages) == []
    assert client.hget(keys.prediction(prediction.id), "claim") == "t1"
    assert store.renew(prediction.id, "t1") == (True, False)


def test_release_lapsed_cancels_a_cancel_requested_prediction(
    store: PredictionStore, client: fakeredis.FakeRedis, updates: Callable[[], list[str]]
) -> None:
    prediction = claimed(store, "t1")
    store.request_cancel(prediction.id, "alice")
    updates()
    client.delete(keys.celery_queue(QUEUE))
    lapse_lease(client, prediction.id)
    assert store.overdue.release_lapsed(time.time(), messages) == []
    assert status(store, prediction.id) is Status.CANCELLED
    assert client.llen(keys.celery_queue(QUEUE)) == 0
    assert updates() == [f"{prediction.id} cancelled"]


def test_release_lapsed_drops_leases_of_missing_and_ended_predictions(
    store: PredictionStore, client: fakeredis.FakeRedis
) -> None:
    ended = claimed(store, "t1")
    store.finish(ended.id, "t1", Status.SUCCEEDED)
    ghost = new_prediction_id()
    client.zadd(keys.leases(), {ghost: LONG_AGO, ended.id: LONG_AGO})
    assert store.overdue.release_lapsed(time.time(), messages) == []
    assert client.zcard(keys.leases()) == 0


def test_abandon_overdue(
    store: PredictionStore, client: fakeredis.FakeRedis, updates: Callable[[], list[str]]
) -> None:
    overdue, waiting = new(store), new(store)
    lapse_queue_deadline(client, overdue.id)
    assert store.overdue.abandon_overdue(time.time() + 10**6) == 1
    abandoned = store.get(overdue.id)
    assert abandoned is not None and abandoned.error is not None
    assert (abandoned.status, abandoned.error.source) == (Status.ABANDONED, ErrorSource.INTERNAL)
    assert "before its queue deadline" in abandoned.error.message
    assert status(store, waiting.id) is Status.PENDING
    assert updates() == [f"{overdue.id} abandoned"]
    assert store.overdue.abandon_overdue(time.time() + 10**6) == 0


def test_abandon_overdue_skips_claimed_and_ended(store: PredictionStore, client: fakeredis.FakeRedis) -> None:
    running = claimed(store, "t1")
    ended = claimed(store, "t2")
    store.finish(ended.id, "t2", Status.SUCCEEDED)
    client.zadd(keys.pending(), {running.id: LONG_AGO, ended.id: LONG_AGO})
    assert store.overdue.abandon_overdue(time.time()) == 0
    assert (status(store, running.id), status(store, ended.id)) == (Status.STARTING, Status.SUCCEEDED)
    assert client.zcard(keys.pending()) == 0

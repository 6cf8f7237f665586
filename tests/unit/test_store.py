"""The prediction store and its Lua scripts, on fakeredis: create, claim, finish, cancel, list."""

import json
import time
from collections.abc import Callable

import fakeredis
import pytest

from common.errors import IdempotencyKeyExpired, IdempotencyKeyReused, NotFound, QueueFull
from common.ids import new_prediction_id
from common.records import ErrorSource, Prediction, PredictionError, Status
from common.store import keys
from common.store.lanes import Hint
from common.store.notifier import split_news
from common.store.outbox import Outbox
from common.store.predictions import (
    IDEMPOTENCY_TTL,
    CancelOutcome,
    ClaimOutcome,
    Ending,
    Idempotency,
    PredictionStore,
)
from tests.unit.stores import (
    MODEL,
    QUEUE,
    claimed,
    lapse_lease,
    listening,
    new,
    status,
)

# -- create and read -------------------------------------------------------------------------


def test_create_then_get(store: PredictionStore, client: fakeredis.FakeRedis) -> None:
    before = time.time()
    created = new(store, stream=True, webhook={"url": "http://hook"})
    assert before - 1 <= created.created_at == created.updated_at <= time.time() + 1
    assert store.get(created.id) == created
    assert store.get(created.id).logs == ""
    assert client.zscore(keys.owner_predictions("alice"), created.id) == 0
    deadline = client.zscore(keys.pending(), created.id)
    assert deadline == pytest.approx(created.created_at + store.settings.queue_deadline, abs=0.01)
    assert client.ttl(keys.prediction(created.id)) > store.settings.retention


def test_create_queues_the_message(store: PredictionStore, client: fakeredis.FakeRedis) -> None:
    first, second = new(store), new(store)
    assert client.lrange(keys.celery_queue(QUEUE), 0, -1) == [f"task {second.id}", f"task {first.id}"]


def test_create_is_idempotent(store: PredictionStore, client: fakeredis.FakeRedis) -> None:
    created = new(store)
    again = Prediction(created.id, "alice", MODEL, QUEUE, {"prompt": "hi"}, Status.PENDING, 0.0, 0.0)
    assert store.create(again, "task again").created_at == created.created_at
    assert client.lrange(keys.celery_queue(QUEUE), 0, -1) == [f"task {created.id}"]
    assert client.zcard(keys.pending()) == client.zcard(keys.owner_predictions("alice")) == 1
    assert store.get(created.id) == created


def _keyed(store: PredictionStore, key: Idempotency, owner: str = "alice") -> Prediction:
    prediction_id = new_prediction_id()
    prediction = Prediction(prediction_id, owner, MODEL, QUEUE, {"prompt": "hi"}, Status.PENDING, 0.0, 0.0)
    return store.create(prediction, f"task {prediction_id}", idempotency=key)


def test_an_idempotency_key_makes_one_prediction(store: PredictionStore, client: fakeredis.FakeRedis) -> None:
    key = Idempotency("retry-me", "fingerprint")
    first = _keyed(store, key)
    again = _keyed(store, key)
    assert again == first
    assert client.lrange(keys.celery_queue(QUEUE), 0, -1) == [f"task {first.id}"]
    assert client.zcard(keys.owner_predictions("alice")) == 1
    mapping = keys.idempotency_key("alice", "retry-me")
    assert client.get(mapping) == f"{first.id} fingerprint"
    assert IDEMPOTENCY_TTL - 5 < client.ttl(mapping) <= IDEMPOTENCY_TTL
    assert _keyed(store, key, owner="bob").id != first.id  # keys are per owner


def test_a_repeated_create_script_keeps_its_own_key(
    store: PredictionStore, client: fakeredis.FakeRedis
) -> None:
    key = Idempotency("k", "f")
    first = _keyed(store, key)
    again = Prediction(first.id, "alice", MODEL, QUEUE, {"prompt": "hi"}, Status.PENDING, 0.0, 0.0)
    assert store.create(again, "task again", idempotency=key).created_at == first.created_at  # a Redis retry
    assert client.lrange(keys.celery_queue(QUEUE), 0, -1) == [f"task {first.id}"]


def test_an_idempotency_key_reused_or_expired(store: PredictionStore, client: fakeredis.FakeRedis) -> None:
    first = _keyed(store, Idempotency("k", "f"))
    with pytest.raises(IdempotencyKeyReused) as reused:
        _keyed(store, Idempotency("k", "another request"))
    assert reused.value.prediction_id == first.id and reused.value.status_code == 422
    client.delete(keys.prediction(first.id))
    with pytest.raises(IdempotencyKeyExpired):
        _keyed(store, Idempotency("k", "f"))
    assert client.zcard(keys.owner_predictions("alice")) == 1  # neither stored anything


def test_a_full_queue_does_not_take_the_key(store: PredictionStore, client: fakeredis.FakeRedis) -> None:
    new(store)
    prediction = Prediction(new_prediction_id(), "alice", MODEL, QUEUE, {}, Status.PENDING, 0.0, 0.0)
    with pytest.raises(QueueFull):
        store.create(prediction, "task", max_queue_depth=1, idempotency=Idempotency("k", "f"))
    assert client.get(keys.idempotency_key("alice", "k")) is None


def test_get_missing_and_get_owned(store: PredictionStore) -> None:
    created = new(store)
    assert store.get(new_prediction_id()) is None
    assert store.get_owned(created.id, "alice") == created
    with pytest.raises(NotFound):
        store.get_owned(created.id, "bob")
    with pytest.raises(NotFound):
        store.get_owned(new_prediction_id(), "alice")


# -- claim, start, renew, finish ----------------------------------------------------------------


@pytest.mark.parametrize(("ready", "expected"), [(False, Status.STARTING), (True, Status.STARTED)])
def test_claim(
    store: PredictionStore, client: fakeredis.FakeRedis, updates: Callable[[], list[str]], ready: bool,
    expected: Status,
) -> None:  # fmt: skip
    created = new(store)
    claim = store.claim(created.id, "t1", ready=ready)
    assert claim.outcome is ClaimOutcome.CLAIMED
    assert claim.prediction is not None
    assert (claim.prediction.status, claim.prediction.attempts) == (expected, 1)
    assert claim.prediction.started_at == claim.prediction.updated_at >= created.created_at
    assert claim.prediction == store.get(created.id)  # the claim answers with the record as stored
    assert client.hget(keys.prediction(created.id), "claim") == "t1"
    assert client.zscore(keys.pending(), created.id) is None
    assert client.zscore(keys.leases(), created.id) > time.time()
    assert updates() == [f"{created.id} {expected}"]


def test_second_claim_while_the_lease_lives_is_busy(store: PredictionStore) -> None:
    prediction = claimed(store, "t1")
    assert store.claim(prediction.id, "t2", ready=True).outcome is ClaimOutcome.BUSY
    assert store.renew(prediction.id, "t1") == (True, False)


def test_repeated_claim_with_the_same_token_is_no_new_attempt(
    store: PredictionStore, updates: Callable[[], list[str]]
) -> None:
    prediction = claimed(store, "t1")
    updates()
    claim = store.claim(prediction.id, "t1", ready=False)
    assert claim.outcome is ClaimOutcome.CLAIMED
    assert claim.prediction is not None and claim.prediction.attempts == 1
    assert updates() == []


def test_hinted_claims_take_the_free_ones_and_their_messages_only(
    store: PredictionStore, client: fakeredis.FakeRedis
) -> None:
    free, busy, ended, other = new(store), new(store), new(store), new(store)
    assert store.claim(busy.id, "t1", ready=True).outcome is ClaimOutcome.CLAIMED
    assert store.claim(ended.id, "t2", ready=True).outcome is ClaimOutcome.CLAIMED
    assert store.finish(ended.id, "t2", Status.SUCCEEDED, output="ok")
    hints = [Hint(p.id, f"task {p.id}") for p in (free, busy, ended)]
    ((prediction, token),) = store.claim_hinted(hints, QUEUE)
    assert prediction == store.get(free.id) and prediction.status is Status.STARTED
    assert client.hget(keys.prediction(free.id), "claim") == token
    queued = client.lrange(keys.celery_queue(QUEUE), 0, -1)
    assert queued == [f"task {other.id}", f"task {ended.id}", f"task {busy.id}"]  # the claimed one's is gone
    assert store.claim_hinted([Hint(other.id, f"task {other.id}")], QUEUE)[0][0].id == other.id
    assert client.lrange(keys.celery_queue(QUEUE), 0, -1) == [f"task {ended.id}", f"task {busy.id}"]


def test_claim_missing_and_terminal(store: PredictionStore) -> None:
    assert store.claim(new_prediction_id(), "t1", ready=False).outcome is ClaimOutcome.MISSING
    prediction = claimed(store, "t1")
    assert store.finish(prediction.id, "t1", Status.SUCCEEDED, output="ok")
    assert store.claim(prediction.id, "t2", ready=False).outcome is ClaimOutcome.TERMINAL
    assert store.claim(prediction.id, "t1", ready=False).outcome is ClaimOutcome.TERMINAL


def test_claim_after_the_lease_lapsed_takes_over(store: PredictionStore, client: fakeredis.FakeRedis) -> None:
    prediction = claimed(store, "t1")
    lapse_lease(client, prediction.id)
    claim = store.claim(prediction.id, "t2", ready=False)
    assert claim.outcome is ClaimOutcome.CLAIMED
    assert claim.prediction is not None and claim.prediction.attempts == 2
    assert store.renew(prediction.id, "t1") == (False, False)
    assert not store.finish(prediction.id, "t1", Status.SUCCEEDED)


def test_mark_started(store: PredictionStore, updates: Callable[[], list[str]]) -> None:
    prediction = claimed(store, "t1")
    updates()
    assert not store.mark_started(prediction.id, "t2")
    assert status(store, prediction.id) is Status.STARTING
    assert store.mark_started(prediction.id, "t1")
    assert status(store, prediction.id) is Status.STARTED
    assert not store.mark_started(prediction.id, "t1")
    assert updates() == [f"{prediction.id} started"]


def test_renew(store: PredictionStore, client: fakeredis.FakeRedis) -> None:
    prediction = claimed(store, "t1")
    client.zadd(keys.leases(), {prediction.id: time.time() + 0.5})
    assert store.renew(prediction.id, "t1") == (True, False)
    assert client.zscore(keys.leases(), prediction.id) > time.time() + store.settings.lease_ttl - 1
    assert store.renew(prediction.id, "wrong") == (False, False)
    assert store.renew(new_prediction_id(), "t1") == (False, False)


def test_finish_only_by_the_claim_holder_and_only_once(
    store: PredictionStore, client: fakeredis.FakeRedis, updates: Callable[[], list[str]]
) -> None:
    prediction = claimed(store, "t1")
    updates()
    error = PredictionError(ErrorSource.EXTERNAL, "bad", {"line": 3})
    timings = {"setup_time": 0.25, "execution_time": 1.5, "predict_started_at": 1700000000.5}
    assert not store.finish(prediction.id, "t2", Status.FAILED, error=error)
    assert store.finish(prediction.id, "t1", Status.FAILED, error=error, metrics={"n": 1}, timings=timings)
    assert not store.finish(prediction.id, "t1", Status.SUCCEEDED, output="late")
    done = store.get(prediction.id)
    assert done is not None
    assert (done.status, done.error, done.metrics, done.output) == (Status.FAILED, error, {"n": 1}, None)
    assert (done.setup_time, done.execution_time, done.predict_started_at) == (0.25, 1.5, 1700000000.5)
    assert done.started_at is not None and done.completed_at == done.updated_at >= done.started_at
    assert client.zscore(keys.leases(), prediction.id) is None
    assert client.ttl(keys.prediction(prediction.id)) <= store.settings.retention
    assert store.renew(prediction.id, "t1") == (False, False)
    assert updates() == [f"{prediction.id} failed"]


def test_only_endings_wake_the_waiters(store: PredictionStore, client: fakeredis.FakeRedis) -> None:
    """Starting is news for observers (the progress channel); waiters hear only the ending,
    which carries the ended record, logs included, exactly as a read would return it."""
    waiters, observers = listening(client, keys.updates_channel()), listening(client, keys.progress_channel())
    prediction = claimed(store, "t1")
    store.mark_started(prediction.id, "t1")
    store.append_log(prediction.id, "loading\n")
    assert store.finish(prediction.id, "t1", Status.SUCCEEDED, output={"text": "hi"}, metrics={"n": 1})
    progress = [m["data"] for m in iter(lambda: observers.get_message(timeout=0), None)]
    news = [m["data"] for m in iter(lambda: waiters.get_message(timeout=0), None)]
    assert progress == [f"{prediction.id} starting", f"{prediction.id} started"]
    assert len(news) == 1
    about, note, data = split_news(news[0])
    assert (about, note) == (prediction.id, "succeeded")
    carried = store.from_news(prediction.id, data)
    assert carried is not None and carried == store.get(prediction.id)
    assert (carried.output, carried.logs) == ({"text": "hi"}, "loading\n")


def test_a_big_ending_is_news_without_the_record(store: PredictionStore, client: fakeredis.FakeRedis) -> None:
    waiters = listening(client, keys.updates_channel())
    prediction = claimed(store, "t1")
    assert store.finish(prediction.id, "t1", Status.SUCCEEDED, output="x" * 20000)
    assert waiters.get_message(timeout=1)["data"] == f"{prediction.id} succeeded"


def test_a_big_ending_still_gives_its_webhook_the_whole_record(
    store: PredictionStore, client: fakeredis.FakeRedis
) -> None:
    waiters = listening(client, keys.updates_channel())
    prediction = new(store, webhook={"url": "http://hook"})
    assert store.claim(prediction.id, "t1", ready=True).outcome is ClaimOutcome.CLAIMED
    store.append_log(prediction.id, "y" * 20000)
    assert store.finish(prediction.id, "t1", Status.SUCCEEDED, output="x")
    assert waiters.get_message(timeout=1)["data"] == f"{prediction.id} succeeded"
    ended = json.loads(client.lrange(keys.webhook_outbox(prediction.id), -1, -1)[0])
    assert (ended["status"], ended["output"], ended["logs"]) == ("succeeded", '"x"', "y" * 20000)


def test_a_prediction_with_a_big_input_ends_like_any_other(
    store: PredictionStore, client: fakeredis.FakeRedis
) -> None:
    """The scripts read such a record only in part; its ending and its webhook's snapshot are whole."""
    waiters = listening(client, keys.updates_channel())
    big = {"prompt": "z" * 20000}
    running = new(store, webhook={"url": "http://hook"})
    client.hset(keys.prediction(running.id), "input", json.dumps(big))
    assert store.claim(running.id, "t1", ready=True).outcome is ClaimOutcome.CLAIMED
    timings = {"setup_time": 0.25, "execution_time": 1.5, "predict_started_at": 1700000000.5}
    assert store.finish(running.id, "t1", Status.SUCCEEDED, output="x", metrics={"n": 1}, timings=timings)
    assert waiters.get_message(timeout=1)["data"] == f"{running.id} succeeded"
    done = store.get(running.id)
    assert done is not None
    assert (done.status, done.output, done.input, done.metrics) == (Status.SUCCEEDED, "x", big, {"n": 1})
    assert (done.execution_time, done.attempts) == (1.5, 1)
    assert client.zscore(keys.leases(), running.id) is None
    assert 0 < client.ttl(keys.webhook_outbox(running.id)) <= store.settings.retention
    ended = json.loads(client.lrange(keys.webhook_outbox(running.id), -1, -1)[0])
    assert (ended["status"], ended["logs"]) == ("succeeded", "")
    assert "input" not in ended  # kept once, in the record: the deliverer reads it from there
    first = Outbox(client).head(running.id)
    assert first is not None and first.fields["input"] == json.dumps(big)

    pending = new(store)
    client.hset(keys.prediction(pending.id), "input", json.dumps(big))
    assert store.request_cancel(pending.id, "alice") is CancelOutcome.CANCELLED
    cancelled = store.get(pending.id)
    assert cancelled is not None
    assert (cancelled.status, cancelled.cancel_requested) == (Status.CANCELLED, True)
    assert waiters.get_message(timeout=1)["data"] == f"{pending.id} cancelled"


def test_the_scripts_survive_redis_forgetting_them(
    store: PredictionStore, client: fakeredis.FakeRedis
) -> None:
    """After a Redis restart (here SCRIPT FLUSH) a script is loaded again, alone or in a batch."""
    first, second = claimed(store, "t1"), claimed(store, "t2")
    client.script_flush()
    assert store.finish(first.id, "t1", Status.SUCCEEDED, output="one")
    client.script_flush()
    third = claimed(store, "t3")
    client.script_flush()
    endings = [Ending(p.id, t, Status.SUCCEEDED, t, None, {}, {}) for p, t in ((second, "t2"), (third, "t3"))]
    assert store.finish_all(endings) == [True, True]
    assert [store.get(p.id).output for p in (first, second, third)] == ["one", "t2", "t3"]  # type: ignore[union-attr]


@pytest.mark.parametrize("data", ["", "null", "[1, 2]", "{}", '{"id": "other"}', "{not json"])
def test_news_that_is_not_an_ended_record_is_ignored(store: PredictionStore, data: str) -> None:
    assert store.from_news(new(store).id, data) is None


def test_news_of_another_or_a_running_prediction_is_ignored(store: PredictionStore) -> None:
    running = claimed(store, "t1")
    snapshot = json.dumps(running.to_hash() | {"status": "started"})
    assert store.from_news(running.id, snapshot) is None
    snapshot = json.dumps(running.to_hash() | {"status": "succeeded"})
    assert store.from_news(running.id, snapshot) is not None
    assert store.from_news(new_prediction_id(), snapshot) is None


def test_finish_stores_output(store: PredictionStore) -> None:
    prediction = claimed(store, "t1")
    assert store.finish(prediction.id, "t1", Status.SUCCEEDED, output={"text": "hi", "p": [0.5]})
    done = store.get(prediction.id)
    assert done is not None and (done.status, done.output, done.error) == (
        Status.SUCCEEDED,
        {"text": "hi", "p": [0.5]},
        None,
    )


# -- cancellation ------------------------------------------------------------------------------


def test_cancel_pending_cancels_at_once(
    store: PredictionStore, client: fakeredis.FakeRedis, updates: Callable[[], list[str]]
) -> None:
    prediction = new(store)
    assert store.request_cancel(prediction.id, "alice") is CancelOutcome.CANCELLED
    cancelled = store.get(prediction.id)
    assert cancelled is not None
    assert (cancelled.status, cancelled.cancel_requested) == (Status.CANCELLED, True)
    assert client.zscore(keys.pending(), prediction.id) is None
    assert updates() == [f"{prediction.id} cancelled"]
    assert store.claim(prediction.id, "t1", ready=False).outcome is ClaimOutcome.TERMINAL


def test_cancel_running_flags_it_and_tells_its_worker(
    store: PredictionStore, client: fakeredis.FakeRedis, updates: Callable[[], list[str]]
) -> None:
    prediction = claimed(store, "t1")
    updates()
    cancels = listening(client, keys.cancel_channel())
    assert store.request_cancel(prediction.id, "alice") is CancelOutcome.REQUESTED
    assert cancels.get_message(timeout=1)["data"] == prediction.id
    cancels.close()
    assert store.request_cancel(prediction.id, "alice") is CancelOutcome.REQUESTED
    assert status(store, prediction.id) is Status.STARTING
    assert store.renew(prediction.id, "t1") == (True, True)
    assert updates() == []
    assert store.finish(prediction.id, "t1", Status.CANCELLED)
    assert updates() == [f"{prediction.id} cancelled"]


def test_cancel_terminal_missing_and_foreign(store: PredictionStore) -> None:
    prediction = claimed(store, "t1")
    assert store.request_cancel(prediction.id, "bob") is CancelOutcome.MISSING
    assert store.renew(prediction.id, "t1") == (True, False)
    assert store.request_cancel(new_prediction_id(), "alice") is CancelOutcome.MISSING
    store.finish(prediction.id, "t1", Status.SUCCEEDED)
    assert store.request_cancel(prediction.id, "alice") is CancelOutcome.TERMINAL
    assert status(store, prediction.id) is Status.SUCCEEDED


def test_a_repeat_cancel_after_it_took_effect_is_a_repeat_not_a_conflict(store: PredictionStore) -> None:
    queued = new(store)
    assert store.request_cancel(queued.id, "alice") is CancelOutcome.CANCELLED
    assert store.request_cancel(queued.id, "alice") is CancelOutcome.REPEATED
    assert store.request_cancel(queued.id, "bob") is CancelOutcome.MISSING


def test_a_recorded_request_answers_a_repeat_even_if_it_ended_otherwise(
    store: PredictionStore, client: fakeredis.FakeRedis
) -> None:
    prediction = claimed(store, "t1")
    store.finish(prediction.id, "t1", Status.SUCCEEDED)
    client.hset(keys.prediction(prediction.id), "cancel_requested", "1")  # no script does this
    assert store.request_cancel(prediction.id, "alice") is CancelOutcome.REPEATED
    assert status(store, prediction.id) is Status.SUCCEEDED


def test_claim_of_a_cancel_requested_unclaimed_prediction_cancels_it(
    store: PredictionStore, client: fakeredis.FakeRedis, updates: Callable[[], list[str]]
) -> None:
    prediction = new(store)
    client.hset(keys.prediction(prediction.id), "cancel_requested", "1")
    assert store.claim(prediction.id, "t1", ready=False).outcome is ClaimOutcome.CANCELLED
    assert status(store, prediction.id) is Status.CANCELLED
    assert updates() == [f"{prediction.id} cancelled"]


def test_claim_after_a_lapsed_cancelled_run_cancels_it(
    store: PredictionStore, client: fakeredis.FakeRedis
) -> None:
    prediction = claimed(store, "t1")
    assert store.request_cancel(prediction.id, "alice") is CancelOutcome.REQUESTED
    lapse_lease(client, prediction.id)
    assert store.claim(prediction.id, "t2", ready=False).outcome is ClaimOutcome.CANCELLED
    assert status(store, prediction.id) is Status.CANCELLED


def test_a_cancel_accepted_before_the_end_wins(store: PredictionStore) -> None:
    prediction = claimed(store, "t1")
    assert store.request_cancel(prediction.id, "alice") is CancelOutcome.REQUESTED

    assert store.finish(prediction.id, "t1", Status.SUCCEEDED, output="too late")

    ended = store.get(prediction.id)
    assert ended is not None and ended.status is Status.CANCELLED and ended.output is None
    assert store.request_cancel(prediction.id, "alice") is CancelOutcome.REPEATED  # a retry, not a conflict

"""The scheduler (``common.store.schedule``, ``lua/next.lua``): classes, turns, weights, limits, parking."""

import time

import fakeredis
import pytest

from common.config import Settings
from common.records import Prediction, Priority, Status
from common.store import keys
from common.store.predictions import ClaimOutcome, PredictionStore
from tests.unit.stores import QUEUE, lapse_lease, messages, new, status

LOADED = ("inferq/echo:1",)


def store_with(client: fakeredis.FakeRedis, **settings: object) -> PredictionStore:
    return PredictionStore(client, Settings.defaults(**settings))


def next_owner(store: PredictionStore, token: str, hint: str) -> str | None:
    """Claims the next prediction of the queue; its owner and input's ``n`` (None: nothing claimed)."""
    claim = store.claim_next(hint, QUEUE, token, loaded=LOADED)
    if claim.prediction is None:
        return None
    return f"{claim.prediction.owner}{claim.prediction.input['n']}"


def line_up(store: PredictionStore, owner: str, count: int, **fields: object) -> list[Prediction]:
    made = []
    for n in range(1, count + 1):
        prediction = new(store, owner, **fields)
        store.redis.hset(keys.prediction(prediction.id), "input", f'{{"n": {n}}}')
        made.append(prediction)
    return made


def claim_all(store: PredictionStore, hint: str, count: int) -> list[str | None]:
    return [next_owner(store, f"t{i}", hint) for i in range(count)]


def test_the_highest_class_with_work_goes_first(store: PredictionStore) -> None:
    (batch,) = line_up(store, "alice", 1, priority=Priority.BATCH)
    (default,) = line_up(store, "bob", 1)
    (interactive,) = line_up(store, "carol", 1, priority=Priority.INTERACTIVE)
    claimed = [store.claim_next(batch.id, QUEUE, f"t{i}", loaded=LOADED).prediction for i in range(3)]
    assert [p.id for p in claimed if p] == [interactive.id, default.id, batch.id]


def test_keys_take_turns_however_deep_one_line_is(store: PredictionStore) -> None:
    flood = line_up(store, "a", 5)
    line_up(store, "b", 2)
    assert claim_all(store, flood[0].id, 8) == ["a1", "b1", "a2", "b2", "a3", "a4", "a5", None]


def test_a_key_that_comes_back_goes_next_not_after_the_backlog(store: PredictionStore) -> None:
    flood = line_up(store, "a", 6)
    assert claim_all(store, flood[0].id, 3) == ["a1", "a2", "a3"]
    line_up(store, "b", 1)
    assert claim_all(store, flood[0].id, 2) == ["b1", "a4"]


def test_weights_share_turns(client: fakeredis.FakeRedis) -> None:
    store = store_with(client, key_weights={"a": 3.0})
    flood = line_up(store, "a", 9)
    line_up(store, "b", 3)
    order = "".join(owner[0] for owner in claim_all(store, flood[0].id, 12) if owner)
    assert [order[i : i + 4].count("b") for i in range(0, 12, 4)] == [1, 1, 1]


def test_the_running_limit_holds_a_key_back_and_parks_the_message(client: fakeredis.FakeRedis) -> None:
    store = store_with(client, max_running_per_key=1)
    flood = line_up(store, "a", 3)
    line_up(store, "b", 1)
    first = store.claim_next(flood[0].id, QUEUE, "t1", loaded=LOADED)
    assert claim_all(store, flood[0].id, 1) == ["b1"]
    assert store.claim_next(flood[0].id, QUEUE, "t3", loaded=LOADED).outcome is ClaimOutcome.HELD
    client.delete(keys.celery_queue(QUEUE))
    assert store.park(flood[0].id, QUEUE, "parked message") is True
    assert client.lrange(keys.schedule_parked(QUEUE), 0, -1) == ["parked message"]

    assert first.prediction is not None
    store.finish(first.prediction.id, "t1", Status.SUCCEEDED)
    assert client.lrange(keys.celery_queue(QUEUE), 0, -1) == ["parked message"]  # back for a2
    assert client.exists(keys.schedule_parked(QUEUE)) == 0
    assert claim_all(store, flood[0].id, 2) == ["a2", None]


def test_a_message_is_not_parked_when_a_run_ended_meanwhile(client: fakeredis.FakeRedis) -> None:
    store = store_with(client, max_running_per_key=1)
    flood = line_up(store, "a", 2)
    first = store.claim_next(flood[0].id, QUEUE, "t1", loaded=LOADED)
    assert store.claim_next(flood[0].id, QUEUE, "t2", loaded=LOADED).outcome is ClaimOutcome.HELD
    assert first.prediction is not None
    store.finish(first.prediction.id, "t1", Status.SUCCEEDED)
    assert store.park(flood[0].id, QUEUE, "late message") is False
    assert claim_all(store, flood[0].id, 1) == ["a2"]


def test_the_limit_counts_runs_on_every_queue(client: fakeredis.FakeRedis) -> None:
    store = store_with(client, max_running_per_key=1)
    elsewhere = new(store, "a")
    client.hset(keys.prediction(elsewhere.id), "queue", "other")  # as if created on another queue
    assert store.claim(elsewhere.id, "t0", ready=True).outcome is ClaimOutcome.CLAIMED
    flood = line_up(store, "a", 1)
    assert store.claim_next(flood[0].id, QUEUE, "t1", loaded=LOADED).outcome is ClaimOutcome.HELD
    assert store.claim(flood[0].id, "t2", ready=True).outcome is ClaimOutcome.HELD


def test_figures_count_exactly_through_claims_cancels_and_ends(store: PredictionStore) -> None:
    flood = line_up(store, "a", 3)
    (other,) = line_up(store, "b", 1, priority=Priority.BATCH)
    store.request_cancel(flood[2].id, "a")
    claim = store.claim_next(flood[0].id, QUEUE, "t1", loaded=LOADED)
    assert claim.prediction is not None and claim.prediction.id == flood[0].id

    (figures,) = store.schedule.figures([QUEUE])
    assert (figures.lines[Priority.DEFAULT].queued, figures.lines[Priority.DEFAULT].running) == (1, 1)
    assert (figures.lines[Priority.BATCH].queued, figures.lines[Priority.BATCH].running) == (1, 0)
    assert figures.lines[Priority.INTERACTIVE].queued == 0
    assert figures.lines[Priority.INTERACTIVE].oldest_age is None
    assert (figures.queued, figures.running) == (2, 1)
    oldest = store.schedule.oldest(QUEUE)
    assert oldest is not None and oldest.prediction_id == flood[1].id

    (own,) = store.schedule.figures([QUEUE], owner="b")
    assert (own.queued, own.running, own.lines[Priority.BATCH].queued) == (1, 0, 1)

    store.finish(flood[0].id, "t1", Status.SUCCEEDED)
    store.request_cancel(flood[1].id, "a")
    store.request_cancel(other.id, "b")
    (figures,) = store.schedule.figures([QUEUE])
    assert (figures.queued, figures.running) == (0, 0)
    assert store.redis.hgetall(keys.schedule()).keys() <= {
        f"clock {QUEUE} {p}" for p in ("interactive", "default", "batch")
    }
    assert store.schedule.waiting_queues() == []


def test_a_released_prediction_goes_back_to_its_place_in_line(store: PredictionStore) -> None:
    flood = line_up(store, "a", 3)
    assert next_owner(store, "t1", flood[0].id) == "a1"
    lapse_lease(store.redis, flood[0].id)
    assert store.overdue.release_lapsed(time.time(), messages) == [flood[0].id]
    (figures,) = store.schedule.figures([QUEUE])
    assert (figures.queued, figures.running) == (3, 0)
    assert claim_all(store, flood[0].id, 3) == ["a1", "a2", "a3"]


def test_a_prediction_out_of_line_runs_by_its_hint(store: PredictionStore) -> None:
    """One queued before the scheduler existed has a task message but no place in line."""
    (old,) = line_up(store, "a", 1)
    store.redis.delete(keys.schedule_waiting(QUEUE, "default", "a"), keys.schedule_turns(QUEUE, "default"))
    assert next_owner(store, "t1", old.id) == "a1"
    store.finish(old.id, "t1", Status.SUCCEEDED)
    assert store.redis.hgetall(keys.schedule()).get(f"running {QUEUE} default") is None


def test_an_ended_or_expired_entry_is_skipped(store: PredictionStore) -> None:
    gone, kept = line_up(store, "a", 2)
    store.redis.delete(keys.prediction(gone.id))
    assert claim_all(store, gone.id, 2) == ["a2", None]
    assert status(store, kept.id) is Status.STARTED


@pytest.mark.parametrize("priority", list(Priority))
def test_the_scripts_build_the_keys_the_keys_module_does(store: PredictionStore, priority: Priority) -> None:
    (made,) = line_up(store, "alice", 1, priority=priority)
    assert store.redis.zscore(keys.schedule_waiting(QUEUE, priority, "alice"), made.id) is not None
    assert store.redis.zscore(keys.schedule_turns(QUEUE, priority), "alice") is not None

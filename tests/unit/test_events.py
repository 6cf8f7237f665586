"""Prediction logs and event logs as the store's scripts write them, on fakeredis."""

import json
import time
from collections.abc import Callable

import fakeredis
import pytest

from common.records import Status
from common.store import keys
from common.store.events import EVENT_NOTE, RESTART_EVENT, StoredEvent, event_order
from common.store.predictions import PredictionStore
from tests.unit.stores import (
    claimed,
    lapse_lease,
    lapse_queue_deadline,
    new,
)

# -- logs and events ---------------------------------------------------------------------------


def test_append_log(store: PredictionStore, client: fakeredis.FakeRedis) -> None:
    prediction = new(store)
    store.append_log(prediction.id, "one\n")
    store.append_log(prediction.id, "two\n")
    assert store.get(prediction.id).logs == "one\ntwo\n"
    assert client.ttl(keys.prediction_logs(prediction.id)) > 0


def test_emit_appends_output_events(
    store: PredictionStore, client: fakeredis.FakeRedis, updates: Callable[[], list[str]]
) -> None:
    prediction = claimed(store, "t1")
    updates()
    first = store.events.emit(prediction.id, "t1", "Hello")
    second = store.events.emit(prediction.id, "t1", {"text": " world"})
    assert first is not None and second is not None
    assert first.count("-") == second.count("-") == 1
    assert store.events.after(prediction.id, None) == [
        StoredEvent(first, "output", '"Hello"'),
        StoredEvent(second, "output", json.dumps({"text": " world"})),
    ]
    assert [e.id for e in store.events.after(prediction.id, first)] == [second]
    assert store.events.after(prediction.id, second) == []
    assert len(store.events.after(prediction.id, None, count=1)) == 1
    assert client.ttl(keys.prediction_events(prediction.id)) > 0
    assert updates() == [f"{prediction.id} {EVENT_NOTE}"] * 2


def test_streamed_create_opens_the_event_log(store: PredictionStore) -> None:
    streamed, plain = new(store, stream=True, init_event='{"id": 1}'), new(store)
    assert [(e.event, e.data) for e in store.events.after(streamed.id, None)] == [("init", '{"id": 1}')]
    assert (store.events.exists(streamed.id), store.events.exists(plain.id)) == (True, False)
    assert store.events.after(plain.id, None) == []


@pytest.mark.parametrize(
    ("outcome", "terminal_event"),
    [(Status.SUCCEEDED, "done"), (Status.CANCELLED, "done"), (Status.FAILED, "error")],
)
def test_finishing_a_streamed_prediction_ends_its_event_log(
    store: PredictionStore, outcome: Status, terminal_event: str
) -> None:
    prediction = new(store, stream=True, init_event="{}")
    store.claim(prediction.id, "t1", ready=True)
    store.events.emit(prediction.id, "t1", "x")
    assert store.finish(prediction.id, "t1", outcome)
    events = store.events.after(prediction.id, None)
    assert [e.event for e in events] == ["init", "output", terminal_event]
    assert [e.is_terminal for e in events] == [False, False, True]
    assert events[-1].data == ""


def test_abandoning_a_streamed_prediction_ends_its_event_log_with_an_error(
    store: PredictionStore, client: fakeredis.FakeRedis
) -> None:
    prediction = new(store, stream=True, init_event="{}")
    lapse_queue_deadline(client, prediction.id)
    assert store.overdue.abandon_overdue(time.time()) == 1
    assert [e.event for e in store.events.after(prediction.id, None)] == ["init", "error"]


def test_finishing_an_unstreamed_prediction_writes_no_events(store: PredictionStore) -> None:
    prediction = claimed(store, "t1")
    store.finish(prediction.id, "t1", Status.SUCCEEDED)
    assert not store.events.exists(prediction.id)


def test_finished_logs_and_events_expire_with_the_record(
    store: PredictionStore, client: fakeredis.FakeRedis
) -> None:
    prediction = claimed(store, "t1")
    store.append_log(prediction.id, "line\n")
    store.events.emit(prediction.id, "t1", "x")
    store.finish(prediction.id, "t1", Status.SUCCEEDED)
    retention = store.settings.retention
    for key in (keys.prediction, keys.prediction_logs, keys.prediction_events):
        assert 0 < client.ttl(key(prediction.id)) <= retention


# -- output of an attempt that no longer holds the claim ----------------------------------------


def test_a_chunk_without_the_claim_is_refused(store: PredictionStore) -> None:
    pending = new(store, stream=True, init_event="{}")
    assert store.events.emit(pending.id, "t1", "before any claim") is None
    assert store.events.emit(pending.id, "", "no token") is None
    store.claim(pending.id, "t1", ready=True)
    assert store.events.emit(pending.id, "someone else", "x") is None
    assert store.events.emit("no-such-prediction", "t1", "x") is None
    assert [e.event for e in store.events.after(pending.id, None)] == ["init"]


def test_a_reclaimed_prediction_refuses_the_lost_attempt_and_marks_the_restart(
    store: PredictionStore, client: fakeredis.FakeRedis, updates: Callable[[], list[str]]
) -> None:
    prediction = new(store, stream=True, init_event="{}")
    store.claim(prediction.id, "t1", ready=True)
    assert store.events.emit(prediction.id, "t1", "first attempt") is not None
    lapse_lease(client, prediction.id)
    updates()

    taken = store.claim(prediction.id, "t2", ready=True)

    marker = store.events.last(prediction.id)
    assert marker is not None and marker.event == RESTART_EVENT and not marker.is_terminal
    assert taken.prediction is not None and taken.prediction.stream_start == marker.id
    assert store.get(prediction.id).stream_start == marker.id
    assert f"{prediction.id} {EVENT_NOTE}" in updates()  # live readers hear of the marker
    assert store.events.at(prediction.id, marker.id) == marker
    assert store.events.emit(prediction.id, "t1", "lost attempt") is None
    assert store.events.emit(prediction.id, "t2", "second attempt") is not None
    kinds = [e.event for e in store.events.after(prediction.id, None)]
    assert kinds == ["init", "output", RESTART_EVENT, "output"]
    assert json.loads(store.events.last(prediction.id).data) == "second attempt"


def test_nothing_is_appended_after_the_end(store: PredictionStore) -> None:
    prediction = new(store, stream=True, init_event="{}")
    store.claim(prediction.id, "t1", ready=True)
    assert store.finish(prediction.id, "t1", Status.SUCCEEDED, output="x")
    assert store.events.emit(prediction.id, "t1", "late") is None
    assert store.events.last(prediction.id).event == "done"


def test_a_first_claim_and_an_unstreamed_reclaim_write_no_marker(
    store: PredictionStore, client: fakeredis.FakeRedis
) -> None:
    streamed, plain = new(store, stream=True, init_event="{}"), new(store)
    store.claim(streamed.id, "t1", ready=True)
    store.claim(plain.id, "t1", ready=True)
    lapse_lease(client, plain.id)
    store.claim(plain.id, "t2", ready=True)
    assert [e.event for e in store.events.after(streamed.id, None)] == ["init"]
    assert not store.events.exists(plain.id)
    assert store.get(streamed.id).stream_start == store.get(plain.id).stream_start == ""


def test_event_order_sorts_as_the_log_does() -> None:
    ids = ["1700000000000-0", "1700000000000-1", "1700000000000-10", "1700000000001-0", "99-5"]
    assert sorted(ids, key=event_order) == ["99-5", *ids[:4]]
    assert event_order("12-3") == (12, 3)

"""The supervisor: relays cancellation, enforces the grace period, kills only a deaf running adapter.

The store and the cancel notifier run on fakeredis. Tests wait on events, never
sleep; where a test must show that something does *not* happen once the grace
period is over, the supervisor's clock is a fake one the test advances, and the
test then waits for the supervisor to finish handling a later prediction.
"""

import threading
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
import redis

from common.config import Settings
from common.errors import PredictionCancelled
from common.ids import new_prediction_id
from common.records import ErrorSource, ModelRef, Prediction, Status
from common.store import keys
from common.store.notifier import Notifier
from common.store.predictions import ClaimOutcome, PredictionStore
from workers import supervisor as supervisor_module
from workers.context import PredictionContext, StopReason
from workers.supervisor import Supervisor, run_time_exceeded

SETTINGS = Settings.defaults(redis_url="redis://unused", lease_ttl=1, cancel_grace=0.2)
WAIT = 10.0
"""Seconds to wait for an event that should come within a few renewal intervals."""


class RecordingStore(PredictionStore):
    """A store that signals each renew and finish, and can hold finishes until ``gate`` opens."""

    def __init__(self, client: fakeredis.FakeRedis, settings: Settings) -> None:
        super().__init__(client, settings)
        self.renewed: defaultdict[str, threading.Event] = defaultdict(threading.Event)
        self.finishing: defaultdict[str, threading.Event] = defaultdict(threading.Event)
        self.gate = threading.Event()
        self.gate.set()

    def renew(self, prediction_id: str, token: str) -> tuple[bool, bool]:
        result = super().renew(prediction_id, token)
        self.renewed[prediction_id].set()
        return result

    def finish(self, prediction_id: str, token: str, status: Status, **kwargs: Any) -> bool:
        self.finishing[prediction_id].set()
        self.gate.wait(WAIT)
        return super().finish(prediction_id, token, status, **kwargs)


class Kill:
    """Stands in for killing the worker process: records the call."""

    def __init__(self) -> None:
        self.called = threading.Event()
        self.count = 0

    def __call__(self) -> None:
        self.count += 1
        self.called.set()


class Clock:
    """A monotonic clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(decode_responses=True)


@pytest.fixture
def notifier(client: fakeredis.FakeRedis) -> Iterator[Notifier]:
    notifier = Notifier(client, keys.cancel_channel())
    yield notifier
    notifier.stop()


@pytest.fixture
def kill() -> Kill:
    return Kill()


def make_store(client: fakeredis.FakeRedis, settings: Settings = SETTINGS) -> RecordingStore:
    return RecordingStore(client, settings)


def running(store: PredictionStore, token: str) -> str:
    """Creates a prediction of alice's and claims it with ``token``."""
    prediction_id = new_prediction_id()
    prediction = Prediction(
        prediction_id, "alice", ModelRef("a", "m", 1), "a.m", {}, Status.PENDING, 0.0, 0.0
    )
    store.create(prediction, "task")
    assert store.claim(prediction_id, token, ready=True).outcome is ClaimOutcome.CLAIMED
    return prediction_id


def status(store: PredictionStore, prediction_id: str) -> Status:
    prediction = store.get(prediction_id)
    assert prediction is not None
    return prediction.status


def test_cancel_request_sets_cancelled(client: fakeredis.FakeRedis, notifier: Notifier, kill: Kill) -> None:
    store = make_store(client)
    prediction_id = running(store, "t1")
    ctx = PredictionContext(prediction_id, store, stream=False)
    with Supervisor(store, notifier, SETTINGS, kill=kill).watching(prediction_id, "t1", ctx):
        assert store.renewed[prediction_id].wait(WAIT)
        assert not ctx.cancelled.is_set()
        store.request_cancel(prediction_id, "alice")
        assert ctx.cancelled.wait(WAIT)
    assert ctx.stop_reason is StopReason.CANCELLED
    with pytest.raises(PredictionCancelled, match="asked to stop"):
        ctx.raise_if_cancelled()


def test_deaf_adapter_is_finished_as_cancelled_then_killed(
    client: fakeredis.FakeRedis, notifier: Notifier, kill: Kill
) -> None:
    store = make_store(client)
    prediction_id = running(store, "t1")
    ctx = PredictionContext(prediction_id, store, stream=False)
    with Supervisor(store, notifier, SETTINGS, kill=kill).watching(prediction_id, "t1", ctx) as watch:
        watch.in_adapter = True  # predict() runs, and never looks at ctx
        store.request_cancel(prediction_id, "alice")
        assert kill.called.wait(WAIT)
        assert status(store, prediction_id) is Status.CANCELLED
    assert ctx.stop_reason is StopReason.CANCELLED


def test_deaf_adapter_is_killed_though_the_next_batch_is_claimed_and_waiting(
    client: fakeredis.FakeRedis, notifier: Notifier, kill: Kill
) -> None:
    store = make_store(client)
    deaf, waiting = running(store, "t1"), running(store, "t2")
    supervisor = Supervisor(store, notifier, SETTINGS, kill=kill)
    ctx = PredictionContext(deaf, store, stream=False)
    next_ctx = PredictionContext(waiting, store, stream=False)
    with supervisor.watching(deaf, "t1", ctx) as watch, supervisor.watching(waiting, "t2", next_ctx):
        watch.in_adapter = True  # the running batch; the other was claimed for the next one
        store.request_cancel(deaf, "alice")
        assert kill.called.wait(WAIT)
        assert status(store, deaf) is Status.CANCELLED
    assert status(store, waiting) is Status.STARTED  # not ended: it runs again once its lease lapses


def test_adapter_past_the_run_cap_is_failed_then_killed(
    client: fakeredis.FakeRedis, notifier: Notifier, kill: Kill
) -> None:
    settings = Settings.defaults(redis_url="redis://unused", lease_ttl=1, cancel_grace=0.2, max_run_time=0.3)
    store = make_store(client, settings)
    prediction_id = running(store, "t1")
    ctx = PredictionContext(prediction_id, store, stream=False)
    with Supervisor(store, notifier, settings, kill=kill).watching(prediction_id, "t1", ctx) as watch:
        watch.in_adapter = True
        assert ctx.cancelled.wait(WAIT)
        assert ctx.stop_reason is StopReason.TIMED_OUT
        assert kill.called.wait(WAIT)
    failed = store.get(prediction_id)
    assert failed is not None and failed.status is Status.FAILED
    assert failed.error == run_time_exceeded(0.3)
    assert failed.error.source is ErrorSource.EXTERNAL


def test_lost_claim_stops_the_adapter_and_writes_nothing(
    client: fakeredis.FakeRedis, notifier: Notifier, kill: Kill
) -> None:
    store = make_store(client)
    prediction_id = running(store, "t1")
    ctx = PredictionContext(prediction_id, store, stream=False)
    with Supervisor(store, notifier, SETTINGS, kill=kill).watching(prediction_id, "t1", ctx) as watch:
        watch.in_adapter = True
        client.hset(keys.prediction(prediction_id), "claim", "t2")  # another worker took it over
        assert ctx.cancelled.wait(WAIT)
        assert ctx.stop_reason is StopReason.LOST
        assert kill.called.wait(WAIT)
    assert status(store, prediction_id) is Status.STARTED
    assert not store.finishing[prediction_id].is_set()


def test_watch_ended_before_the_grace_period_is_not_killed(
    client: fakeredis.FakeRedis, notifier: Notifier, kill: Kill, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    monkeypatch.setattr(supervisor_module, "time", clock)
    store = make_store(client)
    first, second = running(store, "t1"), running(store, "t2")
    supervisor = Supervisor(store, notifier, SETTINGS, kill=kill)
    ctx = PredictionContext(first, store, stream=False)
    with supervisor.watching(first, "t1", ctx) as watch:
        watch.in_adapter = True
        store.request_cancel(first, "alice")
        assert ctx.cancelled.wait(WAIT)
    clock.now += 10 * SETTINGS.cancel_grace  # the first stop's grace period is over
    later = PredictionContext(second, store, stream=False)
    with supervisor.watching(second, "t2", later):
        store.request_cancel(second, "alice")
        assert later.cancelled.wait(WAIT)
        clock.now += 10 * SETTINGS.cancel_grace
        assert store.finishing[second].wait(WAIT)  # the supervisor enforced the second one's grace
    assert kill.count == 0


def test_watch_ending_while_the_stop_is_enforced_is_not_killed(
    client: fakeredis.FakeRedis, notifier: Notifier, kill: Kill
) -> None:
    store = make_store(client)
    first, second = running(store, "t1"), running(store, "t2")
    supervisor = Supervisor(store, notifier, SETTINGS, kill=kill)
    ctx = PredictionContext(first, store, stream=False)
    store.gate.clear()
    with supervisor.watching(first, "t1", ctx) as watch:
        watch.in_adapter = True
        store.request_cancel(first, "alice")
        assert store.finishing[first].wait(WAIT)  # grace over: the supervisor is ending it
    store.gate.set()
    later = PredictionContext(second, store, stream=False)
    with supervisor.watching(second, "t2", later):
        assert store.renewed[second].wait(WAIT)  # the supervisor has moved on to the next prediction
    assert kill.count == 0
    assert status(store, first) is Status.CANCELLED


def test_a_cancel_heard_between_the_claim_and_the_watch_is_relayed_at_once(
    client: fakeredis.FakeRedis, notifier: Notifier, kill: Kill
) -> None:
    settings = Settings.defaults(redis_url="redis://unused", lease_ttl=600, cancel_grace=0.2)
    store = make_store(client, settings)  # the first renewal is 200 s away: only the news can stop it
    supervisor = Supervisor(store, notifier, settings, kill=kill)
    prediction_id = running(store, "t1")
    ctx = PredictionContext(prediction_id, store, stream=False)
    with supervisor.hearing([prediction_id]) as heard:
        assert heard.wait(WAIT)  # the listener has subscribed
        heard.clear()
        store.request_cancel(prediction_id, "alice")
        assert heard.wait(WAIT)  # the cancel was published before anyone watched the prediction

        with supervisor.watching(prediction_id, "t1", ctx, heard):
            assert ctx.cancelled.wait(WAIT)
            assert ctx.stop_reason is StopReason.CANCELLED


class FailingStore(RecordingStore):
    """A store whose next renewals fail with ``errors``, one each, as a Redis refusing writes would."""

    def __init__(self, client: fakeredis.FakeRedis, settings: Settings, errors: list[Exception]) -> None:
        super().__init__(client, settings)
        self.errors = errors

    def renew(self, prediction_id: str, token: str) -> tuple[bool, bool]:
        if self.errors:
            raise self.errors.pop(0)
        return super().renew(prediction_id, token)


def test_the_supervisor_outlives_any_redis_error_and_goes_on_renewing_and_relaying(
    client: fakeredis.FakeRedis, notifier: Notifier, kill: Kill
) -> None:
    errors: list[Exception] = [
        redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
        redis.exceptions.ResponseError("BUSY Redis is busy running a script."),
        redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
    ]
    store = FailingStore(client, SETTINGS, errors)
    prediction_id = running(store, "t1")
    ctx = PredictionContext(prediction_id, store, stream=False)
    with Supervisor(store, notifier, SETTINGS, kill=kill).watching(prediction_id, "t1", ctx):
        assert store.renewed[prediction_id].wait(WAIT)  # renewed once the errors were spent
        assert not errors
        store.request_cancel(prediction_id, "alice")
        assert ctx.cancelled.wait(WAIT)
    assert ctx.stop_reason is StopReason.CANCELLED

"""How a batching version's worker gathers a batch, with a real runner on a real Redis."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import redis

from api.predictions import build
from common.catalog import Catalog, ModelVersion
from common.config import Settings
from common.queue.broker import TaskMessages, make_celery
from common.records import Status
from common.store import keys
from common.store.notifier import Notifier
from common.store.predictions import CancelOutcome, PredictionStore
from tests.conftest import MODELS
from workers.runner import Runner
from workers.supervisor import Supervisor


@pytest.fixture
def settings(redis_server: Any) -> Settings:
    return Settings.defaults(redis_url=redis_server.url, models_path=MODELS)


@pytest.fixture
def version(settings: Settings) -> ModelVersion:
    """``tests/batched-embed``: a batch waits up to 400 ms, and ends after 400 ms without a request."""
    return Catalog.load(settings.models_path).resolve("tests/batched-embed")


@pytest.fixture
def runner(settings: Settings, redis_client: redis.Redis) -> Iterator[tuple[Runner, list[float]]]:
    """A worker process's runner, and the longest wait each of its gathers allowed itself."""
    store = PredictionStore(redis_client, settings)
    cancels = Notifier(redis_client, keys.cancel_channel())
    messages = TaskMessages(make_celery(settings), "inferq.webhooks")
    runner = Runner(
        settings, Catalog.load(settings.models_path), store, Supervisor(store, cancels, settings), messages
    )
    waits: list[float] = []
    take = store.lanes.take

    def recorded_take(model: Any, count: int, wait: float, gap: float) -> Any:
        waits.append(wait)
        return take(model, count, wait, gap)

    store.lanes.take = recorded_take  # type: ignore[method-assign]
    yield runner, waits
    store.lanes.close()
    cancels.stop(wait=True)


WAIT = 10.0
"""Seconds a test waits for news before it fails."""


def queue(
    runner: Runner, version: ModelVersion, text: str, before: Callable[[str], None] | None = None
) -> str:
    """Creates a pending prediction of ``version``, as the API does; returns its id. ``before`` is
    given the id first (to listen for news of it before anything can happen to it)."""
    prediction = build("alice", version, {"input": [text]})
    if before is not None:
        before(prediction.id)
    runner.store.create(
        prediction, runner.messages.envelope(prediction.id, version.ref, version.queue), batched=True
    )
    return prediction.id


def metrics(runner: Runner, prediction_id: str) -> dict[str, Any]:
    record = runner.store.get(prediction_id)
    assert record is not None and record.status.value == "succeeded"
    return dict(json.loads(runner.store.redis.hget(keys.prediction(prediction_id), "metrics") or "{}"))


def test_a_lone_clients_requests_stop_waiting_for_company_until_some_is_queued(
    runner: tuple[Runner, list[float]], version: ModelVersion
) -> None:
    run, waits = runner
    alone = queue(run, version, "the first request")
    run.run(alone, version.ref.key)  # waits its 400 ms: nobody comes
    again = queue(run, version, "the same client's next request")
    run.run(again, version.ref.key)  # the last batch had no company: this one waits for none
    first, queued = queue(run, version, "a burst begins"), queue(run, version, "and goes on")
    run.run(first, version.ref.key)  # takes what is queued, without waiting
    later = queue(run, version, "after a batch with company")
    run.run(later, version.ref.key)

    # the batch with company looked for the next one while it ran, found nobody and handed back
    assert waits == [0.4, 0.0, 0.0, 0.4]
    assert "batch_size" not in metrics(run, alone) and "batch_size" not in metrics(run, again)
    assert metrics(run, first)["batch_size"] == metrics(run, queued)["batch_size"] == 2


def test_a_batch_with_company_goes_on_to_run_the_lanes_next_batches_itself(
    runner: tuple[Runner, list[float]], version: ModelVersion
) -> None:
    run, waits = runner
    ids = [queue(run, version, f"request {n}") for n in range(20)]
    run.run(ids[0], version.ref.key)  # one task: a full batch, then the rest, claimed while it ran

    passes = {metrics(run, i)["batch_id"]: metrics(run, i)["batch_size"] for i in ids}
    assert len(passes) == 2 and sum(passes.values()) == 20 and max(passes.values()) <= 16
    # every message but the task's own is gone: no worker picks up a hinted one for nothing
    assert run.store.redis.llen(keys.celery_queue(version.queue)) == 1
    assert len(waits) == 1  # only the task's own batch waited on the lane


def during_the_first_pass(run: Runner, version: ModelVersion, act: Callable[[], None]) -> None:
    """Makes ``act`` run inside the adapter's first pass (the next passes run as usual)."""
    adapter = run.load(version)
    original = adapter.predict_batch  # type: ignore[attr-defined]
    calls = []

    def predict_batch(inputs: list[dict[str, Any]], ctxs: list[Any]) -> list[Any]:
        calls.append(len(inputs))
        if len(calls) == 1:
            act()
        return original(inputs, ctxs)

    adapter.predict_batch = predict_batch  # type: ignore[attr-defined]


def queue_and_see_claimed(run: Runner, version: ModelVersion, text: str, news: Notifier) -> str:
    """Queues a prediction as :func:`queue` does and returns its id once it is claimed (the
    progress news of it, each followed by a look at the record: the first news may be none)."""
    with ExitStack() as stack:
        heard: list[threading.Event] = []
        prediction_id = queue(
            run, version, text, lambda i: heard.append(stack.enter_context(news.watch(i)).event)
        )
        while (record := run.store.get(prediction_id)) is None or record.status is not Status.STARTED:
            assert heard[0].wait(WAIT), f"{prediction_id} not claimed while the first pass ran"
            heard[0].clear()
    return prediction_id


def test_the_next_batch_is_claimed_while_the_model_runs_the_current_one(
    runner: tuple[Runner, list[float]], version: ModelVersion
) -> None:
    run, _ = runner
    first = [queue(run, version, f"request {n}") for n in range(2)]
    later: list[str] = []
    news = Notifier(run.store.redis, keys.progress_channel())

    def requests_come_while_it_runs() -> None:
        for n in range(3):
            later.append(queue_and_see_claimed(run, version, f"later request {n}", news))

    during_the_first_pass(run, version, requests_come_while_it_runs)
    run.run(first[0], version.ref.key)
    news.stop(wait=True)

    first_pass = {metrics(run, i)["batch_id"] for i in first}
    assert len(first_pass) == 1 and all(metrics(run, i)["batch_id"] not in first_pass for i in later)
    # their messages went with their claims: the queue holds only the task's own
    assert run.store.redis.llen(keys.celery_queue(version.queue)) == 1


def test_a_prediction_claimed_ahead_and_cancelled_before_its_pass_ends_cancelled(
    runner: tuple[Runner, list[float]], version: ModelVersion
) -> None:
    run, _ = runner
    first = [queue(run, version, f"request {n}") for n in range(2)]
    later: list[str] = []
    news = Notifier(run.store.redis, keys.progress_channel())

    def one_comes_and_is_cancelled() -> None:
        later.append(queue_and_see_claimed(run, version, "a request cancelled once claimed", news))
        assert run.store.request_cancel(later[0], "alice") is CancelOutcome.REQUESTED

    during_the_first_pass(run, version, one_comes_and_is_cancelled)
    run.run(first[0], version.ref.key)
    news.stop(wait=True)

    record = run.store.get(later[0])
    assert record is not None and record.status is Status.CANCELLED
    assert all(metrics(run, i)["batch_size"] == 2 for i in first)


def test_a_failing_run_lets_go_of_the_batch_it_claimed_ahead_unended(
    runner: tuple[Runner, list[float]], version: ModelVersion
) -> None:
    run, _ = runner
    first = [queue(run, version, f"request {n}") for n in range(2)]
    later: list[str] = []
    news = Notifier(run.store.redis, keys.progress_channel())

    def one_comes_then_the_run_breaks() -> None:
        later.append(queue_and_see_claimed(run, version, "claimed ahead of a run that breaks", news))
        raise KeyboardInterrupt  # escapes the adapter's error handling, as a crash of the run would

    during_the_first_pass(run, version, one_comes_then_the_run_breaks)
    with pytest.raises(KeyboardInterrupt):
        run.run(first[0], version.ref.key)
    news.stop(wait=True)

    # claimed, not ended, and no longer watched: its lease lapses and recovery queues it again
    record = run.store.get(later[0])
    assert record is not None and record.status is Status.STARTED
    assert not run.supervisor._current()

"""Streams of predictions whose worker was lost: readers get the current attempt's output alone.

A prediction whose worker dies (or stalls past its lease) runs again elsewhere.
Its event log then holds a restart marker, sent as a second ``init``; chunks of
the lost attempt are refused once the claim moved, and a reader that starts
before the marker skips to it, so no stream joins two attempts' output.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

import pytest
import redis
import wriftai

from common.config import Settings
from common.ids import new_prediction_id
from common.processes.launcher import Launcher
from common.records import ModelRef, Prediction, Status
from common.store import keys
from common.store.predictions import PredictionStore
from tests.integration.conftest import Stack, pool_children, wait_for_status
from tests.unit.stores import lapse_lease

TERMINAL = {"succeeded", "failed", "cancelled", "abandoned"}
STREAMED = {"count": 16, "seconds": 0.4}
"""Long enough (about 6 s) to be mid-stream on the first worker once a second one is up."""


def _pids(chunks: list[Any]) -> set[int]:
    """The processes that emitted these chunks (``<pid>:<i> ``, see the streams fixture)."""
    return {int(str(chunk).split(":")[0]) for chunk in chunks}


class Follower:
    """Reads a prediction's stream with the official client, in a thread, as a live user would."""

    def __init__(self, stack: Stack, prediction_id: str, outputs_to_wait_for: int) -> None:
        self.events: list[dict[str, Any]] = []
        self.flowing = threading.Event()
        self._wanted = outputs_to_wait_for
        self._thread = threading.Thread(target=self._follow, args=(stack, prediction_id))
        self._thread.start()

    def _follow(self, stack: Stack, prediction_id: str) -> None:
        with stack.client() as client:
            for event in client.predictions.stream(prediction_id):
                self.events.append(dict(event))
                if sum(e["event"] == "output" for e in self.events) >= self._wanted:
                    self.flowing.set()

    def join(self) -> list[dict[str, Any]]:
        self._thread.join(60)
        assert not self._thread.is_alive()
        return self.events


def _after_last_init(events: list[dict[str, Any]]) -> list[Any]:
    last_init = max(i for i, e in enumerate(events) if e["event"] == "init")
    return [e["data"] for e in events[last_init:] if e["event"] == "output"]


@pytest.mark.slow
def test_a_stream_rerun_after_its_worker_was_killed_never_doubles_its_output(
    alice: wriftai.Client, stack: Stack, start_worker: Callable[..., str]
) -> None:
    launcher: Launcher = start_worker.launcher  # type: ignore[attr-defined]
    doomed = start_worker(["tests.streams"])
    created = alice.predictions.create(model="tests/streams", input=STREAMED, stream=True)
    live = Follower(stack, created["id"], outputs_to_wait_for=2)
    assert live.flowing.wait(30)
    (killed,) = pool_children(launcher.processes[doomed].pid)
    survivor = start_worker(["tests.streams"])
    assert not any(e["event"] == "done" for e in live.events), "it ended before the kill"

    launcher.kill_group(doomed)  # mid-stream: main process and pool, as `docker kill` does

    assert wait_for_status(stack.env["INFERQ_REDIS_URL"], created["id"], TERMINAL, timeout=60) == "succeeded"
    output = alice.predictions.get(created["id"])["output"]
    (rerun_by,) = pool_children(launcher.processes[survivor].pid)
    assert _pids(output.split()) == {rerun_by}  # the record keeps the second attempt's output alone

    # Read from the start once it ended: the current attempt alone, shaped as any stream.
    replayed = [dict(e) for e in alice.predictions.stream(created["id"])]
    assert [e["event"] for e in replayed] == ["init"] + ["output"] * STREAMED["count"] + ["done"]
    assert "".join(e["data"] for e in replayed[1:-1]) == output == replayed[-1]["data"]["output"]

    # Followed live across the crash: the first attempt's chunks, then a fresh init, then the
    # second attempt's, whose text is the output.
    followed = live.join()
    inits = [i for i, e in enumerate(followed) if e["event"] == "init"]
    assert len(inits) == 2 and followed[-1]["event"] == "done"
    assert _pids([e["data"] for e in followed[: inits[1]] if e["event"] == "output"]) == {killed}
    assert "".join(_after_last_init(followed)) == output

    # Resumed from the lost attempt: the restart first, then the second attempt; from the
    # restart on, as usual.
    lost_chunk, restart = followed[inits[1] - 1]["id"], followed[inits[1]]["id"]
    resumed = [dict(e) for e in alice.predictions.stream(created["id"], after_id=lost_chunk)]
    assert (resumed[0]["id"], resumed[0]["event"]) == (restart, "init") and resumed[1:] == replayed[1:]
    assert [dict(e) for e in alice.predictions.stream(created["id"], after_id=restart)] == replayed[1:]


@pytest.mark.slow
def test_a_stalled_worker_that_lost_its_claim_appends_nothing_when_it_wakes(
    alice: wriftai.Client, stack: Stack, start_worker: Callable[..., str], redis_client: redis.Redis
) -> None:
    launcher: Launcher = start_worker.launcher  # type: ignore[attr-defined]
    stalled = start_worker(["tests.streams"])
    created = alice.predictions.create(model="tests/streams", input=STREAMED, stream=True)
    live = Follower(stack, created["id"], outputs_to_wait_for=2)
    assert live.flowing.wait(30)
    survivor = start_worker(["tests.streams"])
    group = launcher.processes[stalled].pid
    (stalled_child,) = pool_children(group)

    os.killpg(group, signal.SIGSTOP)  # a stall past its lease: a paused VM, a long GC, swap
    try:
        status = wait_for_status(stack.env["INFERQ_REDIS_URL"], created["id"], TERMINAL, timeout=60)
    finally:
        os.killpg(group, signal.SIGCONT)
    assert status == "succeeded"
    launcher.stop(stalled)  # a warm shutdown: the woken attempt runs to its end first

    log = redis_client.xrange(keys.prediction_events(created["id"]))
    kinds = [fields["event"] for _, fields in log]
    assert kinds[-1] == "done"  # nothing after the end
    marker = kinds.index("restart")
    rerun = [json.loads(fields["data"]) for _, fields in log[marker:] if fields["event"] == "output"]
    (rerun_by,) = pool_children(launcher.processes[survivor].pid)
    assert len(rerun) == STREAMED["count"] and _pids(rerun) == {rerun_by}
    assert stalled_child not in _pids(alice.predictions.get(created["id"])["output"].split())
    assert "".join(_after_last_init(live.join())) == alice.predictions.get(created["id"])["output"]


def test_the_real_redis_refuses_the_chunks_of_an_attempt_without_the_claim(redis_client: redis.Redis) -> None:
    store = PredictionStore(redis_client, Settings.defaults())
    # On a queue no worker consumes: its task message is a stand-in, not a Celery message.
    prediction = Prediction(
        new_prediction_id(),
        "alice",
        ModelRef("tests", "idle", 1),
        "tests.unserved",
        {},
        Status.PENDING,
        0.0,
        0.0,
        stream=True,
    )
    store.create(prediction, "a stand-in task message", "{}")
    store.claim(prediction.id, "first", ready=True)
    assert store.events.emit(prediction.id, "first", "a") is not None
    lapse_lease(redis_client, prediction.id)  # type: ignore[arg-type]
    store.claim(prediction.id, "second", ready=True)

    assert store.events.emit(prediction.id, "first", "stale") is None
    assert store.events.emit(prediction.id, "second", "b") is not None
    assert store.finish(prediction.id, "second", Status.SUCCEEDED, output="b")
    assert store.events.emit(prediction.id, "second", "after the end") is None
    log = store.events.after(prediction.id, None)
    assert [(e.event, e.data) for e in log] == [
        ("init", "{}"),
        ("output", '"a"'),
        ("restart", ""),
        ("output", '"b"'),
        ("done", ""),
    ]
    assert store.get(prediction.id).stream_start == log[2].id  # type: ignore[union-attr]

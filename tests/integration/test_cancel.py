"""Cancellation: asynchronous, idempotent, recorded in Redis, effective even with no worker up."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import wriftai

from tests.integration.conftest import Stack, pool_children, wait_for_status

TERMINAL = {"succeeded", "failed", "cancelled", "abandoned"}


def _runs(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_queued_prediction_is_cancelled_at_once_with_no_worker_up_and_never_runs(
    alice: wriftai.Client, start_worker: Callable[..., str], tmp_path: Path
) -> None:
    record = tmp_path / "runs.txt"
    queued = alice.predictions.create(model="tests/idle", input={"record_to": str(record)})

    alice.predictions.cancel(queued["id"])

    assert alice.predictions.get(queued["id"])["status"] == "cancelled"
    alice.predictions.cancel(queued["id"])  # a retried cancel: the request was taken, no error

    start_worker(["tests.idle"])
    later = alice.predictions.create(model="tests/idle", input={"record_to": str(record)}, wait=True)
    assert later["status"] == "succeeded"
    assert alice.predictions.get(queued["id"])["status"] == "cancelled"
    assert all(later["id"] in line for line in _runs(record))  # the cancelled one never ran


def test_a_running_cooperative_prediction_stops_and_ends_cancelled(
    alice: wriftai.Client, stack: Stack, start_worker: Callable[..., str]
) -> None:
    start_worker(["tests.slow"])
    running = alice.predictions.create(model="tests/slow", input={"seconds": 120})
    wait_for_status(stack.env["INFERQ_REDIS_URL"], running["id"], {"started"})

    alice.predictions.cancel(running["id"])

    assert wait_for_status(stack.env["INFERQ_REDIS_URL"], running["id"], TERMINAL) == "cancelled"
    ended = alice.predictions.get(running["id"])
    assert ended["status"] == "cancelled" and ended["error"] is None and ended["output"] is None


def test_a_repeat_cancel_after_the_cancellation_took_effect_answers_200_null(
    alice: wriftai.Client, stack: Stack, start_worker: Callable[..., str]
) -> None:
    start_worker(["tests.slow"])
    running = alice.predictions.create(model="tests/slow", input={"seconds": 120})
    wait_for_status(stack.env["INFERQ_REDIS_URL"], running["id"], {"started"})
    alice.predictions.cancel(running["id"])
    assert wait_for_status(stack.env["INFERQ_REDIS_URL"], running["id"], TERMINAL) == "cancelled"

    alice.predictions.cancel(running["id"])  # the client retries (its first answer was lost to a proxy)
    with stack.http("alice") as http:
        again = http.post(f"/v1/predictions/{running['id']}/cancel")
    assert (again.status_code, again.headers["content-type"], again.text) == (200, "application/json", "null")
    assert alice.predictions.get(running["id"])["status"] == "cancelled"


def test_cancelling_a_prediction_that_failed_is_409_every_time(
    alice: wriftai.Client, start_worker: Callable[..., str]
) -> None:
    start_worker(["tests.raises"])
    failed = alice.predictions.create(model="tests/raises", input={"message": "no good"}, wait=True)
    assert failed["status"] == "failed"
    for _ in range(2):
        with pytest.raises(httpx.HTTPStatusError) as raised:
            alice.predictions.cancel(failed["id"])
        assert raised.value.response.status_code == 409
    assert alice.predictions.get(failed["id"])["status"] == "failed"


def test_echo_cancelled_mid_delay(alice: wriftai.Client, stack: Stack) -> None:
    running = alice.predictions.create(model="inferq/echo", input={"prompt": "one two three", "delay_s": 60})
    wait_for_status(stack.env["INFERQ_REDIS_URL"], running["id"], {"started"})
    alice.predictions.cancel(running["id"])
    assert wait_for_status(stack.env["INFERQ_REDIS_URL"], running["id"], TERMINAL) == "cancelled"


def test_cancelling_a_finished_prediction_is_409(alice: wriftai.Client) -> None:
    done = alice.predictions.create(model="inferq/echo", input={"prompt": "x"}, wait=True)
    with pytest.raises(httpx.HTTPStatusError) as raised:
        alice.predictions.cancel(done["id"])
    assert raised.value.response.status_code == 409
    assert raised.value.response.json()["error"]["code"] == "conflict"
    assert alice.predictions.get(done["id"])["status"] == "succeeded"


def test_a_deaf_adapter_is_stopped_hard_without_harming_its_neighbour(
    alice: wriftai.Client, stack: Stack, start_worker: Callable[..., str], tmp_path: Path
) -> None:
    name = start_worker(["tests.deaf", "tests.runs"], concurrency=2)
    record = tmp_path / "runs.txt"
    neighbour = alice.predictions.create(model="tests/runs", input={"record_to": str(record), "seconds": 4})
    deaf = alice.predictions.create(model="tests/deaf", input={"seconds": 300})
    redis_url = stack.env["INFERQ_REDIS_URL"]
    wait_for_status(redis_url, deaf["id"], {"started"})
    wait_for_status(redis_url, neighbour["id"], {"started"})

    alice.predictions.cancel(deaf["id"])
    assert alice.predictions.get(deaf["id"])["status"] == "started"  # asynchronous: not yet taken effect
    alice.predictions.cancel(deaf["id"])  # idempotent while the cancellation is in flight

    assert wait_for_status(redis_url, deaf["id"], TERMINAL) == "cancelled"
    assert wait_for_status(redis_url, neighbour["id"], TERMINAL) == "succeeded"
    assert [line.split()[0] for line in _runs(record)] == ["start", "done"]
    worker_pid = start_worker.launcher.processes[name].pid  # type: ignore[attr-defined]
    assert len(pool_children(worker_pid)) == 2  # the killed process was replaced
    again = alice.predictions.create(model="tests/deaf", input={"seconds": 0}, wait=True)
    assert again["status"] == "succeeded"


def test_a_cancel_requested_while_its_worker_is_down_holds(
    alice: wriftai.Client, stack: Stack, start_worker: Callable[..., str], tmp_path: Path
) -> None:
    name = start_worker(["tests.runs"])
    launcher = start_worker.launcher  # type: ignore[attr-defined]
    record = tmp_path / "runs.txt"
    running = alice.predictions.create(model="tests/runs", input={"record_to": str(record), "seconds": 60})
    wait_for_status(stack.env["INFERQ_REDIS_URL"], running["id"], {"started"})
    launcher.kill_group(name)

    alice.predictions.cancel(running["id"])

    assert wait_for_status(stack.env["INFERQ_REDIS_URL"], running["id"], TERMINAL) == "cancelled"
    assert not [line for line in _runs(record) if line.startswith("done")]


def test_signal_kill_of_a_worker_main_process_is_not_needed_for_cancel(
    alice: wriftai.Client, stack: Stack, start_worker: Callable[..., str]
) -> None:
    name = start_worker(["tests.slow"])
    running = alice.predictions.create(model="tests/slow", input={"seconds": 120})
    wait_for_status(stack.env["INFERQ_REDIS_URL"], running["id"], {"started"})
    worker_pid = start_worker.launcher.processes[name].pid  # type: ignore[attr-defined]
    os.kill(worker_pid, signal.SIGSTOP)  # the worker's main process is frozen; its child still listens
    try:
        alice.predictions.cancel(running["id"])
        assert wait_for_status(stack.env["INFERQ_REDIS_URL"], running["id"], TERMINAL) == "cancelled"
    finally:
        os.kill(worker_pid, signal.SIGCONT)

"""Workers that die: every prediction still ends in exactly one terminal status, run once to completion."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import redis
import wriftai

from common.queue import recovery
from common.store import keys
from tests.integration.conftest import Stack, pool_children, wait_for_status

TERMINAL = {"succeeded", "failed", "cancelled", "abandoned"}


def _runs(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()]


def test_a_killed_pool_process_s_prediction_finishes_once_elsewhere(
    alice: wriftai.Client, stack: Stack, start_worker: Callable[..., str], tmp_path: Path
) -> None:
    name = start_worker(["tests.runs"])
    record = tmp_path / "runs.txt"
    running = alice.predictions.create(model="tests/runs", input={"record_to": str(record), "seconds": 1})
    wait_for_status(stack.env["INFERQ_REDIS_URL"], running["id"], {"started"})
    worker_pid = start_worker.launcher.processes[name].pid  # type: ignore[attr-defined]
    (child,) = pool_children(worker_pid)

    os.kill(child, signal.SIGKILL)

    assert wait_for_status(stack.env["INFERQ_REDIS_URL"], running["id"], TERMINAL) == "succeeded"
    done = [run for run in _runs(record) if run[0] == "done"]
    assert len(done) == 1 and int(done[0][2]) != child
    assert alice.predictions.get(running["id"])["output"] == int(done[0][2])


def test_a_whole_worker_killed_mid_prediction_is_recovered_by_another(
    alice: wriftai.Client, stack: Stack, start_worker: Callable[..., str], tmp_path: Path
) -> None:
    doomed = start_worker(["tests.runs"])
    record = tmp_path / "runs.txt"
    # Long enough that it is still running on the doomed worker once the survivor is up.
    running = alice.predictions.create(model="tests/runs", input={"record_to": str(record), "seconds": 8})
    wait_for_status(stack.env["INFERQ_REDIS_URL"], running["id"], {"started"})
    launcher = start_worker.launcher  # type: ignore[attr-defined]
    doomed_pids = {launcher.processes[doomed].pid, *pool_children(launcher.processes[doomed].pid)}
    survivor = start_worker(["tests.runs"])
    assert [run[0] for run in _runs(record)] == ["start"], "it ended before the kill"

    launcher.kill_group(doomed)  # main process and pool, as `docker kill` does

    assert wait_for_status(stack.env["INFERQ_REDIS_URL"], running["id"], TERMINAL, timeout=30) == "succeeded"
    done = [run for run in _runs(record) if run[0] == "done"]
    assert len(done) == 1
    assert int(done[0][2]) in pool_children(launcher.processes[survivor].pid)
    assert int(done[0][2]) not in doomed_pids


def test_a_prediction_that_keeps_killing_its_worker_is_abandoned(
    alice: wriftai.Client, stack: Stack, start_worker: Callable[..., str]
) -> None:
    start_worker(["tests.crashes"])
    doomed = alice.predictions.create(model="tests/crashes", input={})

    assert wait_for_status(stack.env["INFERQ_REDIS_URL"], doomed["id"], TERMINAL, timeout=60) == "abandoned"
    error = alice.predictions.get(doomed["id"])["error"]
    assert error["source"] == "internal"
    assert "lost 3 times" in error["message"]


def test_the_run_cap_fails_a_cooperative_and_a_deaf_prediction(
    alice: wriftai.Client, stack: Stack, start_worker: Callable[..., str]
) -> None:
    start_worker(["tests.slow", "tests.deaf"], concurrency=2, INFERQ_MAX_RUN_TIME="1")
    slow = alice.predictions.create(model="tests/slow", input={"seconds": 60})
    deaf = alice.predictions.create(model="tests/deaf", input={"seconds": 60})
    redis_url = stack.env["INFERQ_REDIS_URL"]

    assert wait_for_status(redis_url, slow["id"], TERMINAL) == "failed"
    assert wait_for_status(redis_url, deaf["id"], TERMINAL) == "failed"
    for prediction_id in (slow["id"], deaf["id"]):
        error = alice.predictions.get(prediction_id)["error"]
        assert "maximum run time of 1 s" in error["message"]


def test_a_prediction_nobody_starts_before_its_queue_deadline_is_abandoned(
    alice: wriftai.Client, stack: Stack, redis_client: redis.Redis
) -> None:
    queued = alice.predictions.create(model="tests/idle", input={"record_to": "/dev/null"})
    redis_client.zadd(keys.pending(), {queued["id"]: time.time() - 1})  # its deadline has passed

    assert wait_for_status(stack.env["INFERQ_REDIS_URL"], queued["id"], TERMINAL, timeout=10) == "abandoned"
    error = alice.predictions.get(queued["id"])["error"]
    assert error["source"] == "internal" and "queue deadline" in error["message"]


def test_a_waiting_prediction_whose_message_was_lost_is_queued_again(
    alice: wriftai.Client,
    stack: Stack,
    redis_client: redis.Redis,
    start_worker: Callable[..., str],
    tmp_path: Path,
) -> None:
    record = tmp_path / "runs.txt"
    waiting = alice.predictions.create(model="tests/idle", input={"record_to": str(record)})
    redis_client.delete(keys.celery_queue("tests.idle"))  # its message is gone (a broker race, a restart)
    waited = recovery.ORPHAN_AGE + 1
    redis_client.zadd(keys.pending(), {waiting["id"]: time.time() - waited + 1800})  # queue deadline 1800 s

    start_worker(["tests.idle"])

    assert wait_for_status(stack.env["INFERQ_REDIS_URL"], waiting["id"], TERMINAL, timeout=60) == "succeeded"
    assert [line.split()[0] for line in record.read_text().splitlines()] == ["start", "done"]

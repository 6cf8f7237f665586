"""Models that hold the GIL: their claims are kept and their cancels enforced from outside the process.

The adapter ``tests/gil`` runs one backtracking regular expression, a C call
during which no other thread of its process runs. The pool process's own
supervisor thread is frozen for that long; the warden beside it is not.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from common.store import keys
from tests.integration.conftest import Stack
from tests.integration.terminals import Terminals

pytestmark = pytest.mark.slow


def steps_for(seconds: float) -> int:
    """The ``n`` whose regular expression holds the GIL for about ``seconds`` on this machine now."""
    n, began = 20, time.perf_counter()
    re.match(r"(a+)+$", "a" * n + "b")
    took = max(time.perf_counter() - began, 1e-4)
    return min(34, n + max(0, math.ceil(math.log2(seconds / took))))


def _lines(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _wait_for_start(path: Path, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        started = [line for line in _lines(path) if line[0] == "start"]
        if started:
            return int(started[0][2])
        time.sleep(0.05)
    raise AssertionError("the adapter never started")


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True


def test_a_model_holding_the_gil_past_its_lease_runs_once(
    stack: Stack, start_worker: Callable[..., str], terminals: Terminals, tmp_path: Path
) -> None:
    start_worker(["tests.gil"])
    record = tmp_path / "runs.txt"
    lease = float(stack.env["INFERQ_LEASE_TTL"])
    with stack.client() as client:
        created = client.predictions.create(
            model="tests/gil", input={"record_to": str(record), "n": steps_for(3 * lease)}
        )
    terminals.expect([created["id"]])

    statuses = terminals.wait(timeout=240)

    assert statuses == {created["id"]: "succeeded"}
    runs = _lines(record)
    assert [kind for kind, *_ in runs] == ["start", "done"], runs
    attempts = redis.Redis.from_url(stack.env["INFERQ_REDIS_URL"], decode_responses=True).hget(
        keys.prediction(created["id"]), "attempts"
    )
    assert attempts == "1"


def test_a_cancelled_model_holding_the_gil_is_killed_and_ends_cancelled(
    stack: Stack, start_worker: Callable[..., str], terminals: Terminals, tmp_path: Path
) -> None:
    start_worker(["tests.gil"])
    record = tmp_path / "runs.txt"
    with stack.client() as client:
        created = client.predictions.create(
            model="tests/gil", input={"record_to": str(record), "n": steps_for(120)}
        )
        pool_pid = _wait_for_start(record)
        time.sleep(0.5)  # well inside the C call by now
        client.predictions.cancel(created["id"])
    terminals.expect([created["id"]])
    grace = float(stack.env["INFERQ_CANCEL_GRACE"])

    # A deadline, not a measurement: without a warden the kill waits for the whole C call (minutes).
    statuses = terminals.wait(timeout=grace + 20)

    assert statuses == {created["id"]: "cancelled"}
    deadline = time.monotonic() + 20
    while not _gone(pool_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(pool_pid), "the pool process still runs the cancelled model"
    assert [kind for kind, *_ in _lines(record)] == ["start"]

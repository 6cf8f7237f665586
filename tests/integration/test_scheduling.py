"""Fair scheduling on real workers: priority classes, turns between keys, weights, per-key limits,
and the queue figures, driven through the official clients.

Predictions go to ``tests/idle``, which no worker serves until a test starts one, so each test
lines work up first and then watches in what order one worker process runs it (``RecordsRuns``
appends ``start``/``done`` lines to a file as it runs them): orders and counts, never timings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import redis
import wriftai

from common.store import keys
from tests.conftest import KEYS
from tests.integration.conftest import Stack
from tests.integration.terminals import Terminals

IDLE = "tests/idle"
QUEUE = "tests.idle"


def line_up(client: wriftai.Client, record: Path, count: int, **extra: Any) -> list[str]:
    """Queues ``count`` predictions (nobody waits on them); their ids."""
    params: dict[str, Any] = {"model": IDLE, "input": {"record_to": str(record)}, **extra}
    return [client.predictions.create(**params)["id"] for _ in range(count)]


def runs(record: Path) -> list[tuple[str, str]]:
    """``(event, prediction id)`` in the order the worker wrote them."""
    return [(line.split()[0], line.split()[1]) for line in record.read_text().splitlines()]


def started(record: Path) -> list[str]:
    return [prediction_id for event, prediction_id in runs(record) if event == "start"]


def wait_until_ended(terminals: Terminals, ids: list[str]) -> dict[str, str]:
    """Waits, on the updates channel, until every prediction ended; their statuses."""
    terminals.expect(ids)
    statuses = terminals.wait(timeout=60)
    assert "not ended" not in statuses.values(), statuses
    return statuses


def wait_until_stored(redis_url: str, owner: str, count: int) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    deadline = time.monotonic() + 30
    try:
        while client.zcard(keys.owner_predictions(owner)) < count:
            assert time.monotonic() < deadline, f"{owner}'s create was not stored"
            time.sleep(0.02)
    finally:
        client.close()


@contextmanager
def waiting_create(stack: Stack, owner: str, record: Path) -> Iterator[dict[str, Any]]:
    """A ``Prefer: wait`` create of ``owner`` held open in a thread; its prediction once done."""
    answer: dict[str, Any] = {}

    def create() -> None:
        with stack.client(owner) as client:
            answer.update(client.predictions.create(model=IDLE, input={"record_to": str(record)}, wait=True))

    thread = threading.Thread(target=create)
    thread.start()
    try:
        yield answer
    finally:
        thread.join(60)
    assert not thread.is_alive()


@pytest.fixture
def record(tmp_path: Path) -> Path:
    path = tmp_path / "runs"
    path.touch()
    return path


def test_waiting_people_go_first_and_batch_work_last(
    stack: Stack,
    alice: wriftai.Client,
    record: Path,
    start_worker: Callable[..., str],
    terminals: Terminals,
) -> None:
    (batch,) = line_up(alice, record, 1, priority="batch")
    defaults = line_up(alice, record, 3)
    with waiting_create(stack, "bob", record) as waited:
        wait_until_stored(stack.env["INFERQ_REDIS_URL"], "bob", 1)
        start_worker([QUEUE])
    assert waited["status"] == "succeeded"
    wait_until_ended(terminals, [batch, *defaults])
    assert started(record) == [waited["id"], *defaults, batch]


def test_keys_take_turns_and_a_flood_delays_nobody(
    stack: Stack,
    alice: wriftai.Client,
    bob: wriftai.Client,
    record: Path,
    start_worker: Callable[..., str],
    terminals: Terminals,
) -> None:
    flood = line_up(alice, record, 12)
    few = line_up(bob, record, 3)
    start_worker([QUEUE])
    statuses = wait_until_ended(terminals, [*flood, *few])
    assert set(statuses.values()) == {"succeeded"}
    owners = ["bob" if i in few else "alice" for i in started(record)]
    assert owners == ["alice", "bob"] * 3 + ["alice"] * 9
    assert [i for i in started(record) if i in flood] == flood  # each key's own work in its order


def test_weights_share_the_turns(
    stack: Stack,
    own_api: Callable[..., str],
    record: Path,
    start_worker: Callable[..., str],
    terminals: Terminals,
) -> None:
    base_url = own_api(INFERQ_KEY_WEIGHTS="alice:3")
    with httpx.Client() as http:
        made: dict[str, list[str]] = {}
        for owner, count in (("alice", 12), ("bob", 4)):
            client = wriftai.Client(access_token=KEYS[owner], api_base_url=f"{base_url}/v1", http_client=http)
            made[owner] = line_up(client, record, count)
    start_worker([QUEUE])
    wait_until_ended(terminals, [*made["alice"], *made["bob"]])
    owners = "".join("b" if i in made["bob"] else "a" for i in started(record))
    assert [owners[i : i + 4].count("b") for i in range(0, 16, 4)] == [1, 1, 1, 1]


def test_a_key_runs_at_most_its_limit_and_the_rest_waits(
    stack: Stack,
    alice: wriftai.Client,
    bob: wriftai.Client,
    record: Path,
    start_worker: Callable[..., str],
    terminals: Terminals,
) -> None:
    flood = line_up(alice, record, 5, input={"record_to": str(record), "seconds": 0.3})
    few = line_up(bob, record, 2, input={"record_to": str(record), "seconds": 0.3})
    start_worker([QUEUE], concurrency=3, INFERQ_MAX_RUNNING_PER_KEY="1")
    statuses = wait_until_ended(terminals, [*flood, *few])
    assert set(statuses.values()) == {"succeeded"}  # held back, never refused or lost
    for mine in (flood, few):
        running = 0
        for event, prediction_id in runs(record):
            if prediction_id in mine:
                running += 1 if event == "start" else -1
                assert running <= 1
    client = redis.Redis.from_url(stack.env["INFERQ_REDIS_URL"], decode_responses=True)
    assert client.exists(keys.schedule_parked(QUEUE)) == 0  # every parked message went back
    client.close()


def test_queue_figures_count_every_key_and_show_only_your_own(
    stack: Stack,
    alice: wriftai.Client,
    bob: wriftai.Client,
    record: Path,
    start_worker: Callable[..., str],
    terminals: Terminals,
) -> None:
    made = [
        *line_up(alice, record, 2),
        *line_up(alice, record, 1, priority="batch"),
        *line_up(bob, record, 1),
    ]
    with stack.http("alice") as http:
        (idle,) = [q for q in http.get("/v1/queues").json()["data"] if q["queue"] == QUEUE]
        metrics = http.get("/metrics").text
    assert idle["models"] == [IDLE]
    assert (idle["queued"], idle["running"], idle["worker_processes"]) == (4, 0, 0)
    assert {c: line["queued"] for c, line in idle["classes"].items()} == {
        "interactive": 0,
        "default": 3,
        "batch": 1,
    }
    assert idle["classes"]["default"]["oldest_queued_age"] >= 0
    assert idle["classes"]["interactive"]["oldest_queued_age"] is None
    assert (idle["yours"]["queued"], idle["yours"]["classes"]["default"]["queued"]) == (3, 2)
    assert f'inferq_queue_queued{{priority="default",queue="{QUEUE}"}} 3.0' in metrics
    assert f'inferq_queue_queued{{priority="batch",queue="{QUEUE}"}} 1.0' in metrics
    assert f'inferq_queue_worker_processes{{queue="{QUEUE}"}} 0.0' in metrics
    with stack.http("bob") as http:
        (idle,) = [q for q in http.get("/v1/queues").json()["data"] if q["queue"] == QUEUE]
    assert (idle["queued"], idle["yours"]["queued"]) == (4, 1)

    start_worker([QUEUE], concurrency=2)
    wait_until_ended(terminals, made)
    with stack.http("alice") as http:
        (idle,) = [q for q in http.get("/v1/queues").json()["data"] if q["queue"] == QUEUE]
    assert (idle["queued"], idle["running"], idle["worker_processes"]) == (0, 0, 2)


def test_a_create_may_ask_for_a_lower_class_never_a_higher_one(
    stack: Stack, alice: wriftai.Client, record: Path
) -> None:
    client = redis.Redis.from_url(stack.env["INFERQ_REDIS_URL"], decode_responses=True)
    for priority in ("interactive", "urgent"):
        with stack.http("alice") as http:
            refused = http.post(
                "/v1/predictions",
                json={"model": IDLE, "input": {"record_to": str(record)}, "priority": priority},
            )
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["body", "priority"]
    assert client.zcard(keys.owner_predictions("alice")) == 0  # nothing stored

    lowered = line_up(alice, record, 1, priority="batch")[0]
    with stack.http("alice") as http:
        waited = http.post(
            "/v1/predictions",
            json={"model": IDLE, "input": {"record_to": str(record)}, "priority": "default"},
            headers={"Prefer": "wait=0.1"},
        ).json()
    assert client.hget(keys.prediction(lowered), "priority") == "batch"
    assert client.hget(keys.prediction(waited["id"]), "priority") == "default"
    client.close()


def test_the_openai_routes_are_interactive(stack: Stack) -> None:
    client = openai.OpenAI(api_key=KEYS["alice"], base_url=f"{stack.base_url}/v1", max_retries=0)
    image = client.images.generate(prompt="a red square", size="256x256", response_format="b64_json")
    assert image.data
    redis_client = redis.Redis.from_url(stack.env["INFERQ_REDIS_URL"], decode_responses=True)
    (prediction_id,) = redis_client.zrange(keys.owner_predictions("alice"), 0, -1)
    assert redis_client.hget(keys.prediction(prediction_id), "priority") == "interactive"
    redis_client.close()

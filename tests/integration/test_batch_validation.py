"""A batch's lines checked after its create answers (``api.batches.validate``): bad lines, too many
pending, a cancel before, while or after its parts are queued, a validator that died midway."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import openai
import redis

from common.processes.embedded_redis import EmbeddedRedis, free_port
from common.processes.launcher import Launcher
from common.store import keys
from tests.conftest import base_env
from tests.integration.batch_client import (
    client_for,
    finished,
    half_queued,
    idle_batch,
    lines_of,
    request,
    upload,
)
from tests.integration.conftest import Stack


def test_a_bad_line_fails_the_batch_and_nothing_runs(oai: openai.OpenAI, stack: Stack) -> None:
    lines = [
        request("a", "/v1/predictions", {"model": "inferq/echo", "input": {"prompt": "hi"}}),
        request("a", "/v1/predictions", {"model": "inferq/echo", "input": {"prompt": "again"}}),
        request("b", "/v1/embeddings", {"model": "inferq/hash-embed", "input": "x"}),
        request("c", "/v1/predictions", {"model": "inferq/nope", "input": {}}),
        request("d", "/v1/predictions", {"model": "inferq/echo", "input": {"delay_s": -1}}),
    ]
    made = oai.batches.create(
        input_file_id=upload(oai, lines), endpoint="/v1/predictions", completion_window="24h"
    )
    batch = finished(oai, made.id)
    assert batch.status == "failed" and batch.failed_at is not None and batch.in_progress_at is None
    assert batch.errors is not None
    assert [(e.line, e.code) for e in batch.errors.data] == [
        (2, "duplicate_custom_id"),
        (3, "mismatched_url"),
        (4, "model_not_found"),
        (5, batch.errors.data[3].code),
    ]
    assert batch.errors.data[3].param and batch.errors.data[3].param.startswith("body.input")
    client = redis.Redis.from_url(stack.env["INFERQ_REDIS_URL"], decode_responses=True)
    assert client.zcard(keys.owner_predictions("alice")) == 0
    client.close()


def test_a_batch_cancelled_as_it_is_made_runs_each_line_at_most_once(
    oai: openai.OpenAI, start_worker: Callable[..., str], tmp_path: Path
) -> None:
    """Cancelled before, while or after its lines are checked and its parts queued: either nothing
    was queued (no line counted) or every line is in the output or error file once."""
    start_worker(["tests.idle"])
    totals = []
    for pause in (0.0, 0.1, 0.2, 0.3, None):  # None: once it is in progress
        batch = idle_batch(oai, tmp_path / "runs", 200, seconds=0.05)
        if pause is None:
            while oai.batches.retrieve(batch.id).status == "validating":
                time.sleep(0.02)
        else:
            time.sleep(pause)
        assert oai.batches.cancel(batch.id).status in {"cancelling", "cancelled"}
        done = finished(oai, batch.id)
        assert done.status == "cancelled"
        output, errors = lines_of(oai, done.output_file_id), lines_of(oai, done.error_file_id)
        assert not set(output) & set(errors)
        every = {f"r{i}" for i in range(200)} if done.request_counts.total else set()
        assert set(output) | set(errors) == every
        totals.append(done.request_counts.total)
    assert totals[-1] == 200, totals


def test_a_batch_needing_more_than_the_key_may_have_pending_fails(tmp_path: Path) -> None:
    """On a Redis of its own: any API process on the same Redis may validate a batch, with its own
    settings."""
    redis_server = EmbeddedRedis(tmp_path / "redis").start()
    env = base_env(redis_server.url, tmp_path / "data", INFERQ_MAX_PENDING_PER_KEY="3")
    launcher = Launcher(env, log_dir=tmp_path / "logs")
    lines = [
        request(f"r{i}", "/v1/predictions", {"model": "inferq/echo", "input": {"prompt": "x"}})
        for i in range(5)
    ]
    try:
        with client_for(launcher.start_api("127.0.0.1", free_port())) as client:
            batch = client.batches.create(
                input_file_id=upload(client, lines),
                endpoint="/v1/predictions",  # type: ignore[arg-type]
                completion_window="24h",
            )
            done = finished(client, batch.id)
        assert done.status == "failed" and done.errors is not None
        assert [e.code for e in done.errors.data] == ["too_many_pending"]
        assert "Split the file" in (done.errors.data[0].message or "")
        with redis.Redis.from_url(redis_server.url) as client:
            assert client.zcard(keys.owner_predictions("alice")) == 0
    finally:
        launcher.stop_all()
        redis_server.stop()


def test_a_batch_whose_validator_died_queuing_its_parts_fails(oai: openai.OpenAI, stack: Stack) -> None:
    """Its validator gone (no lock): the next look fails it and cancels what was queued, rather
    than leave it half-run."""
    with half_queued(stack, 1) as (store, batch_id):
        store.postpone(batch_id, time.time())
        done = finished(oai, batch_id)
    assert done.status == "failed" and done.errors is not None
    assert [e.code for e in done.errors.data] == ["queueing_failed"]


def test_a_batch_cancelled_while_its_parts_are_queued_ends_with_every_line(
    oai: openai.OpenAI, stack: Stack
) -> None:
    """Its validator still holding it: a cancel ends the parts never made with no result, so the
    batch ends ``cancelled`` with each line in its error file."""
    with half_queued(stack, 2) as (store, batch_id):
        assert store.lock(batch_id, 60, validating=True)  # as its validator does while it queues
        assert oai.batches.cancel(batch_id).status in {"cancelling", "cancelled"}
        done = finished(oai, batch_id)
    assert done.status == "cancelled" and done.request_counts.total == 2
    errors = lines_of(oai, done.error_file_id)
    assert {c: line["error"]["code"] for c, line in errors.items()} == {
        "c0": "batch_cancelled",
        "c1": "batch_cancelled",
    }

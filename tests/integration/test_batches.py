"""OpenAI's Batch API through the real ``openai`` client: files in, batches run on real workers as
``batch``-class predictions, files out; cancel, expiry, a crash, isolation, a restart, webhooks.
Validation: ``test_batch_validation.py``."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
import redis
import wriftai

from common.processes.embedded_redis import EmbeddedRedis, free_port
from common.processes.launcher import Launcher
from common.store import keys
from tests.conftest import KEYS, base_env
from tests.integration.batch_client import (
    FINAL,
    client_for,
    finished,
    idle_batch,
    lines_of,
    request,
    upload,
)
from tests.integration.conftest import Stack, pool_children
from tests.integration.receivers import receiving

SECRET = "whsec-batches"


def test_an_embeddings_batch_answers_each_line_as_the_endpoint_does(oai: openai.OpenAI, stack: Stack) -> None:
    texts = [f"passage number {i}" for i in range(40)]
    lines = [
        request(f"r{i}", "/v1/embeddings", {"model": "inferq/hash-embed", "input": text})
        for i, text in enumerate(texts)
    ]
    lines.append(request("pair", "/v1/embeddings", {"model": "inferq/hash-embed", "input": ["a", "b"]}))
    batch = oai.batches.create(
        input_file_id=upload(oai, lines),
        endpoint="/v1/embeddings",
        completion_window="24h",
        metadata={"job": "nightly"},
    )
    assert batch.status == "validating"  # its lines are checked after the create answers, as OpenAI's
    done = finished(oai, batch.id)
    assert done.status == "completed" and done.error_file_id is None and done.in_progress_at is not None
    assert done.request_counts.total == 41
    assert (done.request_counts.completed, done.request_counts.failed) == (41, 0)
    assert done.metadata == {"job": "nightly"} and done.usage is not None
    output = lines_of(oai, done.output_file_id)
    assert set(output) == {f"r{i}" for i in range(40)} | {"pair"}
    direct = oai.embeddings.create(model="inferq/hash-embed", input=texts[7])
    body = output["r7"]["response"]["body"]
    assert output["r7"]["response"]["status_code"] == 200 and output["r7"]["error"] is None
    assert body["data"][0]["embedding"] == direct.data[0].embedding
    assert body["usage"] == direct.usage.model_dump()
    assert [item["index"] for item in output["pair"]["response"]["body"]["data"]] == [0, 1]
    assert oai.files.retrieve(done.output_file_id).purpose == "batch_output"
    metrics = httpx.get(f"{stack.base_url}/metrics").text
    assert 'inferq_batch_lines_total{status="completed"} 41.0' in metrics
    client = redis.Redis.from_url(stack.env["INFERQ_REDIS_URL"], decode_responses=True)
    part = output["r0"]["response"]["request_id"]
    assert client.hget(keys.prediction(part), "priority") == "batch"
    client.close()


def test_prediction_lines_and_their_failures(
    oai: openai.OpenAI, start_worker: Callable[..., str], stack: Stack
) -> None:
    start_worker(["tests.raises"])
    lines = [
        request(f"echo{i}", "/v1/predictions", {"model": "inferq/echo", "input": {"prompt": f"n{i}"}})
        for i in range(3)
    ]
    lines.append(
        request("boom", "/v1/predictions", {"model": "tests/raises", "input": {"message": "no luck"}})
    )
    batch = oai.batches.create(
        input_file_id=upload(oai, lines),
        endpoint="/v1/predictions",  # type: ignore[arg-type]
        completion_window="24h",
    )
    done = finished(oai, batch.id)
    assert done.status == "completed"
    assert (done.request_counts.completed, done.request_counts.failed) == (3, 1)
    output, errors = lines_of(oai, done.output_file_id), lines_of(oai, done.error_file_id)
    assert set(output) == {"echo0", "echo1", "echo2"} and set(errors) == {"boom"}
    echo = output["echo1"]["response"]["body"]
    assert echo["status"] == "succeeded" and echo["input"] == {"prompt": "n1"}
    failure = errors["boom"]["response"]
    assert failure["status_code"] == 500 and "no luck" in failure["body"]["error"]["message"]


def test_a_cancelled_batch_keeps_what_finished(
    oai: openai.OpenAI, start_worker: Callable[..., str], tmp_path: Path
) -> None:
    batch = idle_batch(oai, tmp_path / "runs", 6, seconds=0.2)
    start_worker(["tests.idle"])
    deadline = time.monotonic() + 30
    while oai.batches.retrieve(batch.id).request_counts.completed < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert oai.batches.cancel(batch.id).status in {"cancelling", "cancelled"}
    done = finished(oai, batch.id)
    assert done.status == "cancelled" and done.cancelled_at is not None
    output, errors = lines_of(oai, done.output_file_id), lines_of(oai, done.error_file_id)
    assert set(output) | set(errors) == {f"r{i}" for i in range(6)} and not set(output) & set(errors)
    assert len(output) >= 2 and done.request_counts.completed == len(output)
    assert all(
        line["error"]["code"] == "batch_cancelled" for line in errors.values() if line["response"] is None
    )
    assert oai.batches.cancel(batch.id).status == "cancelled"  # a repeat changes nothing


def test_a_batch_past_its_window_expires_with_what_finished(
    own_api: Callable[..., str], stack: Stack, tmp_path: Path
) -> None:
    # The stack's API finishes batches on the same Redis too: the two share their files, as
    # replicas do (a volume), so either may write the error file the other serves.
    base = own_api(INFERQ_BATCH_WINDOW="1", INFERQ_DATA_DIR=stack.env["INFERQ_DATA_DIR"])
    with client_for(base) as client:
        batch = idle_batch(client, tmp_path / "x", 3)
        done = finished(client, batch.id, timeout=30)
        assert done.status == "expired" and done.expired_at is not None and done.output_file_id is None
        errors = lines_of(client, done.error_file_id)
    assert {c: line["error"]["code"] for c, line in errors.items()} == {
        f"r{i}": "batch_expired" for i in range(3)
    }


def test_every_line_once_through_worker_kills(
    oai: openai.OpenAI, start_worker: Callable[..., str], tmp_path: Path
) -> None:
    batch = idle_batch(oai, tmp_path / "runs", 30, seconds=0.1)
    name = start_worker(["tests.idle"], concurrency=2)
    launcher = start_worker.launcher  # type: ignore[attr-defined]
    for _ in range(3):  # pool processes killed mid-run; Celery starts new ones
        time.sleep(0.6)
        for child in pool_children(launcher.processes[name].pid):
            os.kill(child, signal.SIGKILL)
    done = finished(oai, batch.id, timeout=90)
    assert done.status == "completed"
    output, errors = lines_of(oai, done.output_file_id), lines_of(oai, done.error_file_id)
    assert set(output) | set(errors) == {f"r{i}" for i in range(30)} and not set(output) & set(errors)
    assert done.request_counts.completed + done.request_counts.failed == 30


def test_another_key_sees_no_batch_and_no_file(oai: openai.OpenAI, stack: Stack) -> None:
    file_id = upload(oai, [request("a", "/v1/embeddings", {"model": "inferq/hash-embed", "input": "x"})])
    batch = oai.batches.create(input_file_id=file_id, endpoint="/v1/embeddings", completion_window="24h")
    bob = client_for(stack.base_url, "bob")
    with pytest.raises(openai.NotFoundError):
        bob.batches.retrieve(batch.id)
    with pytest.raises(openai.NotFoundError):
        bob.batches.cancel(batch.id)
    with pytest.raises(openai.NotFoundError):
        bob.batches.create(input_file_id=file_id, endpoint="/v1/embeddings", completion_window="24h")
    assert [b.id for b in bob.batches.list()] == []
    assert batch.id in [b.id for b in oai.batches.list()]
    finished(oai, batch.id)
    bob.close()


def test_a_batch_outlives_an_api_restart_and_a_redis_restart(tmp_path: Path) -> None:
    """Its record, plan, parts and files are in Redis (append-only) and on disk, not in a process."""
    redis_server = EmbeddedRedis(tmp_path / "redis", appendonly=True).start()
    launcher = Launcher(base_env(redis_server.url, tmp_path / "data"), log_dir=tmp_path / "logs")
    try:
        port = free_port()
        base = launcher.start_api("127.0.0.1", port, name="api")
        client = client_for(base)
        lines = [
            request(f"r{i}", "/v1/predictions", {"model": "inferq/echo", "input": {"prompt": f"n{i}"}})
            for i in range(20)
        ]
        batch = client.batches.create(
            input_file_id=upload(client, lines),
            endpoint="/v1/predictions",  # type: ignore[arg-type]
            completion_window="24h",
        )
        client.close()
        launcher.stop("api")
        redis_server.stop()  # SIGTERM: Redis writes its append-only file and exits
        redis_server.start()
        base = launcher.start_api("127.0.0.1", port, name="api-again")
        launcher.start_worker(["inferq.echo"], concurrency=2)
        client = client_for(base)
        done = finished(client, batch.id, timeout=60)
        assert done.status == "completed" and done.request_counts.completed == 20
        assert set(lines_of(client, done.output_file_id)) == {f"r{i}" for i in range(20)}
        client.close()
    finally:
        launcher.stop_all()
        redis_server.stop()


def test_a_batch_webhook_gets_the_ended_batch_signed_once(oai: openai.OpenAI, stack: Stack) -> None:
    lines = [
        request(f"r{i}", "/v1/embeddings", {"model": "inferq/hash-embed", "input": f"t{i}"}) for i in range(5)
    ]
    with receiving() as receiver:
        batch = oai.batches.create(
            input_file_id=upload(oai, lines),
            endpoint="/v1/embeddings",
            completion_window="24h",
            extra_body={"webhook": {"url": receiver.url, "secret": SECRET}},
        )
        done = finished(oai, batch.id)
        [(headers, body)] = receiver.wait_for_terminal(terminal=FINAL)
        time.sleep(0.5)  # nothing more arrives
        assert len(receiver.deliveries) == 1
    wriftai.verify_webhook(body, headers["wriftai-webhook-signature"], SECRET)  # raises unless genuine
    shown = httpx.get(
        f"{stack.base_url}/v1/batches/{batch.id}", headers={"Authorization": f"Bearer {KEYS['alice']}"}
    ).json()
    assert json.loads(body) == shown  # the batch object, as it ended
    assert shown["status"] == done.status == "completed" and shown["output_file_id"] == done.output_file_id


def test_a_batch_failed_as_it_is_made_tells_its_webhook(oai: openai.OpenAI) -> None:
    lines = [request("a", "/v1/embeddings", {"model": "inferq/hash-embed", "input": "x"})] * 2
    with receiving() as receiver:
        batch = oai.batches.create(
            input_file_id=upload(oai, lines),
            endpoint="/v1/embeddings",
            completion_window="24h",
            extra_body={"webhook": {"url": receiver.url}},
        )
        [(headers, body)] = receiver.wait_for_terminal(terminal=FINAL)
    assert batch.status == "validating"
    sent = json.loads(body)
    assert (sent["id"], sent["status"]) == (batch.id, "failed")
    assert [e["code"] for e in sent["errors"]["data"]] == ["duplicate_custom_id"]
    assert "wriftai-webhook-signature" not in headers  # no secret, no signature


@pytest.mark.parametrize(
    "webhook", [{"url": "ftp://example.com/hook"}, {"url": "https://example.com/hook", "extra": 1}, "x"]
)
def test_a_bad_batch_webhook_is_refused_and_nothing_stored(oai: openai.OpenAI, webhook: object) -> None:
    file_id = upload(oai, [request("a", "/v1/embeddings", {"model": "inferq/hash-embed", "input": "x"})])
    before = oai.batches.list().data
    with pytest.raises(openai.UnprocessableEntityError) as refused:
        oai.batches.create(
            input_file_id=file_id,
            endpoint="/v1/embeddings",
            completion_window="24h",
            extra_body={"webhook": webhook},
        )
    assert refused.value.response.json()["error"]["param"].startswith("webhook")
    assert oai.batches.list().data == before

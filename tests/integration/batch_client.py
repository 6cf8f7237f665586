"""Driving OpenAI's Batch API in tests as a client does (the real ``openai`` client): files of
requests in, polling to the end, output files read back; and a batch left half-queued."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import openai
import redis

from common.store.batches import Batch, BatchStatus, BatchStore, Line, Part, new_batch_id
from tests.conftest import KEYS

if TYPE_CHECKING:
    from tests.integration.conftest import Stack

FINAL = {"completed", "failed", "expired", "cancelled"}
"""A batch's statuses after which nothing changes."""


def client_for(base_url: str, owner: str = "alice") -> openai.OpenAI:
    return openai.OpenAI(api_key=KEYS[owner], base_url=f"{base_url}/v1", max_retries=0)


def upload(client: openai.OpenAI, lines: list[dict[str, Any]]) -> str:
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return client.files.create(file=("in.jsonl", io.BytesIO(data)), purpose="batch").id


def request(custom_id: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def idle_batch(client: openai.OpenAI, record: Path, count: int, seconds: float = 0.0) -> Any:
    """A batch of ``count`` ``tests/idle`` predictions, each recording its run to ``record``."""
    body = {"model": "tests/idle", "input": {"record_to": str(record), "seconds": seconds}}
    lines = [request(f"r{i}", "/v1/predictions", body) for i in range(count)]
    return client.batches.create(
        input_file_id=upload(client, lines),
        endpoint="/v1/predictions",  # type: ignore[arg-type]
        completion_window="24h",
    )


def finished(client: openai.OpenAI, batch_id: str, timeout: float = 60.0) -> Any:
    """Polls as clients do until the batch ends."""
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in FINAL:
            return batch
        assert time.monotonic() < deadline, f"batch stayed {batch.status}: {batch.request_counts}"
        time.sleep(0.1)


def lines_of(client: openai.OpenAI, file_id: str | None) -> dict[str, dict[str, Any]]:
    if file_id is None:
        return {}
    found = [json.loads(line) for line in client.files.content(file_id).text.splitlines()]
    by_id = {line["custom_id"]: line for line in found}
    assert len(by_id) == len(found), "a custom_id appears twice"
    return by_id


@contextmanager
def half_queued(stack: Stack, parts: int) -> Iterator[tuple[BatchStore, str]]:
    """A ``validating`` batch of alice's as a validator leaves it midway: its plan of ``parts``
    parts (one line each, ``c0``, ``c1``...) stored, none of their predictions made yet; not due."""
    client = redis.Redis.from_url(stack.env["INFERQ_REDIS_URL"], decode_responses=True)
    store = BatchStore(client, 3600)
    now = int(time.time())
    batch = Batch(new_batch_id(), "alice", BatchStatus.VALIDATING, "/v1/predictions", "file-gone")
    batch.times = {"created_at": now, "expires_at": now + 3600}
    store.add(batch, due=now + 3600)
    assert store.plan_parts(
        batch.id, [Part(f"p-not-yet-{n}", [Line(f"c{n}", n + 1)]) for n in range(parts)], parts
    )
    try:
        yield store, batch.id
    finally:
        client.close()

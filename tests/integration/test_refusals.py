"""A working Redis that refuses writes for now (``maxmemory`` reached, a replica after a failover):
the API answers ``503`` with ``Retry-After`` and stores nothing, never a ``500``."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import openai
import pytest
import redis
import wriftai

from common.config import Settings
from common.store import keys
from common.store.heartbeats import Heartbeat, live_workers
from common.store.predictions import PredictionStore
from tests.conftest import KEYS, stored
from tests.integration.conftest import Stack
from tests.integration.redis_faults import REFUSALS


@pytest.fixture(params=sorted(REFUSALS))
def refusing(request: pytest.FixtureRequest, redis_client: redis.Redis) -> Iterator[str]:
    """The private Redis refusing writes, as it would at ``maxmemory`` or after a failover."""
    with REFUSALS[request.param](redis_client):
        yield request.param


def test_a_create_while_redis_refuses_writes_is_503_and_stores_nothing(
    stack: Stack, redis_client: redis.Redis, refusing: str
) -> None:
    with httpx.Client() as http:
        client = wriftai.Client(
            access_token=KEYS["alice"], api_base_url=f"{stack.base_url}/v1", http_client=http, max_retries=0
        )
        with pytest.raises(httpx.HTTPStatusError) as raised:
            client.predictions.create(model="inferq/echo", input={"prompt": "refused"})
    response = raised.value.response
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    assert response.json()["error"]["code"] == "service_unavailable"
    assert "x-prediction-id" not in response.headers
    assert stored(redis_client) == []


def test_an_openai_call_while_redis_refuses_writes_is_503(stack: Stack, refusing: str) -> None:
    client = openai.OpenAI(api_key=KEYS["alice"], base_url=f"{stack.base_url}/v1", max_retries=0)
    with pytest.raises(openai.InternalServerError) as raised:
        client.embeddings.create(model="inferq/hash-embed", input="refused")
    assert raised.value.status_code == 503


@pytest.mark.parametrize("refusal", sorted(REFUSALS))
def test_a_worker_announced_while_redis_refuses_writes_becomes_live_once_it_accepts(
    redis_client: redis.Redis, refusal: str
) -> None:
    store = PredictionStore(redis_client, Settings.defaults())
    heartbeat = Heartbeat(store, "announced@tests", ["tests.announce"])

    with REFUSALS[refusal](redis_client):
        heartbeat.announce()  # a pool process that loaded its models during the fault: no exception
        assert redis_client.zscore(keys.worker_heartbeats("tests.announce"), "announced@tests") is None

    deadline = time.monotonic() + 15
    while live_workers(store, "tests.announce") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live_workers(store, "tests.announce") == 1

"""A retried create never makes a second prediction.

The ``wriftai`` client retries a create on 429 and every 5xx, the ``openai``
client on 408, 409, 429 and 5xx. Redis faults are put exactly after the store
(in the wait, in the webhook hand-off) or on the store's reply, by a proxy
between the API and Redis; predictions are counted in the store. Then the
``Idempotency-Key`` header: one key, one prediction, even for concurrent requests.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import openai
import pytest
import redis
import wriftai
from wriftai.predictions import CreateWaitOptions

from api import API_REDIS_RETRIES
from common.processes.embedded_redis import EmbeddedRedis
from common.store import keys
from tests.conftest import KEYS
from tests.integration.conftest import Stack
from tests.integration.faulty_proxy import FaultyProxy, command

ECHO = {"model": "inferq/echo", "input": {"prompt": "once"}}

RECORD_READS = command("HGETALL", keys.prediction(""))
"""A prediction's record read back (``PredictionStore.get``), which the create script never does."""

ATTEMPTS = API_REDIS_RETRIES + 1
"""How often the API sends one Redis command before it gives up."""


@pytest.fixture
def faulty(redis_server: EmbeddedRedis, own_api: Callable[..., str]) -> Iterator[tuple[str, FaultyProxy]]:
    """An API of its own, talking to the private Redis through a :class:`FaultyProxy`."""
    proxy = FaultyProxy(("127.0.0.1", redis_server.port))
    base = own_api(INFERQ_REDIS_URL=proxy.url)
    yield base, proxy
    proxy.close()


@contextmanager
def wrift(base_url: str, **headers: str) -> Iterator[wriftai.Client]:
    """The official client as ``alice``, sending ``headers`` with every request."""
    with httpx.Client(headers=headers, timeout=httpx.Timeout(60, connect=10)) as http:
        yield wriftai.Client(access_token=KEYS["alice"], api_base_url=f"{base_url}/v1", http_client=http)


def predictions(client: redis.Redis) -> list[str]:
    """Every prediction alice has, in the store."""
    return [str(pid) for pid in client.zrange(keys.owner_predictions("alice"), 0, -1)]


# -- Redis faults after the store --------------------------------------------------------------


def test_a_wait_that_redis_fails_answers_the_prediction_not_a_5xx(
    faulty: tuple[str, FaultyProxy], redis_client: redis.Redis
) -> None:
    base, proxy = faulty
    reads = proxy.break_(RECORD_READS)  # the read at the end of the wait fails, as do its retries
    with wrift(base) as client:
        created = client.predictions.create(
            model="inferq/echo",
            input={"prompt": "slow", "delay_s": 3},
            wait=True,
            wait_options=CreateWaitOptions(duration=1, poll=False),
        )
    proxy.heal()

    assert reads.hits >= ATTEMPTS
    assert created["status"] == "pending"  # as last known: nothing serves inferq/echo here
    assert predictions(redis_client) == [created["id"]]


def test_a_webhook_hand_off_that_redis_fails_answers_the_prediction(
    faulty: tuple[str, FaultyProxy], redis_client: redis.Redis
) -> None:
    base, proxy = faulty
    sends = proxy.break_(command("LPUSH", "inferq.webhooks"))
    with wrift(base) as client:
        created = client.predictions.create(
            **ECHO, webhook={"url": "http://127.0.0.1:9/hook", "secret": None}
        )
    proxy.heal()

    assert sends.hits >= 1
    assert predictions(redis_client) == [created["id"]]
    assert redis_client.llen(keys.webhook_outbox(created["id"])) == 1  # recovery delivers it


def test_an_openai_call_whose_wait_redis_fails_is_cancelled_and_not_retried(
    faulty: tuple[str, FaultyProxy], redis_client: redis.Redis
) -> None:
    base, proxy = faulty
    reads = proxy.break_(RECORD_READS)
    with openai.OpenAI(base_url=f"{base}/v1", api_key=KEYS["alice"]) as client:
        with pytest.raises(openai.APIStatusError) as raised:  # nothing serves tests/slow-images here
            client.images.generate(model="tests/slow-images", prompt="never", size="256x256")
    proxy.heal()

    response = raised.value.response
    assert reads.hits >= ATTEMPTS
    assert response.status_code == 504 and response.headers["x-should-retry"] == "false"
    prediction_id = response.headers["x-prediction-id"]
    assert predictions(redis_client) == [prediction_id]
    assert redis_client.hget(keys.prediction(prediction_id), "status") == "cancelled"


def test_a_create_whose_reply_redis_lost_is_retried_into_the_same_prediction(
    faulty: tuple[str, FaultyProxy], redis_client: redis.Redis
) -> None:
    base, proxy = faulty
    creates = re.compile(rb"EVALSHA\r\n.*" + re.escape(keys.owner_predictions("alice").encode()), re.S)
    lost = proxy.break_(creates, times=ATTEMPTS, lose_reply=True)  # stored, but the API never hears so
    with wrift(base, **{"Idempotency-Key": "lost-reply"}) as client:
        created = client.predictions.create(**ECHO)  # a 503, then the client's retry

    assert lost.hits == ATTEMPTS
    assert predictions(redis_client) == [created["id"]]


# -- Idempotency-Key ---------------------------------------------------------------------------


def test_the_same_key_answers_the_same_prediction_on_every_create_route(
    stack: Stack, redis_client: redis.Redis
) -> None:
    with wrift(stack.base_url, **{"Idempotency-Key": "k-1"}) as client:
        first = client.predictions.create(**ECHO)
        again = client.predictions.create(**ECHO, wait=True)  # and waits on it
        assert again["id"] == first["id"] and again["status"] == "succeeded"
    with wrift(stack.base_url, **{"Idempotency-Key": "k-2"}) as client:
        routed = client.predictions.create(model="inferq/echo:1", input={"prompt": "once"})
    with stack.http() as http:
        headers = {"Idempotency-Key": "k-3"}
        versioned = [
            http.post("/v1/models/inferq/echo/versions/1/predictions", json={"input": {}}, headers=headers)
            for _ in range(2)
        ]
    assert versioned[0].status_code == versioned[1].status_code == 201
    assert versioned[0].json()["id"] == versioned[1].json()["id"]
    assert sorted(predictions(redis_client)) == sorted([first["id"], routed["id"], versioned[0].json()["id"]])


def test_a_key_reused_with_another_body_is_422_and_a_long_key_400(
    stack: Stack, redis_client: redis.Redis
) -> None:
    with stack.http() as http:
        first = http.post("/v1/predictions", json=ECHO, headers={"Idempotency-Key": "k"})
        other = http.post(
            "/v1/predictions", json={**ECHO, "input": {"prompt": "twice"}}, headers={"Idempotency-Key": "k"}
        )
        elsewhere = http.post(
            "/v1/models/inferq/echo/predictions", json=ECHO, headers={"Idempotency-Key": "k"}
        )
        long = http.post("/v1/predictions", json=ECHO, headers={"Idempotency-Key": "k" * 256})
        bob = http.post("/v1/predictions", json=ECHO, headers={"Idempotency-Key": "k", **_bearer("bob")})

    assert first.status_code == 201 and bob.status_code == 201  # keys are per owner
    assert other.status_code == elsewhere.status_code == 422
    assert other.json()["detail"] == [
        {
            "loc": ["header", "Idempotency-Key"],
            "msg": "This Idempotency-Key was used with a different request; use a new key",
            "type": "idempotency_key_reused",
        }
    ]
    assert other.json()["error"]["param"] == "Idempotency-Key"
    assert long.status_code == 400 and long.json()["error"]["code"] == "invalid_idempotency_key"
    assert predictions(redis_client) == [first.json()["id"]]


def _bearer(owner: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[owner]}"}


def test_concurrent_creates_with_one_key_make_one_prediction(stack: Stack, redis_client: redis.Redis) -> None:
    racers = 8
    start = threading.Barrier(racers)
    ids: list[str] = []

    def create() -> None:
        with wrift(stack.base_url, **{"Idempotency-Key": "race"}) as client:
            start.wait(30)
            ids.append(client.predictions.create(**ECHO)["id"])

    threads = [threading.Thread(target=create) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert len(ids) == racers and len(set(ids)) == 1
    assert predictions(redis_client) == ids[:1]


def test_openai_calls_with_one_key_wait_on_one_prediction(stack: Stack, redis_client: redis.Redis) -> None:
    with openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key=KEYS["alice"]) as client:
        key = {"Idempotency-Key": "embed-once"}
        first = client.embeddings.with_raw_response.create(
            model="inferq/hash-embed", input="once", extra_headers=key
        )
        again = client.embeddings.with_raw_response.create(
            model="inferq/hash-embed", input="once", extra_headers=key
        )
        with pytest.raises(openai.UnprocessableEntityError) as reused:
            client.embeddings.create(model="inferq/hash-embed", input="twice", extra_headers=key)
        image = {"Idempotency-Key": "draw-once"}
        drawn = [
            client.images.with_raw_response.generate(prompt="a star", size="256x256", extra_headers=image)
            for _ in range(2)
        ]

    assert first.headers["x-prediction-id"] == again.headers["x-prediction-id"]
    assert first.parse().data[0].embedding == again.parse().data[0].embedding
    assert reused.value.code == "idempotency_key_reused" and reused.value.param == "Idempotency-Key"
    assert drawn[0].headers["x-prediction-id"] == drawn[1].headers["x-prediction-id"]
    assert drawn[0].parse().data[0].b64_json == drawn[1].parse().data[0].b64_json
    assert sorted(predictions(redis_client)) == sorted(
        [first.headers["x-prediction-id"], drawn[0].headers["x-prediction-id"]]
    )


def test_a_streamed_create_that_redis_fails_makes_one_prediction(
    faulty: tuple[str, FaultyProxy], redis_client: redis.Redis
) -> None:
    base, proxy = faulty
    proxy.break_(RECORD_READS)
    proxy.break_(command("XRANGE", keys.prediction("")))
    with wrift(base) as client, pytest.raises(httpx.RemoteProtocolError):  # after its 201: not retried
        list(client.predictions.create(**ECHO, stream=True, wait=True))
    with openai.OpenAI(base_url=f"{base}/v1", api_key=KEYS["alice"]) as images:
        with pytest.raises(openai.APIConnectionError):  # after its 200
            list(images.images.generate(model="tests/slow-images", prompt="x", size="256x256", stream=True))
    proxy.heal()

    assert len(predictions(redis_client)) == 2  # one each

"""Limits that keep one request, or one key, from filling Redis: the input's size (``413``)."""

from __future__ import annotations

import httpx
import openai
import pytest
import redis
import wriftai

from common.store import keys
from tests.conftest import KEYS
from tests.integration.conftest import Stack

MIB = 1024 * 1024


def test_an_input_over_the_default_mebibyte_is_413_and_stores_nothing(
    stack: Stack, redis_client: redis.Redis
) -> None:
    with httpx.Client() as http:
        client = wriftai.Client(
            access_token=KEYS["alice"], api_base_url=f"{stack.base_url}/v1", http_client=http, max_retries=0
        )
        with pytest.raises(httpx.HTTPStatusError) as raised:
            client.predictions.create(model="inferq/echo", input={"prompt": "x" * MIB})
        just_under = client.predictions.create(model="inferq/echo", input={"prompt": "x" * (MIB - 100)})
    response = raised.value.response
    assert response.status_code == 413
    error = response.json()["error"]
    assert (error["code"], error["param"]) == ("input_too_large", "input")
    assert error["type"] == "invalid_request_error" and "INFERQ_MAX_INPUT_BYTES" in error["message"]
    assert redis_client.keys("inferq:prediction:*") == [keys.prediction(just_under["id"])]


def test_an_openai_input_over_the_limit_is_413(stack: Stack) -> None:
    client = openai.OpenAI(api_key=KEYS["alice"], base_url=f"{stack.base_url}/v1", max_retries=0)
    with pytest.raises(openai.APIStatusError) as raised:
        client.embeddings.create(model="inferq/hash-embed", input=["word " * 2000] * 120)
    assert raised.value.status_code == 413

"""Limits that keep one request from filling Redis (the input's size: ``413``) or freezing its API process."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
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


def test_counting_a_large_requests_tokens_does_not_freeze_the_other_requests(
    stack: Stack, own_api: Callable[..., str], tmp_path: Path
) -> None:
    base = own_api(SLOW_TOKENS_DIR=str(tmp_path))
    client = openai.OpenAI(api_key=KEYS["alice"], base_url=f"{base}/v1", max_retries=0, timeout=60)
    answers: list[Any] = []
    large = threading.Thread(
        target=lambda: answers.append(
            client.embeddings.create(model="tests/slow-tokens", input=["word " * 2500, "more " * 2500])
        )
    )
    large.start()
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "counting").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "counting").exists(), "the API never started counting"

        health = httpx.get(f"{base}/healthz", timeout=10)  # the same (single) API process

        assert health.status_code == 200
        assert not answers, "the large request should still be counting"
    finally:
        (tmp_path / "release").write_text("go")
        large.join(60)
    assert len(answers) == 1 and len(answers[0].data) == 2

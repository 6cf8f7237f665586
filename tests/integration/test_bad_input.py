"""Bad requests get a clear 4xx with the documented body, and nothing is stored."""

from __future__ import annotations

import json

import pytest
import redis

from tests.conftest import stored
from tests.integration.conftest import Stack

GOOD = {"model": "inferq/echo", "input": {"prompt": "x"}}


@pytest.mark.parametrize(
    ("body", "status", "loc"),
    [
        (b"{not json", 400, None),
        (b"", 422, ["body", "model"]),
        (b"[1, 2]", 422, ["body"]),
        (b'"a string"', 422, ["body"]),
        (b'{"model": "inferq/echo", "input": {"x": NaN}}', 400, None),
        (b'{"model": "inferq/echo", "input": {"x": 1e999999}}', 400, None),
        (b'{"model": "inferq/echo", "input": {"x": ' + b"9" * 5000 + b"}}", 400, None),
        (b"[" * 100_000, 400, None),
        (b'{"model": "inferq/echo", "input": {"a": ' + b"[" * 150 + b"]" * 150 + b"}}", 400, None),
        (json.dumps({"model": 42, "input": {}}).encode(), 422, ["body", "model"]),
        (json.dumps({"model": "inferq/echo", "input": "text"}).encode(), 422, ["body", "input"]),
        (json.dumps({"model": "inferq/echo", "input": [1]}).encode(), 422, ["body", "input"]),
        (json.dumps({"model": "inferq/echo"}).encode(), 422, ["body", "input"]),
        (json.dumps({**GOOD, "extra": True}).encode(), 422, ["body", "extra"]),
        (json.dumps({**GOOD, "stream": "sometimes"}).encode(), 422, ["body", "stream"]),
        (
            json.dumps({**GOOD, "webhook": {"url": "ftp://example.com/x"}}).encode(),
            422,
            ["body", "webhook", "url"],
        ),
        (
            json.dumps({**GOOD, "webhook": {"url": "https://example.com", "other": 1}}).encode(),
            422,
            ["body", "webhook", "other"],
        ),
        (json.dumps({**GOOD, "webhook": "https://example.com"}).encode(), 422, ["body", "webhook"]),
    ],
)
def test_bad_bodies_are_4xx_with_detail_and_store_nothing(
    stack: Stack, redis_client: redis.Redis, body: bytes, status: int, loc: list[str] | None
) -> None:
    with stack.http() as http:
        response = http.post("/v1/predictions", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["error"]["type"] == "invalid_request_error"
    if loc is None:
        assert isinstance(payload["detail"], str)
    else:
        assert payload["detail"][0]["loc"] == loc
        assert {"loc", "msg", "type"} <= set(payload["detail"][0])
    assert stored(redis_client) == []


def test_unicode_and_a_missing_content_type_are_fine(stack: Stack) -> None:
    body = json.dumps({"model": "inferq/echo", "input": {"prompt": "héllo 🌍 \u2028 \ud800"}})
    with stack.http() as http:
        response = http.post("/v1/predictions", content=body.encode(), headers={"Prefer": "wait"})
    assert response.status_code == 201
    assert response.json()["output"] == "héllo 🌍 \u2028 \ud800"


def test_bad_validate_input_header_is_422(stack: Stack, redis_client: redis.Redis) -> None:
    with stack.http() as http:
        response = http.post("/v1/predictions", json=GOOD, headers={"Validate-Input": "maybe"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "validate-input"]
    assert stored(redis_client) == []


def test_a_body_over_the_limit_is_413(stack: Stack) -> None:
    huge = json.dumps({"model": "inferq/echo", "input": {"prompt": "x" * (11 * 1024 * 1024)}})
    with stack.http() as http:
        response = http.post("/v1/predictions", content=huge.encode())
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_wrong_method_and_unknown_route(stack: Stack) -> None:
    with stack.http() as http:
        assert http.delete("/v1/predictions").status_code == 405
        missing = http.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"

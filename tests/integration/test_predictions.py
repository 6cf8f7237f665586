"""Creating and reading predictions with the official wriftai client, against the real stack."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx
import pytest
import redis
import wriftai
from wriftai.predictions import CreateWaitOptions

from tests.conftest import KEYS, stored
from tests.integration.conftest import Stack

TERMINAL = {"succeeded", "failed", "cancelled", "abandoned"}


def test_create_then_poll_until_succeeded(alice: wriftai.Client) -> None:
    created = alice.predictions.create(model="inferq/echo", input={"prompt": "hello there"})
    assert created["status"] in {"pending", "starting", "started", "succeeded"}
    assert created["model"] == {"owner": "inferq", "name": "echo", "version_number": 1}
    assert created["stream"] is False

    done = alice.predictions.wait(created["id"])

    assert done["status"] == "succeeded"
    assert done["output"] == "hello there"
    assert done["error"] is None
    assert done["metrics"]["predict_time"] >= 0
    assert done["execution_time"].startswith("PT") and done["setup_time"].startswith("PT")
    created_at = datetime.fromisoformat(done["created_at"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(done["updated_at"].replace("Z", "+00:00")) >= created_at


def test_prefer_wait_answers_once_terminal(alice: wriftai.Client) -> None:
    done = alice.predictions.create(model="inferq/echo", input={"prompt": "a b c", "delay_s": 0.3}, wait=True)
    assert done["status"] == "succeeded"
    assert done["output"] == "a b c"


@pytest.mark.parametrize("words", [3, 20_000], ids=["carried-by-the-news", "too-big-so-read-back"])
def test_a_waited_answer_is_the_record_as_stored(alice: wriftai.Client, words: int) -> None:
    """The news of an ending carries records up to 16 KiB; a bigger one is read back."""
    prompt = " ".join(["word"] * words)
    done = alice.predictions.create(model="inferq/echo", input={"prompt": prompt}, wait=True)
    assert (done["status"], done["output"]) == ("succeeded", prompt)
    assert alice.predictions.get(done["id"]) == done


def test_prefer_wait_returns_the_running_prediction_when_the_wait_runs_out(
    alice: wriftai.Client, stack: Stack
) -> None:
    options = CreateWaitOptions(duration=0.5, poll=False)
    running = alice.predictions.create(
        model="inferq/echo", input={"prompt": "slow", "delay_s": 5}, wait=True, wait_options=options
    )
    assert running["status"] in {"pending", "starting", "started"}
    alice.predictions.cancel(running["id"])
    assert alice.predictions.wait(running["id"])["status"] == "cancelled"


def test_prefer_wait_accepts_every_float_form_and_other_preferences(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {KEYS['alice']}"}
    body = {"model": "inferq/echo", "input": {"prompt": "x"}, "stream": False}
    for prefer in ("wait", "wait=5", "wait=2.5", "wait=1e+16", "respond-async, wait=10", "wait=-1"):
        response = httpx.post(
            f"{stack.base_url}/v1/predictions", json=body, headers={**headers, "Prefer": prefer}
        )
        assert response.status_code == 201, (prefer, response.text)
        if prefer != "wait=-1":
            assert response.json()["status"] == "succeeded", prefer


def test_create_answers_201_with_location_and_request_id(stack: Stack) -> None:
    response = httpx.post(
        f"{stack.base_url}/v1/predictions",
        json={"model": "inferq/echo", "input": {"prompt": "x"}},
        headers={"Authorization": f"Bearer {KEYS['alice']}"},
    )
    assert response.status_code == 201
    prediction_id = response.json()["id"]
    assert response.headers["Location"] == f"{stack.base_url}/v1/predictions/{prediction_id}"
    assert response.headers["x-request-id"]


def test_latest_and_pinned_versions(alice: wriftai.Client, start_worker: Callable[..., str]) -> None:
    start_worker(["tests.multi"])

    latest = alice.predictions.create(model="tests/multi", input={"text": "hi"}, wait=True)
    pinned = alice.predictions.create(model="tests/multi:1", input={"anything": 1}, wait=True)

    assert latest["model"]["version_number"] == 2
    assert latest["output"] == {"input": {"text": "hi"}, "options": {"version": 2}}
    assert pinned["model"]["version_number"] == 1
    assert pinned["output"]["options"] == {"version": 1}


def test_model_scoped_create_routes(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {KEYS['alice']}", "Prefer": "wait"}
    body = {"input": {"prompt": "routed"}}
    for path in ("/v1/models/inferq/echo/predictions", "/v1/models/inferq/echo/versions/1/predictions"):
        response = httpx.post(f"{stack.base_url}{path}", json=body, headers=headers)
        assert response.status_code == 201, response.text
        assert response.json()["output"] == "routed"
    missing = httpx.post(
        f"{stack.base_url}/v1/models/inferq/echo/versions/9/predictions", json=body, headers=headers
    )
    assert missing.status_code == 404


@pytest.mark.parametrize("model", ["nobody/nothing", "inferq/echo:7"])
def test_unknown_model_or_version_is_404_and_stores_nothing(
    alice: wriftai.Client, redis_client: redis.Redis, model: str
) -> None:
    with pytest.raises(httpx.HTTPStatusError) as raised:
        alice.predictions.create(model=model, input={"prompt": "x"})
    assert raised.value.response.status_code == 404
    assert raised.value.response.json()["error"]["code"] == "model_not_found"
    assert stored(redis_client) == []


@pytest.mark.parametrize("model", ["echo", "inferq/echo:latest", "a/b/c", "inferq/echo:"])
def test_malformed_model_reference_is_422(stack: Stack, redis_client: redis.Redis, model: str) -> None:
    response = httpx.post(
        f"{stack.base_url}/v1/predictions",
        json={"model": model, "input": {}},
        headers={"Authorization": f"Bearer {KEYS['alice']}"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "model"]
    assert response.json()["error"]["param"] == "model"
    assert stored(redis_client) == []


def test_validate_input_refuses_bad_input_before_creating_anything(
    alice: wriftai.Client, redis_client: redis.Redis
) -> None:
    with pytest.raises(httpx.HTTPStatusError) as raised:
        alice.predictions.create(model="inferq/echo", input={"delay_s": -1}, validate_input=True)
    response = raised.value.response
    assert response.status_code == 422
    problems = {(tuple(d["loc"]), d["type"]) for d in response.json()["detail"]}
    assert (("body", "input"), "required") in problems
    assert (("body", "input", "delay_s"), "minimum") in problems
    assert stored(redis_client) == []
    assert alice.predictions.list().items == []


def test_without_validate_input_bad_input_fails_the_prediction(alice: wriftai.Client) -> None:
    failed = alice.predictions.create(model="inferq/echo", input={"nope": 1}, validate_input=False, wait=True)
    assert failed["status"] == "failed"
    assert failed["error"]["source"] == "external"
    assert "schema" in failed["error"]["message"]
    assert failed["output"] is None


def test_a_model_that_raises_fails_with_an_external_error(
    alice: wriftai.Client, start_worker: Callable[..., str]
) -> None:
    start_worker(["tests.raises"])
    failed = alice.predictions.create(model="tests/raises", input={"message": "out of ideas"}, wait=True)
    assert failed["status"] == "failed"
    assert failed["error"]["source"] == "external"
    assert failed["error"]["message"] == "out of ideas"
    assert failed["error"]["detail"]["type"] == "ValueError"


def test_get_unknown_or_malformed_id_is_404(alice: wriftai.Client) -> None:
    for prediction_id in ("01a20a23-726e-7112-aef2-7b499c04ca05", "not-a-uuid"):
        with pytest.raises(httpx.HTTPStatusError) as raised:
            alice.predictions.get(prediction_id)
        assert raised.value.response.status_code == 404
        assert raised.value.response.json()["detail"] == "Prediction not found"


def test_every_2xx_has_a_json_body_and_a_request_id(stack: Stack) -> None:
    with stack.http() as client:
        _check_every_2xx(client)


def _check_every_2xx(client: httpx.Client) -> None:
    created = client.post("/v1/predictions", json={"model": "inferq/echo", "input": {"prompt": "x"}})
    slow = client.post(
        "/v1/predictions", json={"model": "inferq/echo", "input": {"prompt": "y", "delay_s": 5}}
    )
    cancelled = client.post(f"/v1/predictions/{slow.json()['id']}/cancel")
    assert cancelled.json() is None
    responses = [
        created,
        cancelled,
        client.get(f"/v1/predictions/{created.json()['id']}"),
        client.get("/v1/predictions"),
        client.get("/healthz"),
    ]
    for response in responses:
        assert 200 <= response.status_code < 300, response.text
        response.json()
        assert response.headers["x-request-id"]


def test_adapter_logs_are_kept_on_the_prediction(
    alice: wriftai.Client, start_worker: Callable[..., str]
) -> None:
    start_worker(["tests.slow"])
    done = alice.predictions.create(model="tests/slow", input={"seconds": 0}, wait=True)
    assert done["status"] == "succeeded"
    assert done["logs"] == "starting\n"

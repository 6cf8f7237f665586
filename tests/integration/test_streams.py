"""Prediction streams with the official wriftai client: create-and-stream, resume, replay, errors."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
import redis
import wriftai
from wriftai.predictions import CreateWaitOptions

from common.store import keys
from tests.conftest import KEYS
from tests.integration.conftest import Stack, wait_for_status

TERMINAL = {"succeeded", "failed", "cancelled", "abandoned"}


def _ids_increase(events: list[wriftai.predictions.PredictionStreamEvent]) -> bool:
    keys = [tuple(int(part) for part in event["id"].split("-")) for event in events]
    return keys == sorted(set(keys))


def test_create_and_stream_to_done(alice: wriftai.Client) -> None:
    events = list(
        alice.predictions.create(
            model="inferq/echo", input={"prompt": "one two three", "delay_s": 0.3}, wait=True, stream=True
        )
    )

    assert [e["event"] for e in events] == ["init", "output", "output", "output", "done"]
    init, done = events[0]["data"], events[-1]["data"]
    assert isinstance(init, dict) and isinstance(done, dict)
    assert init["id"] == done["id"] and init["stream"] is True
    assert "".join(str(e["data"]) for e in events[1:-1]) == "one two three"
    assert done["status"] == "succeeded" and done["output"] == "one two three"
    assert _ids_increase(events)


def test_the_input_is_stored_once_and_the_init_event_still_carries_it(
    alice: wriftai.Client, redis_client: redis.Redis
) -> None:
    body = {"prompt": "kept once", "delay_s": 0.2}
    events = list(alice.predictions.create(model="inferq/echo", input=body, wait=True, stream=True))

    init = events[0]["data"]
    assert isinstance(init, dict) and init["input"] == body
    stored = redis_client.xrange(keys.prediction_events(init["id"]), count=1)
    assert stored[0][1]["event"] == "init" and "input" not in json.loads(stored[0][1]["data"])


def test_an_idle_close_is_resumed_by_the_client_without_gaps_or_repeats(alice: wriftai.Client) -> None:
    prompt = "alpha beta gamma delta"
    options = CreateWaitOptions(duration=0.3)  # idle closes after 0.3 s; words come every 0.5 s
    events = list(
        alice.predictions.create(
            model="inferq/echo",
            input={"prompt": prompt, "delay_s": 2},
            wait=True,
            stream=True,
            wait_options=options,
        )
    )

    assert [e["event"] for e in events] == ["init"] + ["output"] * 4 + ["done"]
    assert "".join(str(e["data"]) for e in events[1:-1]) == prompt
    assert _ids_increase(events)


def test_late_replay_and_resuming_from_the_middle(alice: wriftai.Client) -> None:
    created = alice.predictions.create(model="inferq/echo", input={"prompt": "x y z"}, stream=True)
    assert created["stream"] is True
    everything = list(alice.predictions.stream(created["id"]))
    assert [e["event"] for e in everything] == ["init", "output", "output", "output", "done"]

    rest = list(alice.predictions.stream(created["id"], after_id=everything[1]["id"]))
    assert rest == everything[2:]
    again = list(alice.predictions.stream(created["id"], after_id=everything[-1]["id"]))
    assert again == everything[-1:]  # a finished stream always ends with its terminal event


def test_a_failing_model_ends_its_stream_with_an_error_event(
    alice: wriftai.Client, start_worker: Callable[..., str]
) -> None:
    start_worker(["tests.raises"])
    events = list(
        alice.predictions.create(model="tests/raises", input={"message": "no good"}, wait=True, stream=True)
    )
    assert [e["event"] for e in events] == ["init", "error"]
    assert events[-1]["data"] == {
        "source": "external",
        "message": "no good",
        "detail": events[-1]["data"]["detail"],
    }  # type: ignore[index]


def test_a_cancelled_stream_ends_with_done(alice: wriftai.Client, stack: Stack) -> None:
    created = alice.predictions.create(
        model="inferq/echo", input={"prompt": "a b", "delay_s": 60}, stream=True
    )
    wait_for_status(stack.env["INFERQ_REDIS_URL"], created["id"], {"started"})
    alice.predictions.cancel(created["id"])
    events = list(alice.predictions.stream(created["id"]))
    assert events[-1]["event"] == "done"
    assert events[-1]["data"]["status"] == "cancelled"  # type: ignore[index]


def test_streaming_a_prediction_created_without_stream_is_409(alice: wriftai.Client, stack: Stack) -> None:
    plain = alice.predictions.create(model="inferq/echo", input={"prompt": "x"}, wait=True)
    assert plain["stream"] is False
    with pytest.raises(httpx.HTTPStatusError) as raised:
        list(alice.predictions.stream(plain["id"]))
    assert raised.value.response.status_code == 409
    assert raised.value.response.json()["error"]["code"] == "stream_unavailable"


def test_another_owners_stream_is_404(alice: wriftai.Client, bob: wriftai.Client) -> None:
    created = alice.predictions.create(model="inferq/echo", input={"prompt": "x"}, stream=True)
    with pytest.raises(httpx.HTTPStatusError) as raised:
        list(bob.predictions.stream(created["id"]))
    assert raised.value.response.status_code == 404


def test_the_wire_format_last_event_id_and_heartbeats(alice: wriftai.Client, stack: Stack) -> None:
    created = alice.predictions.create(
        model="inferq/echo", input={"prompt": "p q", "delay_s": 1.5}, stream=True
    )
    headers = {"Authorization": f"Bearer {KEYS['alice']}", "Prefer": "wait=5"}
    with httpx.stream(
        "GET", f"{stack.base_url}/v1/predictions/{created['id']}/stream", headers=headers
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    blocks = [block for block in text.split("\n\n") if block]
    assert ": keep-alive" in blocks  # the words come 0.75 s apart; heartbeats every 0.5 s
    events = [block for block in blocks if not block.startswith(":")]
    for block in events:
        lines = block.split("\n")
        assert [line.split(":", 1)[0] for line in lines] == ["id", "event", "data"]
    first_id = events[0].split("\n")[0].removeprefix("id: ")
    resumed = httpx.get(
        f"{stack.base_url}/v1/predictions/{created['id']}/stream",
        headers={**headers, "Last-Event-ID": first_id},
    )
    assert resumed.text.count("event: ") == len(events) - 1


def test_bad_after_id_is_422(alice: wriftai.Client, stack: Stack) -> None:
    created = alice.predictions.create(model="inferq/echo", input={"prompt": "x"}, stream=True)
    with stack.http() as http:
        response = http.get(f"/v1/predictions/{created['id']}/stream", params={"after_id": "nope"})
    assert response.status_code == 422


def test_every_stream_ends_with_a_terminal_event_or_cleanly_when_idle(
    alice: wriftai.Client, stack: Stack
) -> None:
    created = alice.predictions.create(
        model="inferq/echo", input={"prompt": "slow", "delay_s": 30}, stream=True
    )
    headers = {"Authorization": f"Bearer {KEYS['alice']}", "Prefer": "wait=0.3"}
    with stack.http() as http:
        idle = http.get(f"/v1/predictions/{created['id']}/stream", headers=headers)
    assert idle.status_code == 200
    assert [line for line in idle.text.split("\n") if line.startswith("event:")] == ["event: init"]
    alice.predictions.cancel(created["id"])
    wait_for_status(stack.env["INFERQ_REDIS_URL"], created["id"], TERMINAL)

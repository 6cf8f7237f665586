"""Webhooks to a real HTTP receiver: every status in order, signed, retried, and SSRF-safe."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import wriftai
from wriftai import WebhookSignatureMismatchError

from common.processes.embedded_redis import free_port
from common.processes.launcher import Launcher
from common.store import keys
from tests.conftest import KEYS, base_env
from tests.integration.conftest import Stack
from tests.integration.receivers import Receiver, receiving

SECRET = "whsec-test"
LIFECYCLE = ["pending", "starting", "started", "succeeded"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on loopback, for one test."""
    with receiving() as found:
        yield found


def _statuses(deliveries: list[tuple[dict[str, str], bytes]]) -> list[str]:
    return [json.loads(body)["status"] for _, body in deliveries]


def _in_order(statuses: list[str]) -> bool:
    """Every status change once, in lifecycle order (``starting`` only on a cold model load)."""
    return statuses in (LIFECYCLE, [s for s in LIFECYCLE if s != "starting"])


def test_every_status_change_arrives_in_order_signed_and_verifiable(
    alice: wriftai.Client, receiver: Receiver
) -> None:
    done = alice.predictions.create(
        model="inferq/echo",
        input={"prompt": "hooked", "delay_s": 0.2},
        webhook={"url": receiver.url, "secret": SECRET},
        wait=True,
    )

    deliveries = receiver.wait_for_terminal()
    assert _in_order(_statuses(deliveries)), _statuses(deliveries)
    for headers, body in deliveries:
        header = headers["wriftai-webhook-signature"]
        wriftai.verify_webhook(body, header, SECRET)  # raises unless genuine
        with pytest.raises(WebhookSignatureMismatchError):
            wriftai.verify_webhook(body, header, "the-wrong-secret")
    last = json.loads(deliveries[-1][1])
    assert last == {**done, "logs": last["logs"]}  # the same shape as GET
    assert last["output"] == "hooked"


def test_deliveries_are_retried_after_failures(alice: wriftai.Client, receiver: Receiver) -> None:
    receiver.failures = 2
    alice.predictions.create(
        model="inferq/echo", input={"prompt": "retry me"}, webhook={"url": receiver.url}, wait=True
    )

    deliveries = receiver.wait_for_terminal()
    assert receiver.attempts == 2 + len(deliveries)  # two failures, then each status change once
    assert _in_order(_statuses(deliveries)), _statuses(deliveries)
    assert "wriftai-webhook-signature" not in deliveries[0][0]  # no secret, no signature


def test_a_webhook_without_secret_or_with_null_secret(alice: wriftai.Client, receiver: Receiver) -> None:
    alice.predictions.create(
        model="inferq/echo", input={"prompt": "x"}, webhook={"url": receiver.url, "secret": None}, wait=True
    )
    assert _statuses(receiver.wait_for_terminal())[-1] == "succeeded"


def _stops_being_due(client: redis.Redis, prediction_id: str, timeout: float) -> bool:
    """Whether the prediction leaves ``webhooks-due`` within ``timeout`` (heard as keyspace events)."""
    db = client.connection_pool.connection_kwargs.get("db", 0)
    client.config_set("notify-keyspace-events", "Kz")
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"__keyspace@{db}__:{keys.webhooks_due()}")
    try:
        pubsub.get_message(ignore_subscribe_messages=False, timeout=5)  # subscribed
        deadline = time.monotonic() + timeout
        while client.zscore(keys.webhooks_due(), prediction_id) is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            pubsub.get_message(timeout=remaining)
        return True
    finally:
        pubsub.close()
        client.config_set("notify-keyspace-events", "")


def test_every_delivery_attempt_is_listed_with_its_code(
    alice: wriftai.Client, receiver: Receiver, stack: Stack
) -> None:
    receiver.failures, receiver.failure_status = 1, 500
    done = alice.predictions.create(
        model="inferq/echo", input={"prompt": "logged"}, webhook={"url": receiver.url}, wait=True
    )
    delivered = _statuses(receiver.wait_for_terminal())
    pid = done["id"]
    client = redis.Redis.from_url(stack.env["INFERQ_REDIS_URL"], decode_responses=True)
    try:  # the last delivery's script logs it and stops the prediction being due, at once
        assert _stops_being_due(client, pid, timeout=20)
    finally:
        client.close()

    with stack.http() as http:
        answer = http.get(f"/v1/predictions/{pid}/webhooks")
    assert answer.status_code == 200, answer.text
    log = answer.json()
    assert (log["object"], log["pending"], log["next_attempt_at"]) == ("list", 0, None)
    failed, *rest = log["data"]
    assert (failed["attempt"], failed["status"], failed["status_code"], failed["outcome"]) == (
        1,
        "pending",
        500,
        "retrying",
    )
    assert failed["error"] is None
    assert [(a["status"], a["status_code"], a["outcome"]) for a in rest] == [
        (status, 200, "delivered") for status in delivered
    ]
    assert [a["attempt"] for a in rest] == [2] + [1] * (len(rest) - 1)
    assert all(a["duration_ms"] >= 0 and a["attempted_at"].endswith("Z") for a in log["data"])


def test_webhook_deliveries_of_others_and_of_none(alice: wriftai.Client, stack: Stack) -> None:
    plain = alice.predictions.create(model="inferq/echo", input={"prompt": "no hook"}, wait=True)
    with stack.http() as http:
        empty = http.get(f"/v1/predictions/{plain['id']}/webhooks").json()
    assert empty == {"object": "list", "data": [], "pending": 0, "next_attempt_at": None}
    with stack.http("bob") as http:
        hidden = http.get(f"/v1/predictions/{plain['id']}/webhooks")
        missing = http.get(f"/v1/predictions/{uuid.uuid4()}/webhooks")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()


def test_a_due_webhook_whose_outbox_expired_is_dropped_not_asked_for_forever(
    alice: wriftai.Client, receiver: Receiver, stack: Stack
) -> None:
    receiver.failures = 10**9  # the receiver is down for longer than the prediction is kept
    done = alice.predictions.create(
        model="inferq/echo", input={"prompt": "kept too briefly"}, webhook={"url": receiver.url}, wait=True
    )
    with receiver.changed:
        assert receiver.changed.wait_for(lambda: receiver.attempts >= 1, 30)
    client = redis.Redis.from_url(stack.env["INFERQ_REDIS_URL"], decode_responses=True)
    try:
        pid = done["id"]
        assert client.zscore(keys.webhooks_due(), pid) is not None
        # The retention passes: the record expires, and its outbox with it (as EXPIRE would do).
        client.delete(keys.prediction(pid), keys.prediction_logs(pid), keys.webhook_outbox(pid))

        assert _stops_being_due(client, pid, timeout=20)
        assert not client.exists(keys.webhook_attempts(pid))
    finally:
        client.close()


def test_private_addresses_are_refused_by_default(tmp_path: Path, stack: Stack) -> None:
    env = base_env(stack.env["INFERQ_REDIS_URL"], tmp_path)
    env.pop("INFERQ_WEBHOOK_ALLOW_PRIVATE")
    launcher = Launcher(env, log_dir=tmp_path)
    try:
        base = launcher.start_api("127.0.0.1", free_port())
        headers = {"Authorization": f"Bearer {KEYS['alice']}"}
        for url in (
            "http://127.0.0.1:9/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://10.1.2.3/hook",
            "http://[::1]/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://localhost/hook",
            "http://0.0.0.0/hook",
        ):
            body = {"model": "inferq/echo", "input": {"prompt": "x"}, "webhook": {"url": url}}
            response = httpx.post(f"{base}/v1/predictions", json=body, headers=headers)
            assert response.status_code == 422, url
            assert response.json()["detail"][0]["loc"] == ["body", "webhook", "url"]
    finally:
        launcher.stop_all()

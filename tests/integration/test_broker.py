"""The task message the store queues is the one Celery itself would publish; the transport it rides."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
import wriftai
from kombu import Queue

from common.config import Settings
from common.queue import transport
from common.queue.broker import PREDICT_TASK, TaskMessages, celery_config, make_celery
from common.records import ModelRef
from common.store import keys
from tests.integration.conftest import Stack, wait_for_status


def test_the_envelope_matches_what_send_task_pushes(redis_client: redis.Redis) -> None:
    app = make_celery(Settings.defaults(redis_url=_url(redis_client)))
    model = ModelRef("inferq", "echo", 1)
    app.send_task(PREDICT_TASK, args=["abc", model.key], queue="envelope.test", task_id="abc")
    theirs = json.loads(redis_client.rpop("envelope.test"))
    ours = json.loads(TaskMessages(app, "inferq.webhooks").envelope("abc", model, "envelope.test"))

    assert set(ours) == set(theirs)
    assert base64.b64decode(ours["body"]) == base64.b64decode(theirs["body"])
    for part in ("content-type", "content-encoding"):
        assert ours[part] == theirs[part]
    varying = {"origin", "ignore_result"}  # the sending host and pid; we never want a result
    assert ours["headers"]["ignore_result"] is True
    assert {k: v for k, v in ours["headers"].items() if k not in varying} == {
        k: v for k, v in theirs["headers"].items() if k not in varying
    }
    assert set(ours["properties"]) == set(theirs["properties"])
    for name in ("delivery_info", "priority", "body_encoding", "delivery_mode", "correlation_id"):
        assert ours["properties"][name] == theirs["properties"][name], name
    app.close()


def test_a_redis_broker_keeps_one_client_per_channel_over_its_pool(redis_client: redis.Redis) -> None:
    app = make_celery(Settings.defaults(redis_url=_url(redis_client)))
    with app.connection_for_write() as connection:
        channel = connection.default_channel
        assert isinstance(channel, transport.Channel)
        with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
            assert first is second and first.connection_pool is channel.pool
        given = redis.Redis(connection_pool=channel.pool)
        with channel.conn_or_acquire(given) as passed:
            assert passed is given
        channel._pool = None  # kombu builds a new pool (as after a disconnect): a new client over it
        with channel.conn_or_acquire() as third:
            assert third is not first and third.connection_pool is channel.pool
    app.close()


def test_a_taken_message_stays_unacknowledged_until_acked(redis_client: redis.Redis) -> None:
    app = make_celery(Settings.defaults(redis_url=_url(redis_client)))
    with app.connection_for_write() as connection, connection.SimpleQueue("transport.test") as queue:
        queue.put({"n": 1})
        message = queue.get(timeout=5)
        assert message.payload == {"n": 1}
        message.channel.qos.settle()
        assert redis_client.hlen(keys.celery_unacked()) == 1
        assert redis_client.zcard(keys.celery_unacked_index()) == 1
        message.ack()
        message.channel.qos.settle()
        assert redis_client.hlen(keys.celery_unacked()) == 0
        assert redis_client.zcard(keys.celery_unacked_index()) == 0
    app.close()


def test_a_taken_message_reaches_its_consumer_before_it_is_recorded(redis_client: redis.Redis) -> None:
    seen_unacked = []
    with _consuming(redis_client, lambda body, message: seen_unacked.append(_unacked(redis_client))) as qos:
        assert seen_unacked == [(0, 0)]  # kombu's own channel would have recorded it, and waited
        qos.settle()
        assert _unacked(redis_client) == (1, 1)
    assert redis_client.llen("transport.test") == 1  # closing the channel restored it


def test_a_message_settled_by_its_consumer_is_never_recorded(redis_client: redis.Redis) -> None:
    with _consuming(redis_client, lambda body, message: message.ack()) as qos:
        qos.settle()
        assert _unacked(redis_client) == (0, 0)
    assert redis_client.llen("transport.test") == 0


def test_a_message_rejected_before_it_was_recorded_goes_back_to_its_queue(redis_client: redis.Redis) -> None:
    # Celery's reject_on_worker_lost requeues this way; kombu's restore reads the record back.
    with _consuming(redis_client, lambda body, message: message.reject(requeue=True)) as qos:
        qos.settle()
        assert _unacked(redis_client) == (0, 0)
        assert redis_client.llen("transport.test") == 1


def test_no_record_is_lost_when_redis_drops_its_connection(redis_client: redis.Redis) -> None:
    app = make_celery(Settings.defaults(redis_url=_url(redis_client)))
    with app.connection_for_write() as connection, connection.SimpleQueue("transport.test") as queue:
        for n in range(2):
            queue.put({"n": n})
        message = queue.get(timeout=5)
        message.ack()
        qos = message.channel.qos
        qos.settle()
        for client in redis_client.client_list():  # the recorder's connection (and old restores')
            if client["cmd"] == "exec":
                redis_client.client_kill_filter(_id=client["id"])
        message = queue.get(timeout=5)  # recorded on a new connection, not sent into the closed one
        qos.settle()
        assert _unacked(redis_client) == (1, 1)
        message.ack()
        qos.settle()
        assert _unacked(redis_client) == (0, 0)
    app.close()


def test_a_running_prediction_s_message_is_recorded_until_it_ends(
    stack: Stack, alice: wriftai.Client, redis_client: redis.Redis
) -> None:
    # A worker's event loop records the message a turn after the pool has the task: it must still land.
    prediction = alice.predictions.create(model="inferq/echo", input={"prompt": "hi", "delay_s": 1.5})
    wait_for_status(stack.env["INFERQ_REDIS_URL"], prediction["id"], {"started"})
    assert _within(5, lambda: _unacked_ids(redis_client) == [prediction["id"]])
    wait_for_status(stack.env["INFERQ_REDIS_URL"], prediction["id"], {"succeeded"})
    assert _within(5, lambda: _unacked_ids(redis_client) == [])


def _unacked_ids(client: redis.Redis) -> list[str]:
    return [json.loads(raw)[0]["headers"]["id"] for raw in client.hvals(keys.celery_unacked())]


def _within(seconds: float, condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@contextmanager
def _consuming(redis_client: redis.Redis, callback: Callable[[Any, Any], None]) -> Iterator[transport.QoS]:
    """Delivers one message on ``transport.test`` to ``callback`` through a real consumer."""
    app = make_celery(Settings.defaults(redis_url=_url(redis_client)))
    with app.connection_for_write() as connection:
        channel = connection.channel()
        queue = Queue("transport.test", channel=channel)
        queue.declare()
        with connection.Producer(channel) as producer:
            producer.publish({"n": 1}, routing_key="transport.test")
        delivered: list[Any] = []
        callbacks = [callback, lambda body, message: delivered.append(message)]
        with connection.Consumer([queue], channel=channel, callbacks=callbacks):
            connection.drain_events(timeout=5)
            assert len(delivered) == 1
            yield channel.qos
        channel.close()
    app.close()


def _unacked(client: redis.Redis) -> tuple[int, int]:
    return client.hlen(keys.celery_unacked()), client.zcard(keys.celery_unacked_index())


@pytest.mark.parametrize("url", ["rediss://127.0.0.1:6380/0", "unix:///run/redis.sock"])
def test_other_schemes_keep_kombus_own_transport(url: str) -> None:
    # Given a transport class, kombu would read neither the TLS of rediss:// nor the socket path.
    assert "broker_transport" not in celery_config(Settings.defaults(redis_url=url))


def _url(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"

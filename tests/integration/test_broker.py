"""The task message the store queues is the one Celery itself would publish; the transport it rides."""

from __future__ import annotations

import base64
import json

import pytest
import redis

from common import keys, transport
from common.broker import PREDICT_TASK, TaskMessages, celery_config, make_celery
from common.config import Settings
from common.records import ModelRef


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
        assert redis_client.hlen(keys.celery_unacked()) == 1
        assert redis_client.zcard(keys.celery_unacked_index()) == 1
        message.ack()
        assert redis_client.hlen(keys.celery_unacked()) == 0
        assert redis_client.zcard(keys.celery_unacked_index()) == 0
    app.close()


@pytest.mark.parametrize("url", ["rediss://127.0.0.1:6380/0", "unix:///run/redis.sock"])
def test_other_schemes_keep_kombus_own_transport(url: str) -> None:
    # Given a transport class, kombu would read neither the TLS of rediss:// nor the socket path.
    assert "broker_transport" not in celery_config(Settings.defaults(redis_url=url))


def _url(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"

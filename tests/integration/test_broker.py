"""The task message the store queues is the one Celery itself would publish."""

from __future__ import annotations

import base64
import json

import redis

from common.broker import PREDICT_TASK, TaskMessages, make_celery
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


def _url(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"

"""Celery configuration and task messages, shared by the API (which queues) and the workers (which run).

Tasks are queued by name, so the API never imports the worker package. Results
are not kept in Celery at all: inferq's own records in Redis hold them.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from celery import Celery
from kombu import serialization

from common.config import Settings
from common.connections import broker_settings
from common.records import ModelRef

PREDICT_TASK = "inferq.predict"
"""Name of the task that runs one prediction: ``(prediction_id, "owner/name:N")``."""

REDIS_TRANSPORT = "common.queue.transport:Transport"
"""kombu's Redis transport with fewer client objects, for ``redis://`` brokers (``rediss://`` and
``unix://`` keep kombu's own: given a transport class, kombu reads neither scheme correctly)."""

SENTINEL_TRANSPORT = "common.queue.transport:SentinelTransport"
"""The same over kombu's Sentinel transport, for ``sentinel://`` brokers: its connections find the
master through the Sentinels, and leave one they no longer name (see
``common.connections.broker_settings`` and ``common.connections.masters.MasterWatch``)."""

TRANSPORTS = {"redis://": REDIS_TRANSPORT, "sentinel://": SENTINEL_TRANSPORT}
"""The transport class of each broker URL scheme that has one of inferq's."""

DELIVER_WEBHOOKS_TASK = "inferq.deliver_webhooks"
"""Name of the task that delivers a prediction's pending webhooks, in order: ``(prediction_id,)``."""


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings that make delivery at-least-once and recovery prompt.

    Late acks with ``reject_on_worker_lost`` requeue a task whose process died;
    prefetch 1 stops one worker hoarding queued predictions; pool processes get
    ten minutes to load their models; the visibility timeout stays above the
    longest legitimate run (dead workers are recovered by lease expiry long
    before it). A stopping worker (SIGTERM: a warm shutdown) lets running
    predictions finish for up to ``INFERQ_SHUTDOWN_GRACE`` seconds, then stops
    them (``workers.__main__``), and they go back to the queue.

    A broker connection that drops does not stop running predictions (Celery's
    ``worker_cancel_long_running_tasks_on_connection_loss`` would terminate
    them, and they would run again): each keeps its claim and lease, and the
    copy of its message kombu puts back in the queue finds it claimed and does
    nothing. An error Redis answers on the consuming connection (after a
    failover, a blocked pop gets ``UNBLOCKED``, then ``READONLY``) reconnects
    the consumer like a dropped connection; by default Celery ends the worker.
    """
    broker = broker_settings(settings)
    return {
        **broker,
        **_transport(broker["broker_url"]),
        "broker_connection_retry_on_startup": True,
        "broker_pool_limit": 16,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_prefetch_multiplier": 1,
        "worker_proc_alive_timeout": 600,
        "worker_cancel_long_running_tasks_on_connection_loss": False,
        "broker_channel_error_retry": True,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "worker_enable_remote_control": settings.celery_events,
        "worker_send_task_events": settings.celery_events,
        "task_send_sent_event": settings.celery_events,
        "task_default_queue": "inferq.default",
    }


def _transport(broker_url: str) -> dict[str, str]:
    """``broker_transport``, for a broker URL whose scheme has one of inferq's transports."""
    scheme = broker_url.split("://", 1)[0] + "://"
    return {"broker_transport": TRANSPORTS[scheme]} if scheme in TRANSPORTS else {}


def make_celery(settings: Settings, name: str = "inferq") -> Celery:
    """A Celery app configured for inferq, with no tasks registered."""
    app = Celery(name, set_as_current=False)
    app.config_from_object(celery_config(settings))
    return app


class TaskMessages:
    """Builds the exact message ``send_task`` would push, so the store can queue it atomically.

    Celery publishes a task for a direct queue through the anonymous exchange,
    which on kombu's Redis transport is a plain ``LPUSH`` of this JSON envelope
    onto the queue's list. Building it here (with Celery's own ``as_task_v2``)
    lets the create script store a prediction and queue its task in one atomic
    step: a stored prediction is always queued, and it costs one round trip.
    """

    def __init__(self, app: Celery, webhook_queue: str) -> None:
        self.app = app
        self.webhook_queue = webhook_queue

    def send_webhook_delivery(self, prediction_id: str) -> None:
        """Asks a worker to deliver the prediction's pending webhooks now (recovery does it otherwise)."""
        self.app.send_task(DELIVER_WEBHOOKS_TASK, args=[prediction_id], queue=self.webhook_queue)

    def envelope(self, prediction_id: str, model: ModelRef, queue: str) -> str:
        """The task message running ``prediction_id`` on ``queue``, as kombu stores it."""
        args = [prediction_id, model.key]
        message = self.app.amqp.as_task_v2(
            prediction_id,
            PREDICT_TASK,
            args=args,
            kwargs={},
            argsrepr=repr(args),
            kwargsrepr="{}",
            ignore_result=True,
        )
        content_type, content_encoding, body = serialization.dumps(message.body, serializer="json")
        raw = body if isinstance(body, bytes) else body.encode(content_encoding)
        return json.dumps(
            {
                "body": base64.b64encode(raw).decode("ascii"),
                "content-encoding": content_encoding,
                "content-type": content_type,
                "headers": message.headers,
                "properties": {
                    **message.properties,
                    "delivery_mode": 2,
                    "delivery_info": {"exchange": "", "routing_key": queue},
                    "priority": 0,
                    "body_encoding": "base64",
                    "delivery_tag": str(uuid.uuid4()),
                },
            }
        )

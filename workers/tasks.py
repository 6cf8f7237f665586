"""The Celery tasks: thin on purpose, the runner and the deliverer do the work."""

from __future__ import annotations

from collections.abc import Callable

from celery import Celery

from common.queue.broker import DELIVER_WEBHOOKS_TASK, PREDICT_TASK
from workers.runner import Runner
from workers.webhooks import WebhookDeliverer


def register_tasks(
    app: Celery, runner: Callable[[], Runner], deliverer: Callable[[], WebhookDeliverer]
) -> None:
    """Registers the tasks on ``app``; ``runner`` and ``deliverer`` return this process's own."""

    @app.task(name=PREDICT_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def predict(prediction_id: str, model: str) -> None:
        """Runs one prediction: ``model`` is its version as ``owner/name:N``."""
        runner().run(prediction_id, model)

    @app.task(name=DELIVER_WEBHOOKS_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def deliver_webhooks(prediction_id: str) -> None:
        """Delivers a prediction's pending webhooks, in order."""
        deliverer().deliver(prediction_id)

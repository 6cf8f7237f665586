"""The Celery task: thin on purpose, the runner does the work."""

from __future__ import annotations

from collections.abc import Callable

from celery import Celery

from common.broker import PREDICT_TASK
from workers.runner import Runner


def register_tasks(app: Celery, runner: Callable[[], Runner]) -> None:
    """Registers the prediction task on ``app``; ``runner`` returns this process's runner."""

    @app.task(name=PREDICT_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def predict(prediction_id: str, model: str) -> None:
        """Runs one prediction: ``model`` is its version as ``owner/name:N``."""
        runner().run(prediction_id, model)

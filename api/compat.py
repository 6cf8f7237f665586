"""What the OpenAI-compatible endpoints share: model resolution, and a prediction under a deadline.

Each call is a prediction (visible at ``/v1/predictions/{id}``, named by the
``x-prediction-id`` header). The API waits up to ``INFERQ_SYNC_TIMEOUT``; if
the model does not answer in time, or the client hangs up, the prediction is
cancelled.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import redis
from flask import g

from api import predictions
from api.disconnect import disconnect_watch
from api.services import Services
from common.catalog import ModelVersion
from common.errors import (
    DeadlineExceeded,
    PredictionAbandoned,
    PredictionFailed,
    PredictionInterrupted,
    PredictionOutcomeError,
    UnsupportedModel,
)
from common.records import Prediction, Status
from common.store.notifier import Watcher
from common.store.predictions import Idempotency

logger = logging.getLogger(__name__)


def resolve(services: Services, model: str, flag: str) -> ModelVersion:
    """The version ``model`` names, if it may be served through the endpoint of ``flag``.

    Raises:
        RequestValidationError: A malformed reference (422).
        ModelNotFound: An unknown model or version (404).
        UnsupportedModel: The version's ``flag`` compatibility is off (400).
    """
    version = services.catalog.resolve(model)
    if not version.compatibilities.get(flag):
        raise UnsupportedModel(
            f"Model {version.ref.key} cannot be used with this endpoint ({flag} is not enabled)",
            param="model",
        )
    return version


def run(
    services: Services,
    owner: str,
    version: ModelVersion,
    payload: dict[str, Any],
    idempotency: Idempotency | None = None,
) -> Prediction:
    """Creates a prediction (or, by ``idempotency``, finds the same request's) and waits for it to succeed.

    Once it is stored, Redis faults do not end the wait early (see
    ``predictions.wait_despite_faults``): at the deadline it is cancelled (best
    effort) and the answer is the non-retryable ``DeadlineExceeded``, never a
    ``503`` whose retry would run the work twice.

    Raises:
        DeadlineExceeded: No answer within the deadline, or the client left; it was cancelled.
        PredictionFailed, PredictionInterrupted, PredictionAbandoned: It ended otherwise.
    """
    prediction = predictions.build(owner, version, payload)
    g.prediction_id = prediction.id
    with services.notifier.watch(prediction.id) as watcher:
        stored = predictions.submit(services, prediction, version, idempotency)
        if stored.id == prediction.id:
            return _await(services, watcher, stored)
    g.prediction_id = stored.id  # an earlier request's, made with the same key
    with services.notifier.watch(stored.id) as watcher:
        return _await(services, watcher, services.store.get(stored.id) or stored)


def _await(services: Services, watcher: Watcher, prediction: Prediction) -> Prediction:
    """Waits (watched by ``watcher``) for a stored prediction to succeed; see :func:`run`."""
    left = threading.Event()

    def on_disconnect() -> None:
        left.set()
        watcher.event.set()

    with disconnect_watch(on_disconnect):
        done = predictions.wait_despite_faults(
            services, watcher, prediction, services.settings.sync_timeout, stop=left
        )
    if not done.status.is_terminal:
        _cancel(services, done)
        raise deadline_error(services, done.id, left.is_set())
    return require_success(done)


def _cancel(services: Services, prediction: Prediction) -> None:
    """Cancels a prediction its caller gave up on; when Redis fails that too, its queue deadline
    or its run time ends it."""
    try:
        services.store.request_cancel(prediction.id, prediction.owner)
    except redis.RedisError as e:
        logger.warning("could not cancel %s after its deadline: %s", prediction.id, e)


def outcome_error(prediction: Prediction) -> PredictionOutcomeError | None:
    """The error a finished prediction's outcome maps to (None when it succeeded)."""
    if prediction.status is Status.SUCCEEDED:
        return None
    reason = prediction.error.message if prediction.error else prediction.status.value
    message = f"Prediction {prediction.id} {prediction.status.value}: {reason}"
    if prediction.status is Status.CANCELLED:
        return PredictionInterrupted(message, prediction.id)
    if prediction.status is Status.ABANDONED:
        return PredictionAbandoned(message, prediction.id)
    return PredictionFailed(message, prediction.id)


def deadline_error(services: Services, prediction_id: str, client_left: bool = False) -> DeadlineExceeded:
    """The error of a prediction cancelled for not finishing in time (or because its client left)."""
    reason = "the client disconnected" if client_left else "the model did not respond in time"
    deadline = services.settings.sync_timeout
    return DeadlineExceeded(
        f"Prediction {prediction_id} was cancelled: {reason} (deadline {deadline:g} s)", prediction_id
    )


def require_success(prediction: Prediction) -> Prediction:
    """``prediction`` if it succeeded.

    Raises:
        PredictionOutcomeError: The error its outcome maps to.
    """
    error = outcome_error(prediction)
    if error is not None:
        raise error
    return prediction

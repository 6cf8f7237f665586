"""``/v1/predictions``: create, get, list, cancel, and the webhook deliveries."""

from __future__ import annotations

from typing import Any, cast

from flask import Response, current_app, g, request, url_for

from api import idempotency, predictions, streams
from api.blueprint import Blueprint
from api.docs import sse_events
from api.prefer import parse_prefer_wait, parse_validate_input
from api.schemas.predictions import (
    CreateModelPredictionSchema,
    CreatePredictionSchema,
    ListPredictionsQuerySchema,
    PredictionPageSchema,
    PredictionSchema,
    StreamHeadersSchema,
    StreamQuerySchema,
    WebhookDeliveriesSchema,
)
from api.services import services
from api.sse import event_stream
from common.catalog import ModelVersion
from common.errors import NotFound
from common.ids import is_prediction_id
from common.records import ModelRef, Prediction
from common.wire import render

blp = Blueprint("predictions", __name__, url_prefix="/v1", description="Predictions")

EVENTS = sse_events("init", "output", "done", "error")
"""A prediction's stream, as ``GET .../stream`` and a streamed create with ``Prefer: wait`` send it."""

CREATED = "The prediction; with `stream: true` and `Prefer: wait`, its events as `text/event-stream`."
"""What a create answers: both contents of its one 201."""


def _create(version: ModelVersion, body: dict[str, Any]) -> Any:
    found = services()
    validate = parse_validate_input(request.headers.get("Validate-Input"))
    wait = _prefer_wait()
    key = idempotency.parse(request.headers.get(idempotency.HEADER), request.path, body)
    if validate:
        predictions.validate_input(version, body["input"])
    if body["stream"] and wait is not None:
        prediction = predictions.create(found, g.owner, version, body, None, key)
        response = event_stream(streams.created_stream(found, prediction.id, wait))
        response.status_code = 201
        response.headers["Location"] = _location(prediction.id)
        return response
    prediction = predictions.create(found, g.owner, version, body, wait, key)
    return _answer(prediction, 201, {"Location": _location(prediction.id)})


def _answer(prediction: Prediction, status: int, headers: dict[str, str] | None = None) -> Response:
    """The prediction as JSON, rendered by ``common.wire.render`` (what ``@blp.response``'s
    schema documents, without marshmallow's dump: see ``render``)."""
    response = cast(Response, current_app.json.response(render(prediction)))
    response.status_code = status
    response.headers.update(headers or {})
    return response


def _prefer_wait() -> float | None:
    settings = services().settings
    return parse_prefer_wait(request.headers.get("Prefer"), settings.wait_default, settings.wait_max)


def _location(prediction_id: str) -> str:
    return url_for("predictions.get_prediction", prediction_id=prediction_id, _external=True)


@blp.route("/predictions", methods=["POST"])
@blp.arguments(CreatePredictionSchema)
@blp.response(201, PredictionSchema)
@blp.doc(parameters=[idempotency.DOC])
@blp.alt_response(201, schema=EVENTS, content_type="text/event-stream", description=CREATED, success=True)
def create_prediction(body: dict[str, Any]) -> Any:
    """Create a prediction on ``owner/name`` (latest version) or ``owner/name:N``."""
    return _create(services().catalog.resolve(body["model"]), body)


@blp.route("/models/<owner>/<name>/predictions", methods=["POST"])
@blp.arguments(CreateModelPredictionSchema)
@blp.response(201, PredictionSchema)
@blp.doc(parameters=[idempotency.DOC])
@blp.alt_response(201, schema=EVENTS, content_type="text/event-stream", description=CREATED, success=True)
def create_model_prediction(body: dict[str, Any], owner: str, name: str) -> Any:
    """Create a prediction on the latest version of a model."""
    return _create(services().catalog.model(owner, name).latest, body)


@blp.route("/models/<owner>/<name>/versions/<int:number>/predictions", methods=["POST"])
@blp.arguments(CreateModelPredictionSchema)
@blp.response(201, PredictionSchema)
@blp.doc(parameters=[idempotency.DOC])
@blp.alt_response(201, schema=EVENTS, content_type="text/event-stream", description=CREATED, success=True)
def create_version_prediction(body: dict[str, Any], owner: str, name: str, number: int) -> Any:
    """Create a prediction on one version of a model."""
    return _create(services().catalog.version(ModelRef(owner, name, number).key), body)


@blp.route("/predictions/<prediction_id>", methods=["GET"])
@blp.response(200, PredictionSchema)
def get_prediction(prediction_id: str) -> Any:
    """Get one of your predictions."""
    if not is_prediction_id(prediction_id):
        raise NotFound("Prediction not found")
    return _answer(services().store.get_owned(prediction_id, g.owner), 200)


@blp.route("/predictions", methods=["GET"])
@blp.arguments(ListPredictionsQuerySchema, location="query")
@blp.response(200, PredictionPageSchema)
def list_predictions(query: dict[str, Any]) -> Any:
    """List your predictions, newest first, optionally filtered by status."""
    return predictions.page(
        services(), g.owner, query["cursor"] or None, query["page_size"], query["statuses"]
    )


@blp.route("/predictions/<prediction_id>/stream", methods=["GET"])
@blp.arguments(StreamQuerySchema, location="query")
@blp.arguments(StreamHeadersSchema, location="headers")
@blp.response(
    200,
    schema=EVENTS,
    content_type="text/event-stream",
    description=(
        "Server-sent events: init, output, then done or error. A later init means the prediction"
        " started over after its worker was lost: output after it replaces the output before it."
    ),
)
def stream_prediction(query: dict[str, Any], headers: dict[str, Any], prediction_id: str) -> Any:
    """Stream a prediction's events: replayed after ``after_id`` (or ``Last-Event-ID``), then live.

    ``Prefer: wait=n`` sets how long the stream may stay idle before it ends cleanly.
    """
    if not is_prediction_id(prediction_id):
        raise NotFound("Prediction not found")
    found = services()
    idle = _prefer_wait()
    after = query["after_id"] or headers["last_event_id"] or None
    chunks = streams.open_stream(found, g.owner, prediction_id, after, idle or found.settings.wait_default)
    return event_stream(chunks)


@blp.route("/predictions/<prediction_id>/cancel", methods=["POST"])
@blp.response(200, description="Cancellation requested (or done); the body is `null`.")
def cancel_prediction(prediction_id: str) -> Any:
    """Cancel a prediction: idempotent once requested, 409 if it ended otherwise."""
    if not is_prediction_id(prediction_id):
        raise NotFound("Prediction not found")
    predictions.cancel(services(), g.owner, prediction_id)
    return current_app.response_class("null", status=200, mimetype="application/json")


@blp.route("/predictions/<prediction_id>/webhooks", methods=["GET"])
@blp.response(200, WebhookDeliveriesSchema)
def list_webhook_deliveries(prediction_id: str) -> Any:
    """inferq extension: a prediction's webhook delivery attempts, and what still waits.

    The last 50 attempts, oldest first, each with the status it carried, the receiver's HTTP
    status or the error, and how it ended; ``pending`` counts the snapshots not yet delivered.
    """
    if not is_prediction_id(prediction_id):
        raise NotFound("Prediction not found")
    return predictions.webhook_deliveries(services(), g.owner, prediction_id)

"""The request and list shapes of ``/v1/predictions`` (the prediction itself: ``common.wire``)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from api.validation import StrictBoolean
from common.records import Status
from common.wire import PredictionListItemSchema, PredictionSchema

__all__ = [
    "CreateModelPredictionSchema",
    "CreatePredictionSchema",
    "ListPredictionsQuerySchema",
    "PredictionPageSchema",
    "PredictionSchema",
    "StreamHeadersSchema",
    "StreamQuerySchema",
]

EVENT_ID = r"^([0-9]{1,19}-[0-9]{1,19})?\Z"
"""A stream event id as Redis makes them (two integers below 2**64), or nothing."""


class PredictionPageSchema(Schema):
    """Exactly ``{items, next_cursor, previous_cursor}``: the client breaks on any other key."""

    items = fields.List(fields.Nested(PredictionListItemSchema))
    next_cursor = fields.String(allow_none=True)
    previous_cursor = fields.String(allow_none=True)


class WebhookSchema(Schema):
    """Where to POST the prediction on every status change."""

    class Meta:
        unknown = RAISE

    url = fields.Url(required=True, schemes={"http", "https"}, require_tld=False)
    secret = fields.String(load_default=None, allow_none=True)


class CreatePredictionSchema(Schema):
    """The body of ``POST /v1/predictions``; unknown fields are refused."""

    class Meta:
        unknown = RAISE

    model = fields.String(
        required=True, metadata={"description": "owner/name (latest version) or owner/name:N"}
    )
    input = fields.Dict(keys=fields.String(), required=True)
    webhook = fields.Nested(WebhookSchema, allow_none=True, load_default=None)
    stream = StrictBoolean(load_default=False)


class CreateModelPredictionSchema(CreatePredictionSchema):
    """The body of the model- and version-scoped create routes: the path names the model."""

    class Meta:
        unknown = RAISE
        exclude = ("model",)


class ListPredictionsQuerySchema(Schema):
    """Query of ``GET /v1/predictions``; an empty ``cursor=`` means none."""

    cursor = fields.String(load_default=None)
    page_size = fields.Integer(load_default=25, validate=validate.Range(min=5, max=50))
    statuses = fields.List(fields.Enum(Status, by_value=True), load_default=list)


class StreamQuerySchema(Schema):
    """Query of ``GET /v1/predictions/{id}/stream``: resume after this event id."""

    after_id = fields.String(load_default=None, validate=validate.Regexp(EVENT_ID))


class StreamHeadersSchema(Schema):
    """Headers of ``GET /v1/predictions/{id}/stream``: browsers resume with the last event id they saw."""

    last_event_id = fields.String(
        data_key="Last-Event-ID", load_default=None, validate=validate.Regexp(EVENT_ID)
    )

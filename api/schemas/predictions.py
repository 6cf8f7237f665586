"""The wire shapes of predictions, as the ``wriftai`` client reads and writes them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from common.records import Status


def rfc3339(timestamp: float) -> str:
    """``2026-01-01T12:00:00.123Z`` for a unix timestamp."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_duration(seconds: float) -> str:
    """An ISO-8601 duration such as ``PT0.8S``."""
    return "PT" + f"{max(seconds, 0.0):.3f}".rstrip("0").rstrip(".") + "S"


class Timestamp(fields.Field):
    """A unix timestamp, written as an RFC 3339 string."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(metadata={"type": "string", "format": "date-time"}, **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else rfc3339(value)


class Duration(fields.Field):
    """Seconds, written as an ISO-8601 duration (``PT1.25S``), or null."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(metadata={"type": ["string", "null"], "example": "PT0.8S"}, **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else iso_duration(value)


class ModelRefSchema(Schema):
    """The model version a prediction ran on."""

    owner = fields.String()
    name = fields.String()
    version_number = fields.Integer()


class PredictionErrorSchema(Schema):
    """Why a prediction failed: ``external`` (the model or input) or ``internal`` (inferq)."""

    source = fields.String(validate=validate.OneOf(["internal", "external"]))
    message = fields.String()
    detail = fields.Raw(allow_none=True)


class PredictionListItemSchema(Schema):
    """A prediction as lists show it."""

    id = fields.String(metadata={"format": "uuid"})
    created_at = Timestamp()
    updated_at = Timestamp()
    status = fields.Enum(Status, by_value=True)
    setup_time = Duration()
    execution_time = Duration()
    model = fields.Nested(ModelRefSchema)


class PredictionSchema(PredictionListItemSchema):
    """A prediction with its input, output, error, metrics and logs."""

    input = fields.Dict()
    output = fields.Raw(allow_none=True)
    error = fields.Nested(PredictionErrorSchema, allow_none=True)
    metrics = fields.Dict(allow_none=True)
    stream = fields.Boolean()
    logs = fields.String()


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
    stream = fields.Boolean(load_default=False)


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

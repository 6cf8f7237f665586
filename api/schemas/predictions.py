"""The request and list shapes of ``/v1/predictions`` (the prediction itself: ``common.wire``)."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from api.validation import StrictBoolean
from common.records import Priority, Status
from common.wire import PredictionListItemSchema, PredictionSchema, Timestamp

__all__ = [
    "CreateModelPredictionSchema",
    "CreatePredictionSchema",
    "ListPredictionsQuerySchema",
    "PredictionPageSchema",
    "PredictionSchema",
    "StreamHeadersSchema",
    "StreamQuerySchema",
    "WebhookDeliveriesSchema",
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
    priority = fields.String(
        load_default=None,
        validate=validate.OneOf([p.value for p in Priority]),
        metadata={
            "description": "inferq extension: a lower class than the create's own (interactive with "
            "`Prefer: wait` or a stream, else default); `batch` lets everything else go first"
        },
    )

    def load(self, data: Any, **kwargs: Any) -> Any:
        """marshmallow's load, answered directly for the plain body nearly every create sends.

        marshmallow's load costs about 15 µs a create alone and several times that in
        place: with the JSON reader's own saving, this took 0.1 ms off a sync create,
        side by side (``bench/README.md``). Any other
        body, and so every invalid one, still goes through marshmallow, so its errors
        are unchanged; ``tests/unit/test_create_schema.py`` checks both agree.
        """
        loaded = None if kwargs else plain_create_body(data, with_model="model" in self.fields)
        return super().load(data, **kwargs) if loaded is None else loaded


_PLAIN_KEYS = frozenset({"model", "input", "stream", "webhook"})
"""Every key a plain create body may have."""


def plain_create_body(data: Any, *, with_model: bool) -> dict[str, Any] | None:
    """``data`` as the create schemas load it, when it is the plain shape; else ``None``.

    Plain: a JSON object of a string ``model`` (only ``with_model``), an object ``input``,
    and at most ``stream`` as a boolean and ``webhook`` as ``null``.
    """
    if type(data) is not dict or not data.keys() <= _PLAIN_KEYS or data.get("webhook") is not None:
        return None
    payload, stream = data.get("input"), data.get("stream", False)
    if type(payload) is not dict or type(stream) is not bool or not all(type(k) is str for k in payload):
        return None
    loaded = {"input": payload, "webhook": None, "stream": stream, "priority": None}
    if with_model:
        if type(data.get("model")) is not str:
            return None
        loaded["model"] = data["model"]
    elif "model" in data:
        return None
    return loaded


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


class WebhookDeliverySchema(Schema):
    """One attempt at delivering a snapshot of the prediction to its webhook."""

    attempt = fields.Integer(
        metadata={"description": "1 for the first attempt at this snapshot, then 2, ..."}
    )
    status = fields.String(
        validate=validate.OneOf([s.value for s in Status]),
        metadata={"description": "the prediction's status in the snapshot posted"},
    )
    outcome = fields.String(
        validate=validate.OneOf(["delivered", "retrying", "given_up"]),
        metadata={
            "description": "`delivered` (a 2xx), `retrying` (another attempt is scheduled) or "
            "`given_up` (the retry window passed, or the address was refused)"
        },
    )
    attempted_at = Timestamp(attribute="at")
    status_code = fields.Integer(
        allow_none=True, dump_default=None, metadata={"description": "the receiver's HTTP status"}
    )
    error = fields.String(
        allow_none=True,
        dump_default=None,
        metadata={"description": "why there is no status code (connection error, timeout, refused address)"},
    )
    duration_ms = fields.Integer(metadata={"description": "how long the attempt took, in milliseconds"})


class WebhookDeliveriesSchema(Schema):
    """inferq extension: the prediction's last webhook delivery attempts, oldest first, and what
    still waits to be delivered."""

    object = fields.Constant("list", metadata={"type": "string", "enum": ["list"]})
    data = fields.List(fields.Nested(WebhookDeliverySchema), attribute="attempts")
    pending = fields.Integer(metadata={"description": "status snapshots still waiting to be delivered"})
    next_attempt_at = Timestamp(allow_none=True)
    """When the next attempt is due; null with nothing pending."""

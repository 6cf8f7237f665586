"""The wire shape of a prediction, as the ``wriftai`` client reads it.

Shared by the API's responses, the ``init``/``done`` events of prediction
streams, and webhook bodies, so the three can never disagree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, fields, validate

from common.records import Prediction, Status


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


def render(prediction: Prediction) -> dict[str, Any]:
    """A prediction in its full wire shape (what GET returns): :class:`PredictionSchema`'s dump.

    Built by hand. marshmallow's dump of a prediction cost about 0.2 ms of a
    sync create's latency in the API, side by side (``bench/README.md``), and
    every create, read, stream event and webhook renders one.
    ``tests/unit/test_wire.py`` holds the two equal, key order included.
    """
    p, error = prediction, prediction.error
    return {
        "id": p.id,
        "created_at": rfc3339(p.created_at),
        "updated_at": rfc3339(p.updated_at),
        "status": p.status.value,
        "setup_time": None if p.setup_time is None else iso_duration(p.setup_time),
        "execution_time": None if p.execution_time is None else iso_duration(p.execution_time),
        "model": {"owner": p.model.owner, "name": p.model.name, "version_number": p.model.version_number},
        "input": dict(p.input),
        "output": p.output,
        "error": None if error is None else error.to_dict(),
        "metrics": None if p.metrics is None else dict(p.metrics),
        "stream": p.stream,
        "logs": p.logs,
    }

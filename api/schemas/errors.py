"""The one error body every failure answers with."""

from __future__ import annotations

from marshmallow import Schema, fields


class ErrorObjectSchema(Schema):
    """The OpenAI-style error object (what the ``openai`` client reads)."""

    message = fields.String()
    type = fields.String()
    param = fields.String(allow_none=True)
    code = fields.String(allow_none=True)


class ErrorBodySchema(Schema):
    """``detail`` as FastAPI shapes it (a message, or ``[{loc, msg, type}]`` for 422), and ``error``."""

    detail = fields.Raw(
        metadata={"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]}
    )
    error = fields.Nested(ErrorObjectSchema)

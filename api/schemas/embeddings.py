"""``POST /v1/embeddings``: the OpenAI request and response."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate


class EmbeddingsRequestSchema(Schema):
    """The OpenAI embeddings request; ``input``'s four forms are checked by ``api.embeddings``."""

    class Meta:
        unknown = RAISE

    model = fields.String(required=True, validate=validate.Length(min=1))
    input = fields.Raw(
        required=True, metadata={"description": "a string, strings, token ids, or token-id lists"}
    )
    encoding_format = fields.String(
        load_default=None, allow_none=True, validate=validate.OneOf(["float", "base64"])
    )
    dimensions = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(min=1)
    )
    user = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=256))


class EmbeddingSchema(Schema):
    """One vector: floats, or base64 of little-endian float32."""

    object = fields.Constant("embedding")
    index = fields.Integer()
    embedding = fields.Raw()


class EmbeddingUsageSchema(Schema):
    """Tokens as the model's own tokenizer counts them."""

    prompt_tokens = fields.Integer()
    total_tokens = fields.Integer()


class EmbeddingsResponseSchema(Schema):
    """``{"object": "list", "data": [...], "model": ..., "usage": {...}}``."""

    object = fields.Constant("list")
    data = fields.List(fields.Nested(EmbeddingSchema))
    model = fields.String()
    usage = fields.Nested(EmbeddingUsageSchema)

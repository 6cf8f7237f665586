"""``/v1/batches``: OpenAI's Batch API request and response shapes."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from api.batch_lines import ENDPOINTS
from api.batches import WINDOWS
from api.schemas.predictions import WebhookSchema
from common.store.batches import BatchStatus


class ExpiresAfterSchema(Schema):
    """When the output and error files expire: ``seconds`` after their creation."""

    class Meta:
        unknown = RAISE

    anchor = fields.String(required=True, validate=validate.OneOf(["created_at"]))
    seconds = fields.Integer(required=True, strict=True, validate=validate.Range(3600, 2592000))


class CreateBatchSchema(Schema):
    """The body of ``POST /v1/batches``."""

    class Meta:
        unknown = RAISE

    input_file_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    endpoint = fields.String(
        required=True,
        validate=validate.OneOf(ENDPOINTS),
        metadata={"description": "`/v1/predictions` (body `{model, input}`) is an inferq extension"},
    )
    completion_window = fields.String(required=True, validate=validate.OneOf(list(WINDOWS)))
    metadata = fields.Dict(
        keys=fields.String(validate=validate.Length(max=64)),
        values=fields.String(validate=validate.Length(max=512)),
        load_default=None,
        allow_none=True,
    )
    output_expires_after = fields.Nested(ExpiresAfterSchema, load_default=None, allow_none=True)
    webhook = fields.Nested(
        WebhookSchema,
        load_default=None,
        allow_none=True,
        metadata={
            "description": "inferq extension: POSTed the batch object once it ends (completed, failed, "
            "expired or cancelled), signed with `secret` as predictions' webhooks are"
        },
    )

    @validates("metadata")
    def _at_most_16(self, value: dict[str, Any] | None, **_: Any) -> None:
        if value is not None and len(value) > 16:
            raise ValidationError("metadata holds at most 16 pairs")


class ListBatchesQuerySchema(Schema):
    after = fields.String(load_default=None)
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100))


class RequestCountsSchema(Schema):
    total = fields.Integer()
    completed = fields.Integer()
    failed = fields.Integer()


class BatchSchema(Schema):
    """The batch object."""

    id = fields.String()
    object = fields.Constant("batch")
    endpoint = fields.String()
    model = fields.String(allow_none=True)
    errors = fields.Raw(
        allow_none=True, metadata={"description": "`{object: list, data: [{code, message, param, line}]}`"}
    )
    input_file_id = fields.String()
    completion_window = fields.String()
    status = fields.String(validate=validate.OneOf([s.value for s in BatchStatus]))
    output_file_id = fields.String(allow_none=True)
    error_file_id = fields.String(allow_none=True)
    request_counts = fields.Nested(RequestCountsSchema)
    metadata = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True)
    usage = fields.Raw(allow_none=True)
    created_at = fields.Integer()
    in_progress_at = fields.Integer(allow_none=True)
    expires_at = fields.Integer(allow_none=True)
    finalizing_at = fields.Integer(allow_none=True)
    completed_at = fields.Integer(allow_none=True)
    failed_at = fields.Integer(allow_none=True)
    expired_at = fields.Integer(allow_none=True)
    cancelling_at = fields.Integer(allow_none=True)
    cancelled_at = fields.Integer(allow_none=True)


class BatchPageSchema(Schema):
    object = fields.Constant("list")
    data = fields.List(fields.Nested(BatchSchema))
    first_id = fields.String(allow_none=True)
    last_id = fields.String(allow_none=True)
    has_more = fields.Boolean()

"""The shape of ``GET /v1/queues``."""

from __future__ import annotations

from marshmallow import Schema, fields

from common.records import Priority


class LineSchema(Schema):
    """One class of a queue."""

    queued = fields.Integer(metadata={"description": "predictions waiting for a worker"})
    running = fields.Integer(metadata={"description": "predictions running on workers"})
    oldest_queued_age = fields.Float(
        allow_none=True, metadata={"description": "seconds the oldest waiting prediction has waited"}
    )


class CountsSchema(Schema):
    """What waits and runs on a queue, all told and by class."""

    queued = fields.Integer()
    running = fields.Integer()
    classes = fields.Dict(
        keys=fields.String(metadata={"enum": [p.value for p in Priority]}),
        values=fields.Nested(LineSchema),
        metadata={"description": "by priority class: interactive, default, batch"},
    )


class QueueSchema(CountsSchema):
    """One model queue."""

    queue = fields.String()
    models = fields.List(fields.String(), metadata={"description": "the models (owner/name) it serves"})
    worker_processes = fields.Integer(metadata={"description": "pool processes of the live workers on it"})
    yours = fields.Nested(CountsSchema, metadata={"description": "the calling key's own predictions"})


class QueueListSchema(Schema):
    """Every model queue."""

    object = fields.Constant("list")
    data = fields.List(fields.Nested(QueueSchema))

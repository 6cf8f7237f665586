"""``/v1/batches``: OpenAI's Batch API, on the job queue."""

from __future__ import annotations

from typing import Any

from flask import g, request

from api import batches
from api.blueprint import Blueprint
from api.schemas.batches import BatchPageSchema, BatchSchema, CreateBatchSchema, ListBatchesQuerySchema
from api.services import services

blp = Blueprint("batches", __name__, url_prefix="/v1", description="OpenAI-compatible batches")


@blp.route("/batches", methods=["POST"])
@blp.arguments(CreateBatchSchema)
@blp.response(200, BatchSchema)
def create_batch(body: dict[str, Any]) -> Any:
    """Create a batch from an uploaded JSONL file of requests; it runs in the `batch` class."""
    return batches.render(batches.create(services(), g.owner, body, request.host_url))


@blp.route("/batches", methods=["GET"])
@blp.arguments(ListBatchesQuerySchema, location="query")
@blp.response(200, BatchPageSchema)
def list_batches(query: dict[str, Any]) -> Any:
    """List your batches, newest first."""
    return batches.page(services(), g.owner, query["after"], query["limit"])


@blp.route("/batches/<batch_id>", methods=["GET"])
@blp.response(200, BatchSchema)
def get_batch(batch_id: str) -> Any:
    """Get a batch, with its live request counts."""
    return batches.render(batches.get(services(), g.owner, batch_id))


@blp.route("/batches/<batch_id>/cancel", methods=["POST"])
@blp.response(200, BatchSchema)
def cancel_batch(batch_id: str) -> Any:
    """Cancel a batch: running lines stop, and it ends `cancelled` with what finished."""
    return batches.render(batches.cancel(services(), g.owner, batch_id))

"""``/v1/embeddings``: OpenAI-compatible embeddings."""

from __future__ import annotations

from typing import Any

from flask import g, request

from api import embeddings, idempotency
from api.blueprint import Blueprint
from api.schemas.embeddings import EmbeddingsRequestSchema, EmbeddingsResponseSchema
from api.services import services

blp = Blueprint("embeddings", __name__, url_prefix="/v1", description="OpenAI-compatible embeddings")


@blp.route("/embeddings", methods=["POST"])
@blp.arguments(EmbeddingsRequestSchema)
@blp.response(200, EmbeddingsResponseSchema)
@blp.doc(parameters=[idempotency.DOC])
def create_embeddings(body: dict[str, Any]) -> Any:
    """Embed one or more inputs (strings or token ids) with an embedding model."""
    found = services()
    key = idempotency.parse(request.headers.get(idempotency.HEADER), request.path, body)
    return embeddings.embed(found, g.owner, embeddings.prepare(found, body), key)

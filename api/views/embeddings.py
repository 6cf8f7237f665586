"""``/v1/embeddings``: OpenAI-compatible embeddings."""

from __future__ import annotations

from typing import Any

from flask import g

from api import embeddings
from api.blueprint import Blueprint
from api.schemas.embeddings import EmbeddingsRequestSchema, EmbeddingsResponseSchema
from api.services import services

blp = Blueprint("embeddings", __name__, url_prefix="/v1", description="OpenAI-compatible embeddings")


@blp.route("/embeddings", methods=["POST"])
@blp.arguments(EmbeddingsRequestSchema)
@blp.response(200, EmbeddingsResponseSchema)
def create_embeddings(body: dict[str, Any]) -> Any:
    """Embed one or more inputs (strings or token ids) with an embedding model."""
    found = services()
    return embeddings.embed(found, g.owner, embeddings.prepare(found, body))

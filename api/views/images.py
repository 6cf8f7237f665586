"""``/v1/images/generations``: OpenAI-compatible image generation (JSON or a stream of events)."""

from __future__ import annotations

from typing import Any

from flask import g, request

from api import idempotency, images
from api.blueprint import Blueprint
from api.docs import sse_events
from api.schemas.images import ImageGenerationSchema, ImagesResponseSchema
from api.services import services
from api.sse import event_stream

blp = Blueprint("images", __name__, url_prefix="/v1", description="OpenAI-compatible image generation")


@blp.route("/images/generations", methods=["POST"])
@blp.arguments(ImageGenerationSchema)
@blp.response(200, ImagesResponseSchema)
@blp.doc(parameters=[idempotency.DOC])
@blp.alt_response(
    200,
    schema=sse_events("image_generation.partial_image", "image_generation.completed", "error"),
    content_type="text/event-stream",
    description="The images; with `stream: true`, partial images then one `image_generation.completed` "
    "per image, as `text/event-stream`",
    success=True,
)
def generate_images(body: dict[str, Any]) -> Any:
    """Generate images from a prompt; with ``stream: true``, as server-sent events."""
    found = services()
    key = idempotency.parse(request.headers.get(idempotency.HEADER), request.path, body)
    wanted = images.prepare(found, body)
    if wanted.stream:
        prediction_id, events = images.stream(found, g.owner, wanted, key)
        g.prediction_id = prediction_id
        return event_stream(events)
    return images.generate(found, g.owner, wanted, request.host_url, key)

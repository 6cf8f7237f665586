"""``/v1/images/generations`` and ``/v1/images/edits``: OpenAI-compatible image generation and editing
(JSON or multipart in; JSON or a stream of events out)."""

from __future__ import annotations

from typing import Any

from flask import g, request

from api import edits, idempotency, images
from api.blueprint import Blueprint
from api.docs import sse_events
from api.schemas.images import (
    ImageEditFilesSchema,
    ImageEditSchema,
    ImageGenerationSchema,
    ImagesResponseSchema,
)
from api.services import services
from api.sse import event_stream

blp = Blueprint(
    "images", __name__, url_prefix="/v1", description="OpenAI-compatible image generation and editing"
)


@blp.before_request
def _uploads_may_be_larger() -> None:
    """An edit's body may hold up to ``INFERQ_MAX_UPLOAD_BYTES`` of images, not ``INFERQ_MAX_BODY_BYTES``."""
    if request.endpoint == f"{blp.name}.edit_images":
        request.max_content_length = services().settings.max_upload_bytes


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


@blp.route("/images/edits", methods=["POST"])
@blp.arguments(ImageEditSchema, location="form")
@blp.arguments(ImageEditFilesSchema, location="files")
@blp.response(200, ImagesResponseSchema)
@blp.doc(parameters=[idempotency.DOC])
@blp.alt_response(
    200,
    schema=sse_events("image_edit.partial_image", "image_edit.completed", "error"),
    content_type="text/event-stream",
    description="The edited images; with `stream: true`, partial images then one `image_edit.completed` "
    "per image, as `text/event-stream`",
    success=True,
)
def edit_images(form: dict[str, Any], files: dict[str, Any]) -> Any:
    """Edit one image (or several, the first edited), where a mask is transparent or everywhere."""
    found = services()
    with edits.prepare(found, form, [*files["image"], *files["images"]], files.get("mask")) as wanted:
        fingerprint = wanted.fingerprint(form)
        key = idempotency.parse(request.headers.get(idempotency.HEADER), request.path, fingerprint)
        if wanted.request.stream:
            prediction_id, events = edits.stream(found, g.owner, wanted, key)
            g.prediction_id = prediction_id
            return event_stream(events)
        return edits.edit(found, g.owner, wanted, request.host_url, key)

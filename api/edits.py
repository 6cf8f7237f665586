"""Image edits through the OpenAI-compatible endpoint: uploads and parameters in, images (or a stream) out.

An edit is an image prediction whose input also names its uploads. The images
are decoded and checked in full (``api.uploads``), then their pixels are stored
in the uploads storage under fresh names, and only those names go into the
prediction's input: the images never travel in the Redis record or the Celery
message. The uploads are swept
when the prediction's record expires (``INFERQ_RETENTION`` after it ends), or
deleted at once when no prediction was stored for them.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from werkzeug.datastructures import FileStorage

from api import compat, images, uploads
from api.images import ImageRequest
from api.services import Services
from common.catalog import ModelVersion
from common.errors import PredictionOutcomeError, RequestValidationError
from common.store.predictions import Idempotency

FLAG = "openai_images_edits"
"""The compatibility flag a version needs to be edited with."""

KIND = "image_edit"
"""The prefix of the streamed events."""


@dataclass(frozen=True)
class EditRequest:
    """A validated edit: the image request, and the checked uploads it will be stored with."""

    request: ImageRequest
    images: list[uploads.Upload]
    mask: uploads.Upload | None

    def __enter__(self) -> EditRequest:
        return self

    def __exit__(self, *_: object) -> None:
        """Frees the uploads' pixels (stored by then, or refused)."""
        uploads.close_all([*self.images, self.mask])

    def fingerprint(self, form: dict[str, Any]) -> dict[str, Any]:
        """What an ``Idempotency-Key`` fingerprints: the fields and the files' digests."""
        mask = self.mask.digest if self.mask else None
        return {**form, "image": [image.digest for image in self.images], "mask": mask}


def input_image_tokens(width: int, height: int) -> int:
    """Tokens of one input image, by OpenAI's vision rule: fit in 2048x2048, shorter side at most 768,
    then 170 per 512-pixel tile plus 85."""
    fit = min(1.0, 2048 / max(width, height))
    wide, high = width * fit, height * fit
    shrink = min(1.0, 768 / min(wide, high))
    tiles = math.ceil(wide * shrink / 512) * math.ceil(high * shrink / 512)
    return 85 + 170 * tiles


def _auto_size(version: ModelVersion, first: uploads.Upload) -> str | None:
    """``auto`` for an edit: the first image's size when the version supports it, else its default."""
    size = f"{first.width}x{first.height}"
    try:
        images.resolve_size(version, size)
    except RequestValidationError:
        return None
    return size


def prepare(
    services: Services, form: dict[str, Any], files: list[FileStorage], mask: FileStorage | None
) -> EditRequest:
    """Validates the edit against the model version, the uploads and moderation; use the answer in a
    ``with`` block, which frees the uploads' pixels.

    Raises:
        RequestValidationError, ModelNotFound, UnsupportedModel, InvalidImage, ModerationBlocked.
    """
    version = compat.resolve(services, form["model"] or services.settings.default_image_model, FLAG)
    checked, checked_mask = uploads.check_all(files, mask)
    try:
        request = _image_request(services, version, form, checked)
    except BaseException:
        uploads.close_all([*checked, checked_mask])
        raise
    return EditRequest(request, checked, checked_mask)


def _image_request(
    services: Services, version: ModelVersion, form: dict[str, Any], checked: list[uploads.Upload]
) -> ImageRequest:
    size = form["size"]
    if size in (None, "auto"):
        size = _auto_size(version, checked[0])
    tokens = sum(input_image_tokens(image.width, image.height) for image in checked)
    request = images.build(services, version, {**form, "size": size}, kind=KIND, input_image_tokens=tokens)
    request.payload["input_fidelity"] = form["input_fidelity"] or "low"
    return request


def _store(services: Services, edit: EditRequest) -> tuple[ImageRequest, list[str]]:
    """Stores the uploads' pixels under fresh names; the request whose input names them, and the names."""
    prefix = f"upload-{uuid.uuid4().hex}"
    files = {f"{prefix}-{index}.{uploads.EXTENSION}": image for index, image in enumerate(edit.images)}
    mask = None
    if edit.mask is not None:
        mask = f"{prefix}-mask.{uploads.EXTENSION}"
        files[mask] = edit.mask
    names = list(files)
    try:
        for name, upload in files.items():
            services.uploads.put_stream(name, upload.pixels)
    except BaseException:
        _discard(services, names)
        raise
    payload = {**edit.request.payload, "images": names[: len(edit.images)], "mask": mask}
    return replace(edit.request, payload=payload), names


def _discard(services: Services, names: list[str]) -> None:
    for name in names:
        services.uploads.delete(name)


def edit(
    services: Services,
    owner: str,
    edit: EditRequest,
    base_url: str,
    idempotency: Idempotency | None = None,
) -> dict[str, Any]:
    """Stores the uploads, runs the prediction under the deadline and answers with its images.

    The uploads are deleted again when no prediction was stored for them, or when
    ``idempotency`` named an earlier request's prediction (which has its own).
    """
    request, names = _store(services, edit)
    try:
        prediction = compat.run(services, owner, request.version, request.payload, idempotency)
    except PredictionOutcomeError:
        raise  # it was stored, and its uploads go with it
    except BaseException:
        _discard(services, names)
        raise
    if prediction.input.get("images") != request.payload["images"]:
        _discard(services, names)
    return images.respond(services, request, prediction, base_url)


def stream(
    services: Services, owner: str, edit: EditRequest, idempotency: Idempotency | None = None
) -> tuple[str, Iterator[str]]:
    """Stores the uploads and starts a streamed edit; see ``images.stream``."""
    request, names = _store(services, edit)
    try:
        prediction_id, events = images.stream(services, owner, request, idempotency)
    except BaseException:
        _discard(services, names)
        raise
    stored = services.store.get(prediction_id) if idempotency is not None else None
    if stored is not None and stored.input.get("images") != request.payload["images"]:
        _discard(services, names)
    return prediction_id, events

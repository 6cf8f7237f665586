"""``POST /v1/images/generations`` and ``/v1/images/edits``: the OpenAI requests, every parameter
nullable as the SDK sends it (an edit's as multipart form fields and files)."""

from __future__ import annotations

from typing import Any

from flask_smorest.fields import Upload
from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema
from werkzeug.datastructures import FileStorage

from api.validation import StrictBoolean


def _choice(*values: str) -> fields.String:
    return fields.String(load_default=None, allow_none=True, validate=validate.OneOf(values))


def _integer(low: int, high: int) -> fields.Integer:
    return fields.Integer(load_default=None, allow_none=True, strict=True, validate=validate.Range(low, high))


class ImageGenerationSchema(Schema):
    """The OpenAI image generation request (plus ``seed``, an inferq extension)."""

    class Meta:
        unknown = RAISE

    prompt = fields.String(required=True, validate=validate.Length(min=1, max=32000))
    model = fields.String(load_default=None, allow_none=True)
    n = _integer(1, 10)
    quality = _choice("standard", "hd", "low", "medium", "high", "auto")
    response_format = _choice("url", "b64_json")
    output_format = _choice("png", "jpeg", "webp")
    output_compression = _integer(0, 100)
    stream = StrictBoolean(load_default=None, allow_none=True)
    partial_images = _integer(0, 3)
    size = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=32))
    moderation = _choice("low", "auto")
    background = _choice("transparent", "opaque", "auto")
    style = _choice("vivid", "natural")
    user = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=256))
    seed = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(0, 2**63 - 1)
    )

    @validates_schema
    def _transparency_needs_alpha(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("background") == "transparent" and data.get("output_format") == "jpeg":
            raise ValidationError("A transparent background needs output_format png or webp", "background")


def _form_integer(low: int, high: int) -> fields.Integer:
    return fields.Integer(load_default=None, allow_none=True, validate=validate.Range(low, high))


class ImageEditSchema(Schema):
    """The OpenAI image edit request's form fields (plus ``seed``, an inferq extension); the files are
    :class:`ImageEditFilesSchema`'s."""

    class Meta:
        unknown = RAISE

    prompt = fields.String(required=True, validate=validate.Length(min=1, max=32000))
    model = fields.String(load_default=None, allow_none=True)
    n = _form_integer(1, 10)
    quality = _choice("standard", "low", "medium", "high", "auto")
    response_format = _choice("url", "b64_json")
    output_format = _choice("png", "jpeg", "webp")
    output_compression = _form_integer(0, 100)
    input_fidelity = _choice("high", "low")
    stream = fields.Boolean(load_default=None, allow_none=True)
    partial_images = _form_integer(0, 3)
    size = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=32))
    moderation = _choice("low", "auto")
    background = _choice("transparent", "opaque", "auto")
    user = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=256))
    seed = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(0, 2**63 - 1))

    @validates_schema
    def _transparency_needs_alpha(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("background") == "transparent" and data.get("output_format") == "jpeg":
            raise ValidationError("A transparent background needs output_format png or webp", "background")


class ImageFile(Upload):
    """An uploaded file (a form field sent as text is refused)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> FileStorage:
        if not isinstance(value, FileStorage):
            raise ValidationError("Input should be a file")
        return value


class ImageEditFilesSchema(Schema):
    """An edit's files: the image (``image``, or up to 16 as ``image[]``) and an optional mask."""

    class Meta:
        unknown = RAISE

    image: fields.List = fields.List(
        ImageFile(), load_default=list, metadata={"description": "The image to edit."}
    )
    images: fields.List = fields.List(
        ImageFile(),
        data_key="image[]",
        load_default=list,
        metadata={"description": "Up to 16 images: the first is edited, the others guide it."},
    )
    mask = ImageFile(
        metadata={"description": "A PNG with alpha, the size of the first image: transparent where to edit."},
    )


class ImageDataSchema(Schema):
    """One generated image: ``b64_json`` or ``url``, and the prompt as the model used it."""

    b64_json = fields.String()
    url = fields.String()
    revised_prompt = fields.String(allow_none=True)


class TokensDetailsSchema(Schema):
    """Tokens split into text and image tokens."""

    text_tokens = fields.Integer()
    image_tokens = fields.Integer()


class ImageUsageSchema(Schema):
    """Prompt text tokens in; image tokens out (OpenAI's per-size-and-quality table)."""

    input_tokens = fields.Integer()
    input_tokens_details = fields.Nested(TokensDetailsSchema)
    output_tokens = fields.Integer()
    output_tokens_details = fields.Nested(TokensDetailsSchema)
    total_tokens = fields.Integer()


class ImagesResponseSchema(Schema):
    """The OpenAI ``ImagesResponse``, describing the images as actually produced."""

    created = fields.Integer()
    data = fields.List(fields.Nested(ImageDataSchema))
    background = fields.String()
    output_format = fields.String()
    quality = fields.String()
    size = fields.String()
    usage = fields.Nested(ImageUsageSchema)

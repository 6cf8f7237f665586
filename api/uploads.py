"""The images uploaded to ``/v1/images/edits``: checked in full before anything is stored.

Each image is opened by Pillow (PNG, WebP or JPEG only), its decoded size
checked against ``MAX_PIXELS`` from the header alone, and then decoded in
full, so a truncated or corrupt file is refused here and not in the worker. The
original bytes are what get stored: the worker decodes them once more.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError
from werkzeug.datastructures import FileStorage

from common.errors import InvalidImage, RequestValidationError

MAX_IMAGE_BYTES = 50 * 1024 * 1024
"""Largest file accepted per image (OpenAI's limit)."""

MAX_IMAGES = 16
"""Most images one edit takes."""

MAX_PIXELS = 4096 * 4096
"""Most decoded pixels per image: a small file that inflates past this is a decompression bomb."""

FORMATS = {"PNG": "png", "WEBP": "webp", "JPEG": "jpeg"}
"""Pillow's format names of the accepted files, and the extension each is stored under."""


@dataclass(frozen=True)
class Upload:
    """One checked image: its bytes as sent, and what they decode to."""

    data: bytes
    extension: str
    width: int
    height: int
    has_alpha: bool

    @property
    def digest(self) -> str:
        """SHA-256 of the bytes (the idempotency fingerprint's share of the file)."""
        return hashlib.sha256(self.data).hexdigest()


def _read(field: str, file: FileStorage) -> bytes:
    data = file.stream.read(MAX_IMAGE_BYTES + 1)
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidImage(f"Each image must be at most {MAX_IMAGE_BYTES // 2**20} MB", param=field)
    return data


def check(field: str, file: FileStorage) -> Upload:
    """Reads and fully decodes one uploaded image.

    Raises:
        InvalidImage: Not a PNG, WebP or JPEG, truncated or corrupt, over ``MAX_IMAGE_BYTES``
            or ``MAX_PIXELS`` (400, naming ``field``).
    """
    data = _read(field, file)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(FORMATS)) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise InvalidImage(
                        f"The image is {width}x{height}: more than {MAX_PIXELS} pixels decoded", param=field
                    )
                image.load()
                fmt = str(image.format)
                has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    except InvalidImage:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InvalidImage(f"The file is not a PNG, WebP or JPEG image: {e}", param=field) from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise InvalidImage(f"The image could not be decoded (truncated or corrupt): {e}", param=field) from e
    return Upload(data, FORMATS[fmt], width, height, has_alpha)


def check_all(images: list[FileStorage], mask: FileStorage | None) -> tuple[list[Upload], Upload | None]:
    """An edit's images and mask, checked: 1 to ``MAX_IMAGES`` images; the mask a PNG with alpha,
    the size of the first image.

    Raises:
        RequestValidationError: No image, or too many (422, naming ``image``).
        InvalidImage: A file that is not a usable image, or an unusable mask (400).
    """
    if not images:
        raise RequestValidationError.single(["body", "image"], "Field required", "missing")
    if len(images) > MAX_IMAGES:
        raise RequestValidationError.single(
            ["body", "image"], f"At most {MAX_IMAGES} images, not {len(images)}", "too_long"
        )
    checked = [check("image", file) for file in images]
    if mask is None:
        return checked, None
    found = check("mask", mask)
    if found.extension != "png" or not found.has_alpha:
        raise InvalidImage("The mask must be a PNG with an alpha channel", param="mask")
    first = checked[0]
    if (found.width, found.height) != (first.width, first.height):
        raise InvalidImage(
            f"The mask is {found.width}x{found.height}, the image {first.width}x{first.height}: "
            "they must be the same size",
            param="mask",
        )
    return checked, found

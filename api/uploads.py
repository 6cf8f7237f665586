"""The images uploaded to ``/v1/images/edits``: checked in full before anything is stored.

Each image is opened by Pillow (PNG, WebP or JPEG only), its decoded size
checked against ``MAX_PIXELS`` from the header alone, and then decoded in
full, so a truncated or corrupt file is refused here and not in the worker.
What gets stored is what the decode gave: the 8-bit pixels (RGB, or RGBA for
an image with alpha; a mask's alpha alone) as a NumPy array file, which the
worker loads without decoding anything again. The pixels wait in memory, up to
``PIXELS_IN_MEMORY`` an image and on a temporary file beyond, until they are
stored; close them (``Upload.close``) once they are.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO

import numpy as np
from PIL import Image, UnidentifiedImageError
from werkzeug.datastructures import FileStorage

from api import offload
from common.errors import InvalidImage, RequestValidationError

MAX_IMAGE_BYTES = 50 * 1024 * 1024
"""Largest file accepted per image (OpenAI's limit)."""

MAX_IMAGES = 16
"""Most images one edit takes."""

MAX_PIXELS = 4096 * 4096
"""Most decoded pixels per image: a small file that inflates past this is a decompression bomb."""

FORMATS = {"PNG": "png", "WEBP": "webp", "JPEG": "jpeg"}
"""Pillow's format names of the accepted files, and the name each is known by."""

ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
"""Pillow's modes that carry an alpha channel (a palette's ``transparency`` is one too)."""

DECODERS = 2
"""Files decoded at once, each in a thread (Pillow's decoders let go of the GIL): a mask's decode
hides behind its image's when a core is free (a 1024x1024 photo and its mask: checked in 19 ms, not
22). More would hold more decoded images in memory at a time (up to 64 MiB each)."""

PIXELS_IN_MEMORY = 8 * 1024 * 1024
"""Bytes of one image's decoded pixels held in memory before they go to a temporary file: with
``MAX_IMAGES`` images, an edit holds at most about as much as its body may be."""

EXTENSION = "npy"
"""The stored pixels' file extension (a NumPy array file: ``numpy.load`` reads it)."""


@dataclass(frozen=True)
class Upload:
    """One checked image: what it decoded to, and its pixels waiting to be stored.

    Attributes:
        digest: SHA-256 of the bytes as sent (the idempotency fingerprint's share of the file).
        format: ``png``, ``webp`` or ``jpeg``.
        pixels: A NumPy array file of the 8-bit pixels, ``(h, w, 3)`` RGB or ``(h, w, 4)``
            RGBA (a mask's: ``(h, w)``, its alpha), read from the start.
    """

    digest: str
    format: str
    width: int
    height: int
    has_alpha: bool
    pixels: IO[bytes]

    def close(self) -> None:
        """Frees the pixels (their temporary file, if they spilled to one)."""
        self.pixels.close()


def close_all(uploads: Iterable[Upload | None]) -> None:
    """Closes every upload given (``None`` is skipped)."""
    for upload in uploads:
        if upload is not None:
            upload.close()


def _read(field: str, file: FileStorage) -> bytes:
    data = file.stream.read(MAX_IMAGE_BYTES + 1)
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidImage(f"Each image must be at most {MAX_IMAGE_BYTES // 2**20} MB", param=field)
    return data


def _pixels(image: Image.Image, has_alpha: bool, mask: bool) -> IO[bytes]:
    """The decoded image's pixels as a NumPy array file (a mask's alpha alone)."""
    if mask:
        plane = image if image.mode in ("RGBA", "LA") else image.convert("RGBA")
        plane = plane.getchannel("A")
    else:
        mode = "RGBA" if has_alpha else "RGB"
        plane = image if image.mode == mode else image.convert(mode)
    width, height = plane.size
    channels = len(plane.getbands())
    shape = (height, width) if channels == 1 else (height, width, channels)
    spool = tempfile.SpooledTemporaryFile(PIXELS_IN_MEMORY)
    header = {"descr": "|u1", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(spool, header)
    spool.write(plane.tobytes())
    spool.seek(0)
    return spool


@contextlib.contextmanager
def _refused_as_invalid(field: str) -> Iterator[None]:
    """Turns Pillow's refusals of a file into ``InvalidImage`` naming ``field``."""
    try:
        yield
    except InvalidImage:
        raise  # ours already (a ValueError too)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InvalidImage(f"The file is not a PNG, WebP or JPEG image: {e}", param=field) from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise InvalidImage(f"The image could not be decoded (truncated or corrupt): {e}", param=field) from e


def _opened(field: str, file: FileStorage) -> tuple[bytes, Image.Image]:
    """Reads a file and opens it, its header parsed and its decoded size checked, nothing decoded yet.

    Pillow's decompression bomb warning is an error here; ``warnings`` filters are
    the process's, not a thread's, so this runs in the request's own thread.
    """
    data = _read(field, file)
    with _refused_as_invalid(field), warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = Image.open(io.BytesIO(data), formats=list(FORMATS))
    width, height = image.size
    if width * height > MAX_PIXELS:
        image.close()
        raise InvalidImage(
            f"The image is {width}x{height}: more than {MAX_PIXELS} pixels decoded", param=field
        )
    return data, image


def _decoded(field: str, data: bytes, image: Image.Image, mask: bool) -> Upload:
    """Decodes an opened file in full and holds its pixels for storage (safe in any thread)."""
    with _refused_as_invalid(field), image:
        image.load()
        found = FORMATS[str(image.format)]
        has_alpha = image.mode in ALPHA_MODES or "transparency" in image.info
        if mask and (found != "png" or not has_alpha):
            raise InvalidImage("The mask must be a PNG with an alpha channel", param=field)
        pixels = _pixels(image, has_alpha, mask)
    width, height = image.size
    return Upload(hashlib.sha256(data).hexdigest(), found, width, height, has_alpha, pixels)


def check(field: str, file: FileStorage, *, mask: bool = False) -> Upload:
    """Reads and fully decodes one uploaded image (a ``mask`` must also be a PNG with alpha).

    Raises:
        InvalidImage: Not a PNG, WebP or JPEG, truncated or corrupt, over ``MAX_IMAGE_BYTES``
            or ``MAX_PIXELS``, or a mask that is not a PNG with alpha (400, naming ``field``).
    """
    data, image = _opened(field, file)
    return _decoded(field, data, image, mask)


def check_all(images: list[FileStorage], mask: FileStorage | None) -> tuple[list[Upload], Upload | None]:
    """An edit's images and mask, checked: 1 to ``MAX_IMAGES`` images; the mask a PNG with alpha,
    the size of the first image. Each file is opened in turn, then the opened ones are decoded
    ``DECODERS`` at a time, off the gevent loop (``api.offload``). The error is the one a check of
    each file in turn would have met first; nothing is left open.

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
    files = [("image", file) for file in images] + ([("mask", mask)] if mask is not None else [])
    decodes, refused = [], None
    for field, file in files:
        try:
            data, image = _opened(field, file)
        except InvalidImage as e:
            refused = e  # the error unless a file before it fails to decode
            break
        decodes.append(functools.partial(_decoded, field, data, image, field == "mask"))
    outcomes = offload.all_in_threads(decodes, DECODERS)
    checked = [outcome for outcome in outcomes if isinstance(outcome, Upload)]
    try:
        for outcome in [*outcomes, refused]:
            if isinstance(outcome, Exception):
                raise outcome
        if mask is None:
            return checked, None
        found, first = checked[-1], checked[0]
        if (found.width, found.height) != (first.width, first.height):
            raise InvalidImage(
                f"The mask is {found.width}x{found.height}, the image {first.width}x{first.height}: "
                "they must be the same size",
                param="mask",
            )
    except BaseException:
        close_all(checked)
        raise
    return checked[:-1], found

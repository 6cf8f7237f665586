"""The API's checks of ``/v1/images/edits`` uploads, called directly: full decodes, stored pixels."""

from __future__ import annotations

import io
import struct
import warnings
import zlib
from typing import Any

import numpy as np
import pytest
from PIL import Image
from werkzeug.datastructures import FileStorage

from api import uploads
from common.errors import InvalidImage, RequestValidationError
from workers.adapters.edits import load_sources, read_pixels

WIDTH, HEIGHT = 48, 32


def _file(pixels: np.ndarray[Any, Any], fmt: str = "PNG") -> FileStorage:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt)
    return FileStorage(io.BytesIO(buffer.getvalue()))


def _picture(channels: int = 3) -> np.ndarray[Any, Any]:
    return np.random.default_rng(7).integers(0, 256, (HEIGHT, WIDTH, channels), dtype=np.uint8)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _corrupt_zlib_png() -> bytes:
    """A PNG whose chunks all have valid CRCs but whose zlib stream is corrupt (its checksum)."""
    rows = (b"\x00" + bytes(WIDTH * 3)) * HEIGHT
    stream = bytearray(zlib.compress(rows))
    stream[-1] ^= 0xFF  # the Adler-32 no longer matches: only a full inflate sees it
    header = struct.pack(">IIBBBBB", WIDTH, HEIGHT, 8, 2, 0, 0, 0)
    chunks = _chunk(b"IHDR", header) + _chunk(b"IDAT", bytes(stream)) + _chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def _stored(upload: uploads.Upload) -> np.ndarray[Any, Any]:
    data = upload.pixels.read()
    upload.close()
    assert np.array_equal(np.load(io.BytesIO(data)), read_pixels(data))  # a plain NumPy array file
    return read_pixels(data)


@pytest.mark.parametrize(("fmt", "channels"), [("PNG", 3), ("PNG", 4), ("WEBP", 4), ("JPEG", 3)])
def test_the_decoded_pixels_are_what_gets_stored(fmt: str, channels: int) -> None:
    sent = _file(_picture(channels), fmt)
    expected = np.asarray(Image.open(io.BytesIO(sent.stream.getvalue())))  # type: ignore[attr-defined]
    upload = uploads.check("image", sent)
    assert (upload.width, upload.height, upload.has_alpha) == (WIDTH, HEIGHT, channels == 4)
    assert np.array_equal(_stored(upload), expected)


def test_a_palette_or_grey_image_is_stored_as_rgb() -> None:
    grey = _picture(1)[..., 0]
    stored = _stored(uploads.check("image", _file(grey)))
    assert stored.shape == (HEIGHT, WIDTH, 3) and np.array_equal(stored[..., 1], grey)


def test_a_mask_is_stored_as_its_alpha_alone() -> None:
    rgba = _picture(4)
    stored = _stored(uploads.check("mask", _file(rgba), mask=True))
    assert np.array_equal(stored, rgba[..., 3])


@pytest.mark.parametrize(
    "data",
    [
        b"not an image",
        _corrupt_zlib_png(),
        _file(_picture()).stream.getvalue()[:-40],  # type: ignore[attr-defined]
        b"GIF89a" + bytes(40),
    ],
    ids=["not-an-image", "corrupt-zlib-valid-crcs", "truncated", "gif"],
)
def test_bad_files_are_invalid_images(data: bytes) -> None:
    with pytest.raises(InvalidImage) as raised:
        uploads.check("image", FileStorage(io.BytesIO(data)))
    assert raised.value.param == "image"
    Image.open(io.BytesIO(_corrupt_zlib_png())).verify()  # what a header check alone would let through


def test_a_mask_must_be_a_png_with_alpha_of_the_first_images_size() -> None:
    image = _file(_picture())
    refusals = [
        ("The mask must be a PNG with an alpha channel", _file(_picture())),
        ("The mask must be a PNG with an alpha channel", _file(_picture(4), "WEBP")),
        ("The mask is 8x8", _file(np.zeros((8, 8, 4), np.uint8))),
    ]
    for message, mask in refusals:
        image.stream.seek(0)
        with pytest.raises(InvalidImage) as raised:
            uploads.check_all([image], mask)
        assert raised.value.param == "mask" and raised.value.message.startswith(message)


def test_too_many_images_or_none_are_refused() -> None:
    with pytest.raises(RequestValidationError):
        uploads.check_all([], None)
    with pytest.raises(RequestValidationError):
        uploads.check_all([_file(_picture())] * (uploads.MAX_IMAGES + 1), None)


def test_pixels_beyond_the_memory_share_spill_to_a_file_and_read_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(uploads, "PIXELS_IN_MEMORY", 1024)
    picture = _picture()
    upload = uploads.check("image", _file(picture))
    assert upload.pixels._rolled  # type: ignore[attr-defined]
    assert np.array_equal(_stored(upload), picture)


def test_the_worker_edits_stored_pixels_as_it_edits_the_files() -> None:
    rgba = np.full((HEIGHT, WIDTH, 4), 255, np.uint8)
    rgba[8:24, 10:30, 3] = 0
    picture = _picture()
    checked, mask = uploads.check_all([_file(picture)], _file(rgba))
    assert mask is not None
    stored = [upload.pixels.read() for upload in [*checked, mask]]
    uploads.close_all([*checked, mask])
    encoded = [_file(picture).stream.getvalue(), _file(rgba).stream.getvalue()]  # type: ignore[attr-defined]
    from_arrays = load_sources(stored[:1], stored[1], WIDTH, HEIGHT, transparent=False)
    from_files = load_sources(encoded[:1], encoded[1], WIDTH, HEIGHT, transparent=False)
    assert from_arrays.box == from_files.box
    assert np.array_equal(from_arrays.weight, from_files.weight)
    assert np.array_equal(from_arrays.color, from_files.color)


def test_a_refused_file_closes_the_others_and_the_first_refused_in_order_is_the_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[uploads.Upload] = []
    real_decoded = uploads._decoded

    def noted(field: str, data: bytes, image: Image.Image, mask: bool) -> uploads.Upload:
        upload = real_decoded(field, data, image, mask)
        decoded.append(upload)
        return upload

    monkeypatch.setattr(uploads, "_decoded", noted)
    filters = list(warnings.filters)
    truncated = _file(_picture()).stream.getvalue()[:-40]  # type: ignore[attr-defined]
    files = [_file(_picture()), FileStorage(io.BytesIO(truncated)), _file(_picture())]
    with pytest.raises(InvalidImage) as raised:  # the mask is refused on opening, the truncated image later
        uploads.check_all(files, FileStorage(io.BytesIO(b"not a mask")))
    assert raised.value.param == "image" and "truncated" in raised.value.message
    assert decoded and all(upload.pixels.closed for upload in decoded)
    assert warnings.filters == filters  # left as found, though the decodes ran in threads

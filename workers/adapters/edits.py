"""What the image adapters share for edits: the uploaded pixels, the mask's weights, compositing.

The API decoded and checked every upload (format, size, decoded pixels, the
mask's alpha and size) and stored its 8-bit pixels as a NumPy array file
(``api.uploads``); an adapter reads them back through the prediction context by
name (``PredictionContext.read_upload``), with no second decode. An encoded
image (PNG, WebP, JPEG) is read too, and decoded here. Numpy and Pillow only:
the API never imports this module.

An edit has a *weight* per pixel, 1 where the edit goes and 0 where the input
stays: one minus the mask's alpha, feathered inward at the mask's edge (the
weight times a box blur of itself), so a pixel the mask keeps gets weight 0
exactly and comes out byte for byte as it went in. Without a mask every weight is 1.
Only the *box*, the rows and columns that hold a non-zero weight, is worked on
in floats; the rest of the output is the input's pixels, copied.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

from workers.adapters.pixels import Array, Pixels, channels, premultiplied, quantised

Box = tuple[slice, slice]

REFERENCE_SHARE = 0.3
"""How much of the other images (``image[]`` after the first) is mixed into the first where the edit goes."""

FEATHER_FRACTION = 1 / 64
"""The box blur's radius that feathers the mask's edge, as a fraction of the shorter side (1 px at least)."""

ARRAY_MAGIC = b"\x93NUMPY"
"""How a NumPy array file (``.npy``, the API's stored pixels) begins."""


@dataclass(frozen=True)
class EditSources:
    """The inputs of an edit at the output size.

    Attributes:
        pixels: ``(h, w, 3|4)`` the first image's 8-bit RGB or RGBA.
        weight: ``(h, w)`` how much of the edit each pixel takes, 0..1.
        box: The rows and columns that hold every non-zero weight (the rest is the input, as is).
        masked: Whether a mask was given (else ``weight`` is all ones).
        transparent: Whether the output keeps alpha (else the input is flattened onto white).
        box_color: The input's premultiplied colour inside ``box``, the other images mixed in
            where the edit goes (``REFERENCE_SHARE``).
        box_alpha: Its alpha inside ``box``.
    """

    pixels: Pixels
    weight: Array
    box: Box
    masked: bool
    transparent: bool
    box_color: Array
    box_alpha: Array
    _outside: dict[bool, Pixels] = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def _planes(self) -> tuple[Array, Array]:
        if self.box_alpha.shape == self.weight.shape:  # the box is the whole picture
            return self.box_color, self.box_alpha
        color, alpha = premultiplied(self.pixels, self.transparent)
        color[self.box], alpha[self.box] = self.box_color, self.box_alpha
        return color, alpha

    @property
    def color(self) -> Array:
        """``(h, w, 3)`` the input's premultiplied colour in 0..1, the other images mixed in."""
        return self._planes[0]

    @property
    def alpha(self) -> Array:
        """``(h, w)`` its alpha in 0..1 (ones when the output is opaque)."""
        return self._planes[1]

    def straight(self) -> Array:
        """The input as straight (not premultiplied) RGB on white: what a diffusion pipeline starts from."""
        rgb: Array = self.color + (1.0 - self.alpha)[..., None]
        return rgb

    def outside(self, keep_alpha: bool) -> Pixels:
        """The input as an output's 8-bit pixels (RGBA when ``keep_alpha``), computed once each way."""
        if keep_alpha not in self._outside:
            if self.pixels.shape[2] == 4:
                found = quantised(*premultiplied(self.pixels, self.transparent), keep_alpha)
            elif keep_alpha:
                opaque = np.full((*self.pixels.shape[:2], 1), 255, np.uint8)
                found = np.concatenate([self.pixels, opaque], axis=2)
            else:
                found = self.pixels  # 8-bit values survive the round trip through floats unchanged
            self._outside[keep_alpha] = found
        return self._outside[keep_alpha]

    def composite(self, color: Array, alpha: Array, strength: float, keep_alpha: bool) -> Pixels:
        """8-bit pixels of ``color``/``alpha`` (premultiplied, the output's size) laid over the input
        with ``strength`` times the weight; outside the box, the input's own pixels."""
        box = self.box
        weight = self.weight[box] * np.float32(strength)
        keep = 1.0 - weight
        blended = color[box] * channels(weight)
        blended += self.box_color * channels(keep)
        coverage = self.box_alpha * keep + alpha[box] * weight
        output = self.outside(keep_alpha).copy()
        output[box] = quantised(blended, coverage, keep_alpha)
        return output


def read_pixels(data: bytes) -> Pixels:
    """An upload's 8-bit pixels: the array the API stored (read in place, not copied), or an encoded
    image decoded to RGB(A)."""
    if data.startswith(ARRAY_MAGIC):
        header = io.BytesIO(data)
        major, _ = np.lib.format.read_magic(header)
        read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read(header)
        if fortran or dtype != np.uint8:
            raise ValueError(f"stored pixels must be uint8 in C order, not {dtype}")
        pixels: Pixels = np.frombuffer(data, np.uint8, math.prod(shape), header.tell()).reshape(shape)
        return pixels
    with Image.open(io.BytesIO(data)) as opened:
        has_alpha = opened.mode in ("RGBA", "LA", "PA") or "transparency" in opened.info
        return np.asarray(opened.convert("RGBA" if has_alpha else "RGB"))


def _fitted(pixels: Pixels, width: int, height: int, resample: Image.Resampling) -> Pixels:
    """``pixels`` at ``width``x``height`` (resized when they are another size)."""
    if pixels.shape[:2] == (height, width):
        return pixels
    return np.asarray(Image.fromarray(pixels).resize((width, height), resample))


def _mask_alpha(data: bytes, width: int, height: int) -> Pixels:
    """A mask's 8-bit alpha at the output size (the API stores the alpha alone; 255 without one)."""
    pixels = read_pixels(data)
    if pixels.ndim == 3:
        opaque = np.full(pixels.shape[:2], 255, np.uint8)
        pixels = np.ascontiguousarray(pixels[..., 3]) if pixels.shape[2] == 4 else opaque
    return _fitted(pixels, width, height, Image.Resampling.BILINEAR)


def _bounds(inside: npt.NDArray[np.bool_]) -> Box:
    rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
    if not len(rows):
        return slice(0, 0), slice(0, 0)
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def _feathered(alpha: Pixels) -> tuple[Array, Box]:
    """The weight of a mask's alpha, and its box; blurred only around the box, the same as all over.

    The blur reaches ``radius + 1`` pixels (a fractional radius weighs one more),
    so a margin that wide around the box gives its pixels the values a blur of
    the whole mask would.
    """
    height, width = alpha.shape
    weight = np.zeros((height, width), np.float32)
    box = _bounds(alpha < 255)
    if box[0].stop == 0:
        return weight, box
    radius = max(1, round(min(width, height) * FEATHER_FRACTION))
    margin = radius + 1
    rows = slice(max(0, box[0].start - margin), min(height, box[0].stop + margin))
    cols = slice(max(0, box[1].start - margin), min(width, box[1].stop + margin))
    blurred = Image.fromarray(np.ascontiguousarray(alpha[rows, cols])).filter(ImageFilter.BoxBlur(radius))
    inner = (
        slice(box[0].start - rows.start, box[0].stop - rows.start),
        slice(box[1].start - cols.start, box[1].stop - cols.start),
    )
    scale = np.float32(1 / 255)
    hole = 1.0 - alpha[box].astype(np.float32) * scale
    weight[box] = hole * (1.0 - np.asarray(blurred, dtype=np.float32)[inner] * scale)
    return weight, box


def mask_weight(data: bytes, width: int, height: int) -> Array:
    """The edit's weight from a mask (transparent where the edit goes), feathered at its edge."""
    return _feathered(_mask_alpha(data, width, height))[0]


def load_sources(
    images: Sequence[bytes], mask: bytes | None, width: int, height: int, transparent: bool
) -> EditSources:
    """Reads an edit's uploads (the first image is the one edited) at the output size."""
    lanczos = Image.Resampling.LANCZOS
    first = _fitted(read_pixels(images[0]), width, height, lanczos)
    if mask is None:
        weight, box = np.ones((height, width), np.float32), (slice(0, height), slice(0, width))
    else:
        weight, box = _feathered(_mask_alpha(mask, width, height))
    color, alpha = premultiplied(first[box], transparent)
    if len(images) > 1:
        others = [
            premultiplied(_fitted(read_pixels(data), width, height, lanczos)[box], transparent)
            for data in images[1:]
        ]
        mean_color = np.mean([c for c, _ in others], axis=0, dtype=np.float32)
        mean_alpha = np.mean([a for _, a in others], axis=0, dtype=np.float32)
        share = weight[box] * np.float32(REFERENCE_SHARE)
        color = (color * (1.0 - share)[..., None] + mean_color * share[..., None]).astype(np.float32)
        alpha = (alpha * (1.0 - share) + mean_alpha * share).astype(np.float32)
    return EditSources(first, weight, box, mask is not None, transparent, color, alpha)

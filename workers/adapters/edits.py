"""What the image adapters share for edits: the uploaded images decoded, the mask's weights, compositing.

The API checked every upload (format, size, decoded pixels, the mask's alpha and
size) and stored it; an adapter reads it back through the prediction context by
name (``PredictionContext.read_upload``). Numpy and Pillow only: the API never
imports this module.

An edit has a *weight* per pixel, 1 where the edit goes and 0 where the input
stays: one minus the mask's alpha, feathered inward at the mask's edge (the
weight times a box blur of itself), so a pixel the mask keeps gets weight 0
exactly and comes out byte for byte as it went in. Without a mask every weight is 1.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageFilter

Array = npt.NDArray[np.float32]

REFERENCE_SHARE = 0.3
"""How much of the other images (``image[]`` after the first) is mixed into the first where the edit goes."""

FEATHER_FRACTION = 1 / 64
"""The box blur's radius that feathers the mask's edge, as a fraction of the shorter side (1 px at least)."""


@dataclass(frozen=True)
class EditSources:
    """The inputs of an edit at the output size.

    Attributes:
        color: ``(h, w, 3)`` premultiplied colour in 0..1 of the first image, the others mixed in
            where the edit goes (``REFERENCE_SHARE``).
        alpha: ``(h, w)`` its alpha in 0..1 (ones when the output is opaque).
        weight: ``(h, w)`` how much of the edit each pixel takes, 0..1.
        masked: Whether a mask was given (else ``weight`` is all ones).
    """

    color: Array
    alpha: Array
    weight: Array
    masked: bool
    box: tuple[slice, slice]
    """The rows and columns that hold every non-zero weight (the rest is the input, as is)."""

    def straight(self) -> Array:
        """The input as straight (not premultiplied) RGB on white: what a diffusion pipeline starts from."""
        rgb: Array = self.color + (1.0 - self.alpha)[..., None]
        return rgb

    def composite(self, color: Array, alpha: Array, strength: float = 1.0) -> tuple[Array, Array]:
        """``color``/``alpha`` (premultiplied) laid over the input with ``strength`` times the weight."""
        box = self.box
        weight = self.weight[box] * np.float32(strength)
        keep = 1.0 - weight
        out_color, out_alpha = self.color.copy(), self.alpha.copy()
        out_color[box] = self.color[box] * keep[..., None] + color[box] * weight[..., None]
        out_alpha[box] = self.alpha[box] * keep + alpha[box] * weight
        return out_color, out_alpha


def decode(data: bytes, width: int, height: int, transparent: bool) -> tuple[Array, Array]:
    """One uploaded image at ``width``x``height``: premultiplied colour and alpha in 0..1.

    An opaque output flattens the image onto white; an image of another size is resized.
    """
    with Image.open(io.BytesIO(data)) as opened:
        has_alpha = opened.mode in ("RGBA", "LA", "PA") or "transparency" in opened.info
        image = opened.convert("RGBA" if has_alpha else "RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    pixels = np.asarray(image, dtype=np.float32)
    pixels *= np.float32(1 / 255)
    if not has_alpha:
        return pixels, np.ones((height, width), np.float32)
    alpha = np.ascontiguousarray(pixels[..., 3])
    color = pixels[..., :3] * alpha[..., None]
    if not transparent:
        color += (1.0 - alpha)[..., None]
        alpha = np.ones_like(alpha)
    return color, alpha


def mask_weight(data: bytes, width: int, height: int) -> Array:
    """The edit's weight from a mask (transparent where the edit goes), feathered at its edge."""
    with Image.open(io.BytesIO(data)) as mask:
        alpha_image = mask.convert("RGBA").getchannel("A")
    if alpha_image.size != (width, height):
        alpha_image = alpha_image.resize((width, height), Image.Resampling.BILINEAR)
    radius = max(1, round(min(width, height) * FEATHER_FRACTION))
    blurred = alpha_image.filter(ImageFilter.BoxBlur(radius))
    scale = np.float32(1 / 255)
    hole = 1.0 - np.asarray(alpha_image, dtype=np.float32) * scale
    weight: Array = hole * (1.0 - np.asarray(blurred, dtype=np.float32) * scale)
    return weight


def load_sources(
    images: Sequence[bytes], mask: bytes | None, width: int, height: int, transparent: bool
) -> EditSources:
    """Decodes an edit's uploads (the first image is the one edited) at the output size."""
    color, alpha = decode(images[0], width, height, transparent)
    weight = mask_weight(mask, width, height) if mask is not None else np.ones((height, width), np.float32)
    if len(images) > 1:
        others = [decode(data, width, height, transparent) for data in images[1:]]
        mean_color = np.mean([c for c, _ in others], axis=0, dtype=np.float32)
        mean_alpha = np.mean([a for _, a in others], axis=0, dtype=np.float32)
        share = weight * np.float32(REFERENCE_SHARE)
        color = (color * (1.0 - share)[..., None] + mean_color * share[..., None]).astype(np.float32)
        alpha = (alpha * (1.0 - share) + mean_alpha * share).astype(np.float32)
    return EditSources(color, alpha, weight, mask is not None, _bounds(weight))


def _bounds(weight: Array) -> tuple[slice, slice]:
    rows, cols = np.flatnonzero(weight.any(axis=1)), np.flatnonzero(weight.any(axis=0))
    if not len(rows):
        return slice(0, 0), slice(0, 0)
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)

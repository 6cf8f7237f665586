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
from PIL import Image

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

    def straight(self) -> Array:
        """The input as straight (not premultiplied) RGB on white: what a diffusion pipeline starts from."""
        rgb: Array = self.color + (1.0 - self.alpha)[..., None]
        return rgb

    def composite(self, color: Array, alpha: Array, strength: float = 1.0) -> tuple[Array, Array]:
        """``color``/``alpha`` (premultiplied) laid over the input with ``strength`` times the weight."""
        weight = self.weight * np.float32(strength)
        keep = 1.0 - weight
        out_color: Array = self.color * keep[..., None] + color * weight[..., None]
        out_alpha: Array = self.alpha * keep + alpha * weight
        return out_color, out_alpha


def decode(data: bytes, width: int, height: int, transparent: bool) -> tuple[Array, Array]:
    """One uploaded image at ``width``x``height``: premultiplied colour and alpha in 0..1.

    An opaque output flattens the image onto white; an image of another size is resized.
    """
    with Image.open(io.BytesIO(data)) as image:
        image = image.convert("RGBA")
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS)
    pixels = np.asarray(image, dtype=np.float32) / np.float32(255.0)
    alpha = pixels[..., 3]
    color = pixels[..., :3] * alpha[..., None]
    if not transparent:
        color = color + (1.0 - alpha)[..., None]
        alpha = np.ones_like(alpha)
    return color.astype(np.float32), alpha.astype(np.float32)


def _box_blur(plane: Array, radius: int) -> Array:
    """A separable box blur with edge padding, by cumulative sums."""
    size = 2 * radius + 1
    for axis in (0, 1):
        padded = np.pad(plane, [(radius + 1, radius) if a == axis else (0, 0) for a in (0, 1)], mode="edge")
        sums = np.cumsum(padded, axis=axis, dtype=np.float64)
        upper = np.take(sums, range(size, sums.shape[axis]), axis=axis)
        lower = np.take(sums, range(0, sums.shape[axis] - size), axis=axis)
        plane = ((upper - lower) / size).astype(np.float32)
    return plane


def mask_weight(data: bytes, width: int, height: int) -> Array:
    """The edit's weight from a mask (transparent where the edit goes), feathered at its edge."""
    with Image.open(io.BytesIO(data)) as mask:
        alpha_image = mask.convert("RGBA").getchannel("A")
    if alpha_image.size != (width, height):
        alpha_image = alpha_image.resize((width, height), Image.Resampling.BILINEAR)
    hole: Array = 1.0 - np.asarray(alpha_image, dtype=np.float32) / np.float32(255.0)
    radius = max(1, round(min(width, height) * FEATHER_FRACTION))
    weight: Array = hole * np.clip(_box_blur(hole, radius), 0.0, 1.0)
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
        color = color * (1.0 - share)[..., None] + mean_color * share[..., None]
        alpha = alpha * (1.0 - share) + mean_alpha * share
    return EditSources(color.astype(np.float32), alpha.astype(np.float32), weight, mask is not None)

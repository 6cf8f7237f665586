"""The canvas ``inferq/sketch`` paints on, and the image files it becomes.

The canvas holds premultiplied colour and alpha as float32 planes, so opaque
and transparent images composite the same way: painting is one "over"
operation per shape, restricted to the shape's bounding box.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from workers.adapters.pixels import Array, Pixels, quantised

Box = tuple[slice, slice, Array, Array]


def luma(colour: Sequence[float]) -> float:
    """Rec. 601 luminance of an RGB colour in 0..1."""
    return 0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2]


class Canvas:
    """Premultiplied RGB and alpha planes, painted front over back.

    Attributes:
        color: ``(height, width, 3)`` premultiplied colour in 0..1.
        alpha: ``(height, width)`` coverage in 0..1 (all ones when opaque).
    """

    def __init__(self, width: int, height: int, transparent: bool) -> None:
        self.width, self.height, self.transparent = width, height, transparent
        self.color: Array = np.zeros((height, width, 3), np.float32)
        self.alpha: Array = np.full((height, width), 0.0 if transparent else 1.0, np.float32)
        self.ys: Array = np.arange(height, dtype=np.float32) + 0.5
        self.xs: Array = np.arange(width, dtype=np.float32) + 0.5

    def box(self, cx: float, cy: float, rx: float, ry: float) -> Box | None:
        """The pixels within ``rx``/``ry`` of a centre, as slices and coordinate grids; None if off-canvas."""
        x0, x1 = max(0, int(cx - rx) - 1), min(self.width, int(cx + rx) + 2)
        y0, y1 = max(0, int(cy - ry) - 1), min(self.height, int(cy + ry) + 2)
        if x0 >= x1 or y0 >= y1:
            return None
        return slice(y0, y1), slice(x0, x1), self.ys[y0:y1, None], self.xs[None, x0:x1]

    def paint(self, rows: slice, cols: slice, coverage: Any, colour: Any, opacity: float = 1.0) -> None:
        """Composites ``colour`` over the region with per-pixel ``coverage`` (0..1)."""
        cover = np.clip(coverage, 0.0, 1.0).astype(np.float32) * np.float32(opacity)
        color, alpha = self.color[rows, cols], self.alpha[rows, cols]
        color *= (1.0 - cover)[..., None]
        color += cover[..., None] * np.asarray(colour, np.float32)
        alpha *= 1.0 - cover
        alpha += cover


def keeps_alpha(transparent: bool, output_format: str) -> bool:
    """Whether a file of ``output_format`` keeps a transparent picture's alpha (JPEG has none)."""
    return transparent and output_format != "jpeg"


def encode(canvas: Canvas, output_format: str, compression: int) -> bytes:
    """The canvas as a PNG, JPEG or WebP file; ``compression`` 100 is the best quality, 0 the smallest.

    A transparent canvas is flattened onto white for JPEG.
    """
    keep_alpha = keeps_alpha(canvas.transparent, output_format)
    return save(quantised(canvas.color, canvas.alpha, keep_alpha), output_format, compression)


def save(pixels: Pixels, output_format: str, compression: int) -> bytes:
    """8-bit RGB or RGBA pixels as a PNG, JPEG or WebP file (see ``encode``)."""
    image = Image.fromarray(pixels)  # RGBA with four channels, else RGB
    buffer = io.BytesIO()
    if output_format == "png":
        image.save(buffer, "PNG", compress_level=png_level(compression))
    elif output_format == "jpeg":
        image.save(buffer, "JPEG", quality=compression)
    else:
        image.save(buffer, "WEBP", quality=compression, method=2)
    return buffer.getvalue()


def png_level(compression: int) -> int:
    """zlib level for a PNG: 100 (the default) is fast level 1; lower values squeeze harder, 0 is level 9."""
    return 9 - round(compression * 8 / 100)

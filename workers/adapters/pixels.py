"""8-bit pixels and the premultiplied float planes the image adapters paint and blend in, both ways.

A picture is painted and composited as premultiplied colour ``(h, w, 3)`` and
alpha ``(h, w)``, float32 in 0..1, so opaque and transparent pictures blend the
same way; uploads come in and files go out as 8-bit RGB or RGBA. The two
conversions are exact inverses on opaque pixels: an 8-bit value goes to a float
and back unchanged. Numpy only.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]
Pixels = npt.NDArray[np.uint8]


def premultiplied(pixels: Pixels, transparent: bool) -> tuple[Array, Array]:
    """8-bit RGB or RGBA ``(h, w, 3|4)`` as premultiplied colour and alpha.

    Unless ``transparent``, a picture with alpha is flattened onto white (its alpha all ones).
    """
    planes = pixels.astype(np.float32)
    planes *= np.float32(1 / 255)
    if pixels.shape[2] == 3:
        return planes, np.ones(pixels.shape[:2], np.float32)
    alpha = np.ascontiguousarray(planes[..., 3])
    color = planes[..., :3] * alpha[..., None]
    if not transparent:
        color += (1.0 - alpha)[..., None]
        alpha = np.ones_like(alpha)
    return color, alpha


def channels(plane: Array) -> Array:
    """An ``(h, w)`` plane repeated as ``(h, w, 3)``: numpy broadcasts a trailing axis of 3 several
    times slower than it runs arrays of one shape."""
    repeated: Array = np.stack([plane, plane, plane], axis=2)
    return repeated


def quantised(color: Array, alpha: Array, keep_alpha: bool) -> Pixels:
    """Premultiplied planes as 8-bit pixels: straight RGBA when ``keep_alpha``, else RGB on white."""
    if keep_alpha:
        straight = color / channels(np.maximum(alpha, 1e-6))
        planes = np.concatenate([straight, alpha[..., None]], axis=2)
    else:
        planes = color + channels(1.0 - alpha)
    planes *= 255.0
    planes += 0.5
    np.clip(planes, 0.0, 255.0, out=planes)
    return planes.astype(np.uint8)

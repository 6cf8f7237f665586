"""Decoding the base64 images the image adapters return."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from PIL import Image


def decode(b64: str) -> Image.Image:
    """The image, loaded."""
    image = Image.open(io.BytesIO(base64.b64decode(b64)))
    image.load()
    return image


def pixels(b64: str) -> np.ndarray[Any, Any]:
    """Its RGBA pixels as floats."""
    return np.asarray(decode(b64).convert("RGBA"), dtype=np.float64)

"""What the ``diffusers`` adapter does with pixels: decoding latents, keying out a background, encoding files.

Imported only from the adapter's ``setup()`` and ``predict()`` (it imports
torch), never by the API.

A transparent background is derived by a colour key, since Stable Diffusion
models paint no alpha channel: the background colour is the median of the
image's border pixels, and a pixel's alpha rises from 0 to 1 as its colour
moves from ``KEY_NEAR`` to ``KEY_FAR`` away from it (Euclidean RGB distance,
scaled to 0..1). The background's colour is then taken back out of
semi-transparent pixels, so edges carry no halo. It works best on a subject
over a plain background, which the adapter asks the model for (its
``transparent_suffix`` option); background-coloured parts of the subject
become transparent too.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from workers.adapters.sketch.canvas import Canvas, encode

Pixels = npt.NDArray[np.float32]

KEY_NEAR = 0.06
"""Colour distance from the background (0..1) up to which a pixel is fully transparent."""

KEY_FAR = 0.2
"""Colour distance from the background (0..1) from which a pixel is fully opaque."""


def decode_latents(pipe: Any, latents: torch.Tensor) -> Pixels:
    """Decodes a batch of 4-channel latents with the pipeline's VAE into ``(n, h, w, 3)`` pixels in 0..1.

    Unscales the latents as the Stable Diffusion (1.x, 2.x) and SDXL pipelines do
    before their own final decode: by the VAE's ``scaling_factor``, or its
    ``latents_mean``/``latents_std`` when the config has them, with a float16
    VAE that needs it (``force_upcast``) run in float32 for the decode.
    """
    vae = pipe.vae
    config = vae.config
    upcast = vae.dtype == torch.float16 and bool(getattr(config, "force_upcast", False))
    if upcast:
        vae.to(dtype=torch.float32)
    try:
        latents = latents.to(device=vae.device, dtype=vae.dtype)
        mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
        if mean is not None and std is not None:
            shape = (1, latents.shape[1], 1, 1)
            mean_t = torch.tensor(mean).view(shape).to(latents.device, latents.dtype)
            std_t = torch.tensor(std).view(shape).to(latents.device, latents.dtype)
            latents = latents * std_t / config.scaling_factor + mean_t
        else:
            latents = latents / config.scaling_factor
        with torch.no_grad():
            decoded = vae.decode(latents, return_dict=False)[0]
    finally:
        if upcast:
            vae.to(dtype=torch.float16)
    pixels: Pixels = pipe.image_processor.postprocess(decoded, output_type="np")
    return pixels.astype(np.float32)


def keyed_alpha(rgb: Pixels) -> tuple[Pixels, Pixels]:
    """Premultiplied colour and alpha of one ``(h, w, 3)`` image, its border colour keyed out."""
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    background = np.median(border, axis=0).astype(np.float32)
    distance = np.linalg.norm(rgb - background, axis=2) / np.sqrt(3.0)
    alpha = np.clip((distance - KEY_NEAR) / (KEY_FAR - KEY_NEAR), 0.0, 1.0).astype(np.float32)
    premultiplied = np.clip(rgb - (1.0 - alpha)[..., None] * background, 0.0, alpha[..., None])
    return premultiplied.astype(np.float32), alpha


def encode_image(rgb: Pixels, background: str, output_format: str, compression: int) -> str:
    """One ``(h, w, 3)`` image as a base64 PNG, JPEG or WebP, as ``inferq/sketch`` encodes its canvas."""
    height, width = rgb.shape[:2]
    canvas = Canvas(width, height, transparent=background == "transparent")
    if canvas.transparent:
        canvas.color, canvas.alpha = keyed_alpha(rgb)
    else:
        canvas.color = np.ascontiguousarray(rgb, dtype=np.float32)
    return base64.b64encode(encode(canvas, output_format, compression)).decode("ascii")

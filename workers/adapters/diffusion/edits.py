"""The ``diffusers`` adapter's edits: inpainting with a mask, image-to-image without one.

The edit pipelines are built with ``from_pipe`` from the loaded text-to-image
pipeline: they hold the very same modules (no second copy of the weights), and
run with the same seeds, step callback (partial images, cancellation) and
quality→steps mapping. ``input_fidelity`` is the strength (``STRENGTH``): how
much noise the input gets, so how much of it is repainted; the steps asked for
are divided by it so that the quality's number of steps actually runs.

After inpainting, the pixels the mask keeps are put back exactly (the VAE's
round trip would blur them), blended at the mask's edge as for ``inferq/sketch``.
Imported from ``predict()`` only (it imports torch and diffusers).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from workers.adapters.edits import Array, EditSources
from workers.adapters.sketch.adapter import SketchRequest

STRENGTH = {"low": 0.85, "high": 0.5}
"""The img2img and inpainting strength by ``input_fidelity``: high fidelity repaints less."""


def edit_pipeline(cache: dict[str, Any], pipe: Any, mode: str) -> Any:
    """The inpainting or image-to-image pipeline sharing ``pipe``'s components, built once."""
    if mode not in cache:
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

        auto = AutoPipelineForInpainting if mode == "inpainting" else AutoPipelineForImage2Image
        built = auto.from_pipe(pipe)
        built.set_progress_bar_config(disable=True)
        cache[mode] = built
    return cache[mode]


def _picture(rgb: Array) -> Image.Image:
    return Image.fromarray(np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8))


class EditRun:
    """One edit prediction: which pipeline, its extra arguments, and the finishing composite."""

    def __init__(
        self, cache: dict[str, Any], pipe: Any, request: SketchRequest, sources: EditSources
    ) -> None:
        self.sources = sources
        self.mode = "inpainting" if sources.masked else "image-to-image"
        self.strength = STRENGTH[request.input_fidelity]
        self.pipeline = edit_pipeline(cache, pipe, self.mode)

    def arguments(self, generation: dict[str, Any]) -> dict[str, Any]:
        """The text-to-image call's arguments, turned into this edit's."""
        arguments = dict(generation)
        steps = int(arguments["num_inference_steps"])
        arguments["num_inference_steps"] = max(steps, math.ceil(steps / self.strength))
        arguments["strength"] = self.strength
        arguments["image"] = _picture(self.sources.straight())
        if self.mode == "inpainting":
            arguments["mask_image"] = Image.fromarray(
                np.clip(self.sources.weight * 255.0 + 0.5, 0, 255).astype(np.uint8), "L"
            )
        else:  # image-to-image takes its size from the image
            arguments.pop("height")
            arguments.pop("width")
        return arguments

    def finish(self, rgb: Array) -> Array:
        """One result image: the kept pixels put back after inpainting (as it is after image-to-image)."""
        if not self.sources.masked:
            return rgb
        weight = self.sources.weight[..., None]
        edited: Array = self.sources.straight() * (1.0 - weight) + rgb.astype(np.float32) * weight
        return edited

"""``inferq/sketch``: the built-in image model, a fast procedural renderer that needs no weights.

The prompt's words choose the palette and the motifs (see ``scene``);
the seed, given or derived from the prompt, places them. Each image is
rendered in steps (4, 8 or 16 by quality) so that streamed partial images are
real earlier states of the same render, and a cancel stops it within a step.

An edit (``images`` given, from ``/v1/images/edits``) renders the same scene and
lays it over the first image where the mask is transparent (everywhere without
one), feathered at the mask's edge; ``input_fidelity: high`` lets more of the
input show through (``FIDELITY_STRENGTH``). Outside the mask the pixels are the
input's, unchanged (see ``workers.adapters.edits``).
numpy and Pillow are imported on first use: the API imports this class only
to read its schemas.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from workers.adapters.base import Adapter
from workers.adapters.sketch.scene import STEPS, ScenePlan, digest, plan_scene
from workers.context import PredictionContext

if TYPE_CHECKING:
    from workers.adapters.edits import EditSources
    from workers.adapters.sketch.canvas import Canvas

FORMATS = ("png", "jpeg", "webp")

_SIDE = {"type": "integer", "minimum": 64, "maximum": 2048, "multipleOf": 8}

FIDELITY_STRENGTH = {"low": 0.9, "high": 0.55}
"""How opaque the scene is over the input where the edit goes, by ``input_fidelity``."""

EDIT_PROPERTIES: dict[str, Any] = {
    "images": {
        "type": "array",
        "items": {"type": "string", "minLength": 1},
        "minItems": 1,
        "maxItems": 16,
        "description": "An edit: the stored uploads (the API names them); the first one is edited.",
    },
    "mask": {
        "type": ["string", "null"],
        "default": None,
        "description": "The stored mask upload: transparent where the edit goes. Default: everywhere.",
    },
    "input_fidelity": {"enum": ["high", "low"], "default": "low", "description": "high keeps more input."},
}
"""The input of an edit, beside a generation's (shared by the image adapters)."""


@dataclass(frozen=True)
class SketchRequest:
    """A validated input with every default filled in."""

    prompt: str
    n: int
    width: int
    height: int
    quality: str
    background: str
    output_format: str
    output_compression: int
    partial_images: int
    seed: int
    style: str
    images: tuple[str, ...] = ()
    mask: str | None = None
    input_fidelity: str = "low"

    @classmethod
    def from_input(cls, input: dict[str, Any]) -> SketchRequest:
        """Reads ``input`` (already checked against ``SketchAdapter.input_schema``)."""
        prompt = str(input["prompt"])
        seed = input.get("seed")
        return cls(
            prompt=prompt,
            n=int(input.get("n", 1)),
            width=int(input["width"]),
            height=int(input["height"]),
            quality=str(input.get("quality", "medium")),
            background=str(input.get("background", "opaque")),
            output_format=str(input.get("output_format", "png")),
            output_compression=int(input.get("output_compression", 100)),
            partial_images=int(input.get("partial_images", 0)),
            seed=digest(prompt) & 0x7FFFFFFF if seed is None else int(seed),
            style=str(input.get("style", "vivid")),
            images=tuple(input.get("images") or ()),
            mask=input.get("mask"),
            input_fidelity=str(input.get("input_fidelity", "low")),
        )

    def sources(self, ctx: PredictionContext) -> EditSources | None:
        """An edit's uploads, read and decoded at the output size (None for a generation)."""
        if not self.images:
            return None
        from workers.adapters.edits import load_sources

        images = [ctx.read_upload(name) for name in self.images]
        mask = ctx.read_upload(self.mask) if self.mask else None
        return load_sources(images, mask, self.width, self.height, self.background == "transparent")

    def output(self, images: list[str], revised_prompt: str) -> dict[str, Any]:
        """The adapter output the images endpoint renders: ``images`` (base64) and how they were made."""
        return {
            "images": [{"b64_json": image, "revised_prompt": revised_prompt} for image in images],
            "width": self.width,
            "height": self.height,
            "quality": self.quality,
            "background": self.background,
            "output_format": self.output_format,
            "seed": self.seed,
        }


def partial_points(steps: int, partials: int) -> dict[int, int]:
    """Which completed step (1-based) each partial image is taken after, evenly spaced before the last."""
    return {round((j + 1) * steps / (partials + 1)): j for j in range(partials)}


class SketchAdapter(Adapter):
    """Draws ``n`` images for a prompt; streams ``partial_images`` intermediate renders of each."""

    input_schema: ClassVar[dict[str, Any]] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "minLength": 1, "description": "What to draw."},
            "n": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
            "width": {**_SIDE, "description": "Pixels; a multiple of 8."},
            "height": {**_SIDE, "description": "Pixels; a multiple of 8."},
            "quality": {"enum": list(STEPS), "default": "medium", "description": "4, 8 or 16 render steps."},
            "background": {"enum": ["transparent", "opaque"], "default": "opaque"},
            "output_format": {"enum": list(FORMATS), "default": "png"},
            "output_compression": {
                "type": "integer",
                "minimum": 0,
                "maximum": 100,
                "default": 100,
                "description": "100: best quality; lower: smaller files (JPEG/WebP quality, PNG zlib level).",
            },
            "partial_images": {"type": "integer", "minimum": 0, "maximum": 3, "default": 0},
            "seed": {"type": "integer", "description": "Default: derived from the prompt."},
            "style": {"enum": ["vivid", "natural"], "default": "vivid"},
            **EDIT_PROPERTIES,
        },
        "required": ["prompt", "width", "height"],
        "additionalProperties": False,
    }
    output_schema: ClassVar[dict[str, Any]] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "images": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "b64_json": {"type": "string", "contentEncoding": "base64"},
                        "revised_prompt": {"type": ["string", "null"]},
                    },
                    "required": ["b64_json", "revised_prompt"],
                    "additionalProperties": False,
                },
            },
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "quality": {"enum": list(STEPS)},
            "background": {"enum": ["transparent", "opaque"]},
            "output_format": {"enum": list(FORMATS)},
            "seed": {"type": "integer"},
        },
        "required": ["images", "width", "height", "quality", "background", "output_format", "seed"],
        "additionalProperties": False,
    }
    compatibilities: ClassVar[dict[str, bool]] = {
        "openai_images_generations": True,
        "openai_images_edits": True,
    }

    def setup(self) -> None:
        """Imports numpy and Pillow now, so the first prediction does not pay for it."""
        from workers.adapters.sketch import render  # noqa: F401

    def predict(self, input: dict[str, Any], ctx: PredictionContext) -> Any:
        """Renders the images step by step, emitting partial images and stopping on cancel."""
        request = SketchRequest.from_input(input)
        plan = plan_scene(request.prompt, request.quality, request.style)
        ctx.metrics.update({"image_count": request.n, "steps": plan.steps, "seed": request.seed})
        verb = f"editing {len(request.images)} image(s) into" if request.images else "drawing"
        ctx.log(
            f"{verb} {request.n} image(s) of {request.width}x{request.height}, "
            f"{request.quality} quality ({plan.steps} steps), seed {request.seed}"
        )
        sources = request.sources(ctx)
        images = [self._render(request, plan, index, ctx, sources) for index in range(request.n)]
        return request.output(images, request.prompt)

    def _render(
        self,
        request: SketchRequest,
        plan: ScenePlan,
        index: int,
        ctx: PredictionContext,
        sources: EditSources | None = None,
    ) -> str:
        from workers.adapters.sketch.canvas import Canvas
        from workers.adapters.sketch.render import render_steps

        points = partial_points(plan.steps, request.partial_images)
        canvas = Canvas(request.width, request.height, transparent=request.background == "transparent")
        ctx.raise_if_cancelled()
        for step in render_steps(plan, canvas, seed=request.seed, index=index):
            if ctx.cancelled.is_set():
                ctx.raise_if_cancelled()
            if step in points:
                partial = self._encoded(canvas, request, sources)
                ctx.emit(
                    {
                        "type": "partial_image",
                        "image_index": index,
                        "partial_image_index": points[step],
                        "b64_json": partial,
                    }
                )
        return self._encoded(canvas, request, sources)

    @staticmethod
    def _encoded(canvas: Canvas, request: SketchRequest, sources: EditSources | None) -> str:
        """The render as a file, laid over an edit's input first (base64)."""
        from workers.adapters.pixels import quantised
        from workers.adapters.sketch.canvas import keeps_alpha, save

        keep_alpha = keeps_alpha(canvas.transparent, request.output_format)
        if sources is None:
            pixels = quantised(canvas.color, canvas.alpha, keep_alpha)
        else:
            strength = FIDELITY_STRENGTH[request.input_fidelity]
            pixels = sources.composite(canvas.color, canvas.alpha, strength, keep_alpha)
        data = save(pixels, request.output_format, request.output_compression)
        return base64.b64encode(data).decode("ascii")

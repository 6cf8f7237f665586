"""``diffusers``: real text-to-image models, served from a local pipeline directory with diffusers.

Stable Diffusion 1.x/2.x, SDXL, their Turbo variants and fine-tunes: any
directory ``DiffusionPipeline.from_pretrained`` loads (as downloaded once with
``hf download ... --local-dir``). The input and output are
``inferq/sketch``'s, so ``/v1/images/generations`` drives both alike.

Options (the version's ``options`` in the models file):

- ``path`` (required): the pipeline directory, loaded offline (``local_files_only``).
- ``dtype``: ``float32`` (default), ``bfloat16``, or ``float16`` (GPU only).
- ``device``: a torch device; default ``cuda`` when available, else ``cpu``.
- ``steps`` and ``guidance``: denoising steps and classifier-free guidance scale per
  quality, a mapping ``{low, medium, high}`` (missing levels keep their defaults,
  ``settings.DEFAULT_STEPS`` and ``DEFAULT_GUIDANCE``) or one number for all three.
  Turbo models want ``steps: {low: 1, medium: 2, high: 4}`` and ``guidance: 0``.
- ``negative_prompt``: what every image should avoid (default none).
- ``transparent_suffix``: appended to the prompt when a transparent background is
  asked for, so the background is plain enough to key out (see ``images``);
  the prompt as run is each image's ``revised_prompt``.
- ``sizes``/``default_size``, or ``multiple_of``/``min_side``/``max_side``, and
  ``default_quality``: read by the API (``api.images.resolve_size``), not here.

Edits (``images`` in the input, from ``/v1/images/edits``): inpainting where a
mask is given, image-to-image otherwise, with pipelines built by ``from_pipe``
from the loaded one, so they share its weights (see ``diffusion.edits``).

torch and diffusers are imported in ``setup()`` and ``predict()`` only: the API
imports this class to read its schemas.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping
from typing import Any, ClassVar

from common.errors import AdapterError, ConfigError
from workers.adapters.base import Adapter
from workers.adapters.diffusion.settings import DiffusersSettings, dtype_keyword
from workers.adapters.sketch.adapter import SketchAdapter, SketchRequest, partial_points
from workers.context import PredictionContext

PROGRESS_LINES = 10
"""At most this many "step i of N" log lines per prediction (and the last step always)."""


def _input_schema() -> dict[str, Any]:
    schema = copy.deepcopy(dict(SketchAdapter.input_schema))
    properties = schema["properties"]
    properties["quality"]["description"] = "Denoising steps and guidance, as the version's options set them."
    properties["seed"]["description"] = "Image i uses seed + i. Default: derived from the prompt."
    properties["style"]["description"] = "Accepted for compatibility; it does not change the image."
    return schema


class StepWatcher:
    """The pipeline's ``callback_on_step_end``: progress logs, partial images, and stopping on cancel.

    Attributes:
        steps_run: Denoising steps completed so far.
    """

    def __init__(self, ctx: PredictionContext, request: SketchRequest, planned_steps: int) -> None:
        self.ctx = ctx
        self.request = request
        self.planned_steps = planned_steps
        self.steps_run = 0

    def __call__(self, pipe: Any, step: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Runs after each step; raises ``PredictionCancelled`` once a stop was requested.

        Raising here, not just setting ``pipe._interrupt``, also skips the
        pipeline's final VAE decode, which takes seconds on a CPU: long
        enough to outlast ``INFERQ_CANCEL_GRACE`` and get the process killed.
        """
        self.steps_run = step + 1
        total = int(getattr(pipe, "num_timesteps", 0) or self.planned_steps)
        if self.ctx.cancelled.is_set():
            pipe._interrupt = True
            self.ctx.log(f"stopped after step {self.steps_run} of {total}")
            self.ctx.raise_if_cancelled()
        every = math.ceil(total / PROGRESS_LINES)
        if self.steps_run % every == 0 or self.steps_run == total:
            self.ctx.log(f"step {self.steps_run} of {total}")
        points = partial_points(total, min(self.request.partial_images, total - 1))
        if self.steps_run in points:
            self._emit_partials(pipe, kwargs["latents"], points[self.steps_run])
        return kwargs

    def _emit_partials(self, pipe: Any, latents: Any, partial_index: int) -> None:
        from workers.adapters.diffusion.images import decode_latents, encode_image

        request = self.request
        for index, rgb in enumerate(decode_latents(pipe, latents)):
            b64 = encode_image(rgb, request.background, request.output_format, request.output_compression)
            self.ctx.emit(
                {
                    "type": "partial_image",
                    "image_index": index,
                    "partial_image_index": partial_index,
                    "b64_json": b64,
                }
            )


class DiffusersAdapter(Adapter):
    """Generates ``n`` images for a prompt in one batch with a diffusers pipeline; see the module doc."""

    input_schema: ClassVar[dict[str, Any]] = _input_schema()
    output_schema: ClassVar[dict[str, Any]] = dict(SketchAdapter.output_schema)
    compatibilities: ClassVar[dict[str, bool]] = {
        "openai_images_generations": True,
        "openai_images_edits": True,
    }

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        self.settings = DiffusersSettings.from_options(options)
        self.device = ""
        self._pipeline: Any = None
        self._edit_pipelines: dict[str, Any] = {}

    @property
    def pipeline(self) -> Any:
        """The loaded diffusers pipeline.

        Raises:
            AdapterError: Before ``setup()``.
        """
        if self._pipeline is None:
            raise AdapterError("DiffusersAdapter.setup() was not called")
        return self._pipeline

    def setup(self) -> None:
        """Loads the pipeline from ``path`` onto the device, offline, once per worker process.

        Raises:
            ConfigError: When ``path`` is not a pipeline directory, or float16 is asked for on a CPU.
        """
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import diffusers
        import torch
        from diffusers import DiffusionPipeline

        diffusers.utils.logging.disable_progress_bar()

        settings = self.settings
        if not (settings.path / "model_index.json").is_file():
            raise ConfigError(f"diffusers option 'path': {settings.path} holds no model_index.json")
        device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
        if settings.dtype == "float16" and torch.device(device).type == "cpu":
            raise ConfigError("diffusers option 'dtype': float16 needs a GPU; use float32 or bfloat16 on cpu")
        dtype = {dtype_keyword(diffusers.__version__): getattr(torch, settings.dtype)}
        pipeline = DiffusionPipeline.from_pretrained(str(settings.path), local_files_only=True, **dtype)
        pipeline.to(device)
        pipeline.set_progress_bar_config(disable=True)
        self.device, self._pipeline = device, pipeline

    def predict(self, input: dict[str, Any], ctx: PredictionContext) -> Any:
        """Runs the pipeline once for all ``n`` images; stops within a step when cancelled."""
        from workers.adapters.diffusion.edits import EditRun
        from workers.adapters.diffusion.images import encode_image

        request = SketchRequest.from_input(input)
        sources = request.sources(ctx)
        edit = EditRun(self._edit_pipelines, self.pipeline, request, sources) if sources else None
        steps = self.settings.steps[request.quality]
        guidance = self.settings.guidance[request.quality]
        prompt = request.prompt
        if request.background == "transparent":
            prompt += self.settings.transparent_suffix
        ctx.metrics.update({"image_count": request.n, "steps": steps, "seed": request.seed})
        ctx.log(
            f"generating {request.n} image(s) of {request.width}x{request.height}, {request.quality} "
            f"quality ({steps} steps, guidance {guidance:g}), seed {request.seed}, on {self.device}"
        )
        ctx.raise_if_cancelled()
        arguments = self._call_arguments(request, prompt, steps, guidance)
        pipeline = self.pipeline
        if edit is not None:
            ctx.log(f"editing {len(request.images)} image(s) by {edit.mode}, strength {edit.strength:g}")
            pipeline, arguments = edit.pipeline, edit.arguments(arguments)
        result = pipeline(
            **arguments,
            callback_on_step_end=StepWatcher(ctx, request, steps),
            callback_on_step_end_tensor_inputs=["latents"],
        )
        ctx.raise_if_cancelled()
        for index, flagged in enumerate(getattr(result, "nsfw_content_detected", None) or []):
            if flagged:
                ctx.log(f"image {index} was blacked out by the pipeline's safety checker")
        pictures = [edit.finish(rgb) for rgb in result.images] if edit else list(result.images)
        images = [
            encode_image(rgb, request.background, request.output_format, request.output_compression)
            for rgb in pictures
        ]
        return request.output(images, prompt)

    def _call_arguments(
        self, request: SketchRequest, prompt: str, steps: int, guidance: float
    ) -> dict[str, Any]:
        """The pipeline's keyword arguments: one batch of ``n``, image ``i`` seeded with ``seed + i``."""
        import torch

        generators = [
            torch.Generator(self.device).manual_seed((request.seed + index) % 2**64)
            for index in range(request.n)
        ]
        arguments: dict[str, Any] = {
            "prompt": prompt,
            "height": request.height,
            "width": request.width,
            "num_inference_steps": steps,
            "guidance_scale": guidance,
            "num_images_per_prompt": request.n,
            "generator": generators,
            "output_type": "np",
        }
        if self.settings.negative_prompt:
            arguments["negative_prompt"] = self.settings.negative_prompt
        return arguments

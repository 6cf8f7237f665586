"""The built-in ``inferq/sketch`` image model, called directly with a fake prediction context."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from common.errors import PredictionCancelled
from tests.unit.fakes import FakeContext
from tests.unit.pictures import decode, pixels
from workers.adapters.sketch import render as sketch_render
from workers.adapters.sketch.adapter import SketchAdapter, partial_points
from workers.adapters.sketch.canvas import png_level
from workers.adapters.sketch.scene import plan_scene

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "a red circle at sunset"
BASE: dict[str, Any] = {"prompt": PROMPT, "width": 128, "height": 96}


def run(ctx: FakeContext | None = None, **overrides: Any) -> dict[str, Any]:
    output: dict[str, Any] = SketchAdapter({}).predict({**BASE, **overrides}, ctx or FakeContext())  # type: ignore[arg-type]
    return output


def first(output: dict[str, Any]) -> str:
    b64: str = output["images"][0]["b64_json"]
    return b64


@pytest.mark.parametrize(
    ("output_format", "pillow_format"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")]
)
def test_each_format_has_the_asked_size_and_an_opaque_mode(output_format: str, pillow_format: str) -> None:
    output = run(output_format=output_format, width=200, height=64)
    image = decode(first(output))
    assert (image.format, image.size, image.mode) == (pillow_format, (200, 64), "RGB")
    assert {k: v for k, v in output.items() if k != "images"} == {
        "width": 200,
        "height": 64,
        "quality": "medium",
        "background": "opaque",
        "output_format": output_format,
        "seed": output["seed"],
    }
    jsonschema.Draft202012Validator(SketchAdapter.output_schema).validate(output)


@pytest.mark.parametrize("output_format", ["png", "webp"])
def test_a_transparent_background_is_a_real_alpha_channel(output_format: str) -> None:
    output = run(prompt="a single yellow star", background="transparent", output_format=output_format)
    image = decode(first(output))
    assert image.mode == "RGBA"
    low, high = image.getchannel("A").getextrema()
    assert (low, high) == (0, 255)  # transparent sky, opaque shapes
    assert output["background"] == "transparent"


def test_a_transparent_request_for_jpeg_is_flattened_rather_than_failing() -> None:
    image = decode(first(run(background="transparent", output_format="jpeg")))
    assert (image.format, image.mode) == ("JPEG", "RGB")


def test_n_images_are_distinct_and_keep_the_prompt() -> None:
    ctx = FakeContext()
    output = run(ctx, n=3, prompt="three blue squares")
    encoded = [image["b64_json"] for image in output["images"]]
    assert len(set(encoded)) == 3
    assert all(decode(b64).size == (128, 96) for b64 in encoded)
    assert [image["revised_prompt"] for image in output["images"]] == ["three blue squares"] * 3
    assert ctx.metrics["image_count"] == 3 and ctx.metrics["steps"] == 8


def test_the_same_input_gives_byte_identical_output() -> None:
    assert run(seed=42, n=2) == run(seed=42, n=2)
    unseeded = run()
    assert unseeded == run() and isinstance(unseeded["seed"], int)
    assert run(prompt="another prompt")["seed"] != unseeded["seed"]


def test_the_seed_changes_the_image() -> None:
    one, two = pixels(first(run(seed=1))), pixels(first(run(seed=2)))
    assert np.abs(one - two).mean() > 5


@pytest.mark.parametrize("seed", [-1, 0, 2**70])
def test_any_integer_is_a_seed(seed: int) -> None:
    assert run(seed=seed)["seed"] == seed


def test_different_prompts_give_clearly_different_images() -> None:
    ocean = pixels(first(run(prompt="ocean waves", seed=7)))
    fire = pixels(first(run(prompt="volcano fire", seed=7)))
    assert np.abs(ocean - fire).mean() > 30


@pytest.mark.parametrize(
    ("prompt", "dominant"), [("a red circle", 0), ("a green forest", 1), ("a blue ocean", 2)]
)
def test_colour_words_bias_the_palette(prompt: str, dominant: int) -> None:
    mean = pixels(first(run(prompt=prompt)))[..., :3].mean(axis=(0, 1))
    assert int(np.argmax(mean)) == dominant


def test_night_is_dark_and_style_changes_the_colours() -> None:
    assert pixels(first(run(prompt="a night sky")))[..., :3].mean() < 70
    assert run(style="natural") != run(style="vivid")


def test_motif_words_and_counts_pick_the_layers() -> None:
    plan = plan_scene("three blue squares under stars", "medium", "vivid")
    assert {(layer.motif, layer.count) for layer in plan.layers} >= {("square", 3), ("star", None)}
    assert plan.layers[-1].motif == "square"  # named subjects are drawn in front
    assert plan_scene("a forest", "low", "vivid").layers[-1].count is None  # "a forest" is not one tree


@pytest.mark.parametrize(
    ("number", "count"),
    [("0", None), ("007", 7), ("40", 40), ("41", 40), ("9" * 5000, 40), ("0" * 5000, None)],
)
def test_numbers_of_any_length_are_counts_up_to_the_limit(number: str, count: int | None) -> None:
    plan = plan_scene(f"{number} circles", "low", "vivid")
    assert ("circle", count) in {(layer.motif, layer.count) for layer in plan.layers}


@pytest.mark.parametrize(("quality", "steps"), [("low", 4), ("medium", 8), ("high", 16)])
def test_quality_sets_the_number_of_render_steps(quality: str, steps: int) -> None:
    ctx = FakeContext()
    run(ctx, quality=quality)
    assert ctx.metrics["steps"] == steps == len(plan_scene(PROMPT, quality, "vivid").layers) + 1


@pytest.mark.parametrize("output_format", ["jpeg", "webp"])
def test_lower_compression_values_give_smaller_lossy_files(output_format: str) -> None:
    sizes = [
        len(base64.b64decode(first(run(output_format=output_format, output_compression=value))))
        for value in (5, 50, 100)
    ]
    assert sizes[0] < sizes[1] < sizes[2]


def test_png_compression_trades_effort_for_size_without_loss() -> None:
    assert (png_level(100), png_level(50), png_level(0)) == (1, 5, 9)
    small, large = run(output_compression=0), run(output_compression=100)
    assert len(first(small)) <= len(first(large))
    assert np.array_equal(pixels(first(small)), pixels(first(large)))


@pytest.mark.parametrize("partials", [1, 2, 3])
def test_partial_images_are_real_earlier_renders(partials: int) -> None:
    ctx = FakeContext()
    output = run(ctx, n=2, partial_images=partials, background="transparent", output_format="webp")
    assert [(c["type"], c["image_index"], c["partial_image_index"]) for c in ctx.chunks] == [
        ("partial_image", i, j) for i in range(2) for j in range(partials)
    ]
    for index, image in enumerate(output["images"]):
        final = pixels(image["b64_json"])
        renders = [c["b64_json"] for c in ctx.chunks if c["image_index"] == index]
        assert all((decode(b64).format, decode(b64).mode) == ("WEBP", "RGBA") for b64 in renders)
        steps = [pixels(b64) for b64 in renders] + [final]
        for earlier, later in zip(steps, steps[1:], strict=False):
            assert np.abs(earlier - later).mean() > 0.5  # each is visibly further along


def test_no_partial_images_unless_asked() -> None:
    ctx = FakeContext()
    run(ctx)
    assert ctx.chunks == []


@pytest.mark.parametrize("steps", [4, 8, 16])
def test_partial_points_are_distinct_steps_before_the_last(steps: int) -> None:
    assert partial_points(steps, 0) == {}
    for partials in (1, 2, 3):
        points = partial_points(steps, partials)
        assert sorted(points.values()) == list(range(partials))
        assert len(points) == partials and all(1 <= step < steps for step in points)


def test_a_cancel_during_streaming_stops_at_the_next_step() -> None:
    ctx = FakeContext(cancel_on_emit=True)
    with pytest.raises(PredictionCancelled):
        run(ctx, n=2, partial_images=3)
    assert len(ctx.chunks) == 1


def test_a_cancel_mid_render_stops_within_one_step(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, drawn = FakeContext(), []
    draw = sketch_render.Painter.draw

    def draw_and_cancel(painter: sketch_render.Painter, layer: Any) -> None:
        draw(painter, layer)
        drawn.append(layer)
        if len(drawn) == 2:
            ctx.cancelled.set()

    monkeypatch.setattr(sketch_render.Painter, "draw", draw_and_cancel)
    with pytest.raises(PredictionCancelled):
        run(ctx, quality="high")
    assert len(drawn) == 2


def test_a_prediction_cancelled_before_it_starts_draws_nothing() -> None:
    ctx = FakeContext()
    ctx.cancelled.set()
    with pytest.raises(PredictionCancelled):
        run(ctx, partial_images=1)
    assert ctx.chunks == []


def test_the_schemas_are_valid_2020_12_and_a_full_input_passes() -> None:
    for schema in (SketchAdapter.input_schema, SketchAdapter.output_schema):
        jsonschema.Draft202012Validator.check_schema(schema)
    full = {
        "prompt": "p",
        "n": 10,
        "width": 2048,
        "height": 64,
        "quality": "high",
        "background": "transparent",
        "output_format": "webp",
        "output_compression": 0,
        "partial_images": 3,
        "seed": -5,
        "style": "natural",
    }
    validator = jsonschema.Draft202012Validator(SketchAdapter.input_schema)
    assert list(validator.iter_errors(full)) == [] and list(validator.iter_errors(BASE)) == []
    assert SketchAdapter.compatibilities == {"openai_images_generations": True, "openai_images_edits": True}


@pytest.mark.parametrize(
    "bad",
    [
        {"prompt": None},
        {"prompt": ""},
        {"width": 100},
        {"width": 56},
        {"height": 2056},
        {"n": 0},
        {"n": 11},
        {"quality": "auto"},
        {"background": "auto"},
        {"output_format": "gif"},
        {"output_compression": 101},
        {"output_compression": -1},
        {"partial_images": 4},
        {"seed": "1"},
        {"seed": 1.5},
        {"style": "bold"},
        {"size": "1024x1024"},
    ],
)
def test_the_input_schema_rejects_bad_values(bad: dict[str, Any]) -> None:
    payload = {k: v for k, v in {**BASE, **bad}.items() if v is not None}
    assert list(jsonschema.Draft202012Validator(SketchAdapter.input_schema).iter_errors(payload))


def test_the_adapter_class_imports_without_numpy_or_pillow() -> None:
    code = (
        "import sys\n"
        "from workers.adapters.sketch.adapter import SketchAdapter\n"
        "assert SketchAdapter.input_schema\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'numpy', 'PIL'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"

"""The ``diffusers`` adapter on a tiny random Stable Diffusion pipeline, called with a fake context."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

pytest.importorskip("diffusers", reason="needs the diffusers extra")
pytest.importorskip("transformers", reason="needs the diffusers extra")

from common.errors import ConfigError, PredictionCancelled  # noqa: E402
from tests.fixtures.tiny_diffusion import build_tiny_pipeline  # noqa: E402
from tests.unit.fakes import FakeContext  # noqa: E402
from tests.unit.pictures import decode, pixels  # noqa: E402
from workers.adapters.diffusion.images import keyed_alpha  # noqa: E402
from workers.adapters.diffusion.pipeline import DiffusersAdapter  # noqa: E402
from workers.adapters.diffusion.settings import dtype_keyword  # noqa: E402
from workers.adapters.sketch.adapter import SketchAdapter  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = {"prompt": "a red circle", "width": 64, "height": 64}
STEPS = {"low": 2, "medium": 4, "high": 6}


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd"))


def _loaded(pipeline_dir: Path, **options: Any) -> DiffusersAdapter:
    adapter = DiffusersAdapter({"path": str(pipeline_dir), "device": "cpu", "steps": STEPS, **options})
    adapter.setup()
    return adapter


@pytest.fixture(scope="module")
def adapter(pipeline_dir: Path) -> DiffusersAdapter:
    return _loaded(pipeline_dir)


def run(adapter: DiffusersAdapter, ctx: FakeContext | None = None, **overrides: Any) -> dict[str, Any]:
    output: dict[str, Any] = adapter.predict({**BASE, **overrides}, ctx or FakeContext())  # type: ignore[arg-type]
    return output


def encoded(output: dict[str, Any]) -> list[str]:
    return [image["b64_json"] for image in output["images"]]


@contextmanager
def calls(module: Any, on_call: Callable[[int], None] | None = None) -> Iterator[list[int]]:
    """Records the batch size of each forward call of a torch module (``on_call`` gets the call count)."""
    seen: list[int] = []

    def hook(_: Any, args: tuple[Any, ...], __: Any) -> None:
        seen.append(int(args[0].shape[0]))
        if on_call is not None:
            on_call(len(seen))

    handle = module.register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


@pytest.mark.parametrize(
    ("output_format", "pillow_format"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")]
)
def test_each_format_has_the_asked_size(
    adapter: DiffusersAdapter, output_format: str, pillow_format: str
) -> None:
    output = run(adapter, output_format=output_format, width=128, height=64, seed=3, quality="low")
    image = decode(encoded(output)[0])
    assert (image.format, image.size, image.mode) == (pillow_format, (128, 64), "RGB")
    assert {k: v for k, v in output.items() if k != "images"} == {
        "width": 128,
        "height": 64,
        "quality": "low",
        "background": "opaque",
        "output_format": output_format,
        "seed": 3,
    }
    assert output["images"][0]["revised_prompt"] == "a red circle"
    jsonschema.validate(output, DiffusersAdapter.output_schema)


def test_compression_trades_quality_for_size(adapter: DiffusersAdapter) -> None:
    small, large = (
        len(encoded(run(adapter, output_format="webp", output_compression=c, seed=1))[0]) for c in (10, 95)
    )
    assert small < large


@pytest.mark.parametrize("output_format", ["png", "webp"])
def test_a_transparent_background_has_real_alpha(adapter: DiffusersAdapter, output_format: str) -> None:
    output = run(adapter, background="transparent", output_format=output_format, seed=5)
    image = decode(encoded(output)[0])
    assert image.mode == "RGBA"
    assert image.getchannel("A").getextrema() == (0, 255)
    assert output["background"] == "transparent"
    assert output["images"][0]["revised_prompt"] == "a red circle, isolated on a plain white background"


def test_the_key_makes_the_border_colour_transparent_and_keeps_the_subject() -> None:
    rgb = np.ones((32, 32, 3), np.float32)
    rgb[8:24, 8:24] = (0.8, 0.1, 0.1)
    rgb[8:24, 7] = (0.95, 0.85, 0.85)  # a faint edge, barely off the background
    color, alpha = keyed_alpha(rgb)
    assert alpha[0, 0] == 0 and alpha[16, 16] == 1
    assert np.allclose(color[16, 16], (0.8, 0.1, 0.1)) and np.allclose(color[0, 0], 0)
    assert 0 < alpha[16, 7] < 1
    straight = color[16, 7] / alpha[16, 7]
    assert straight[0] - straight[1] > 0.2  # the background's white is taken back out: redder than it looks
    assert np.all(color <= alpha[..., None])  # valid premultiplied colour


def test_the_same_seed_gives_the_same_image(adapter: DiffusersAdapter) -> None:
    assert encoded(run(adapter, seed=7)) == encoded(run(adapter, seed=7))
    assert encoded(run(adapter, seed=7)) != encoded(run(adapter, seed=8))
    assert encoded(run(adapter, seed=7)) != encoded(run(adapter, seed=7, prompt="a blue square"))


def test_without_a_seed_one_is_derived_from_the_prompt_and_reported(adapter: DiffusersAdapter) -> None:
    ctx = FakeContext()
    first, again = run(adapter, ctx), run(adapter)
    assert first["seed"] == again["seed"] and encoded(first) == encoded(again)
    assert run(adapter, prompt="another prompt")["seed"] != first["seed"]
    assert encoded(run(adapter, seed=first["seed"])) == encoded(first)
    assert ctx.metrics == {"image_count": 1, "steps": STEPS["medium"], "seed": first["seed"]}


def test_n_images_are_one_batch_and_image_i_uses_seed_plus_i(adapter: DiffusersAdapter) -> None:
    ctx = FakeContext()
    with calls(adapter.pipeline.unet) as batches:
        output = run(adapter, ctx, n=3, seed=20, quality="low")
    assert batches == [2 * 3] * STEPS["low"]  # one UNet pass a step: 3 images, with and without guidance
    images = encoded(output)
    assert len(images) == 3 and len(set(images)) == 3
    alone = pixels(encoded(run(adapter, seed=21, quality="low"))[0])
    assert np.abs(pixels(images[1]) - alone).max() <= 2  # batched arithmetic rounds a little differently
    assert np.abs(pixels(images[0]) - alone).mean() > 10
    assert ctx.metrics["image_count"] == 3


def test_a_cancel_mid_denoise_stops_within_one_step_without_decoding(pipeline_dir: Path) -> None:
    slow = _loaded(pipeline_dir, steps=200)
    ctx = FakeContext()
    with (
        calls(slow.pipeline.unet, lambda count: count == 5 and ctx.cancelled.set()) as steps,
        calls(slow.pipeline.vae.decoder) as decodes,
        pytest.raises(PredictionCancelled),
    ):
        run(slow, ctx, partial_images=3)
    assert len(steps) == 5 and decodes == []  # the step under way finished; nothing after it ran
    assert ctx.logs[-1] == "stopped after step 5 of 200"


def test_a_prediction_cancelled_before_it_starts_runs_no_step(adapter: DiffusersAdapter) -> None:
    ctx = FakeContext()
    ctx.cancelled.set()
    with calls(adapter.pipeline.unet) as steps, pytest.raises(PredictionCancelled):
        run(adapter, ctx)
    assert steps == []


def test_partial_images_are_decoded_latents_of_each_image(adapter: DiffusersAdapter) -> None:
    ctx = FakeContext()
    output = run(adapter, ctx, n=2, partial_images=2, quality="high", output_format="webp", seed=4)
    assert {c["type"] for c in ctx.chunks} == {"partial_image"}
    pairs = [(c["image_index"], c["partial_image_index"]) for c in ctx.chunks]
    assert pairs == [(0, 0), (1, 0), (0, 1), (1, 1)]
    for chunk in ctx.chunks:
        image = decode(chunk["b64_json"])
        assert (image.format, image.size) == ("WEBP", (64, 64))
    renders = [c["b64_json"] for c in ctx.chunks] + encoded(output)
    assert len(set(renders)) == len(renders)  # each partial differs from the others and from the finals
    first, final = pixels(ctx.chunks[0]["b64_json"]), pixels(encoded(output)[0])
    assert np.abs(first - final).mean() > 1  # an earlier state, not a re-encoding


def test_fewer_partials_than_asked_when_there_are_too_few_steps(adapter: DiffusersAdapter) -> None:
    ctx = FakeContext()
    run(adapter, ctx, partial_images=3, quality="low")  # 2 steps: one partial, after the first
    assert [c["partial_image_index"] for c in ctx.chunks] == [0]


def test_no_partials_unless_asked(adapter: DiffusersAdapter) -> None:
    ctx = FakeContext()
    run(adapter, ctx, quality="high")
    assert ctx.chunks == []


def test_progress_is_logged_in_at_most_ten_lines(pipeline_dir: Path) -> None:
    ctx = FakeContext()
    run(_loaded(pipeline_dir, steps=40, guidance=0), ctx, seed=9)
    header, *progress = ctx.logs
    assert header == "generating 1 image(s) of 64x64, medium quality (40 steps, guidance 0), seed 9, on cpu"
    assert progress == [f"step {i} of 40" for i in range(4, 41, 4)]


def test_a_few_steps_are_each_logged(adapter: DiffusersAdapter) -> None:
    ctx = FakeContext()
    run(adapter, ctx, quality="low")
    assert ctx.logs[1:] == ["step 1 of 2", "step 2 of 2"]


def test_bfloat16_runs_on_cpu(pipeline_dir: Path) -> None:
    image = decode(encoded(run(_loaded(pipeline_dir, dtype="bfloat16"), quality="low"))[0])
    assert image.size == (64, 64)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "'path'"),
        ({"path": "/x", "dtype": "float64"}, "'dtype'"),
        ({"path": "/x", "steps": {"ultra": 3}}, "'steps'"),
        ({"path": "/x", "steps": {"low": 0}}, "'steps'"),
        ({"path": "/x", "steps": 2.5}, "'steps'"),
        ({"path": "/x", "guidance": {"low": -1}}, "guidance.low"),
        ({"path": "/x", "guidance": "strong"}, "'guidance'"),
        ({"path": "/x", "device": 0}, "'device'"),
    ],
)
def test_unusable_options_are_config_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DiffusersAdapter(options)


def test_one_number_sets_every_quality_and_missing_levels_keep_defaults() -> None:
    settings = DiffusersAdapter({"path": "/x", "steps": {"low": 3}, "guidance": 0}).settings
    assert settings.steps == {"low": 3, "medium": 25, "high": 50}
    assert settings.guidance == {"low": 0, "medium": 0, "high": 0}


def test_setup_refuses_a_directory_without_a_pipeline_and_float16_on_cpu(
    tmp_path: Path, pipeline_dir: Path
) -> None:
    with pytest.raises(ConfigError, match="model_index.json"):
        DiffusersAdapter({"path": str(tmp_path)}).setup()
    with pytest.raises(ConfigError, match="float16 needs a GPU"):
        DiffusersAdapter({"path": str(pipeline_dir), "device": "cpu", "dtype": "float16"}).setup()


def test_the_dtype_keyword_follows_the_diffusers_version() -> None:
    assert [dtype_keyword(v) for v in ("0.30.3", "0.39.0", "0.40.0", "1.2.0.dev0")] == [
        "torch_dtype",
        "torch_dtype",
        "dtype",
        "dtype",
    ]


def test_the_input_schema_is_the_sketch_contract() -> None:
    assert set(DiffusersAdapter.input_schema["properties"]) == set(SketchAdapter.input_schema["properties"])
    assert DiffusersAdapter.output_schema == SketchAdapter.output_schema
    jsonschema.Draft202012Validator.check_schema(DiffusersAdapter.input_schema)
    assert DiffusersAdapter.compatibilities == {
        "openai_images_generations": True,
        "openai_images_edits": True,
    }


def test_reading_the_class_imports_neither_torch_nor_diffusers() -> None:
    script = (
        "import sys\n"
        "from common.catalog import load_adapter_class\n"
        "cls = load_adapter_class('diffusers')\n"
        "assert cls.__name__ == 'DiffusersAdapter', cls\n"
        "cls({'path': '/nowhere'})\n"
        "heavy = sorted({'torch', 'diffusers', 'transformers'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=60)

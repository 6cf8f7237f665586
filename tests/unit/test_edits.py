"""Image edits in the adapters, called directly: ``inferq/sketch`` and the tiny diffusers pipeline."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from PIL import Image, ImageFilter

from common.errors import PredictionCancelled
from tests.unit.fakes import FakeContext
from tests.unit.pictures import decode
from workers.adapters.edits import FEATHER_FRACTION, load_sources, mask_weight
from workers.adapters.sketch.adapter import SketchAdapter

WIDTH, HEIGHT = 64, 64


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def _picture(seed: int = 0) -> np.ndarray:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    noise = np.random.default_rng(seed).integers(0, 40, (HEIGHT, WIDTH, 3))
    return np.clip(np.stack([x * 4, y * 4, x + y], axis=2) + noise, 0, 255).astype(np.uint8)


def _mask() -> tuple[np.ndarray, bytes]:
    rgba = np.full((HEIGHT, WIDTH, 4), 255, np.uint8)
    rgba[16:48, 8:40, 3] = 0
    return rgba[..., 3] == 255, _png(rgba)


def _context(**uploads: bytes) -> FakeContext:
    return FakeContext(uploads=uploads)


def _rgb(b64: str) -> np.ndarray:
    return np.asarray(decode(b64).convert("RGB"))


EDIT: dict[str, Any] = {"prompt": "a red circle at sunset", "width": WIDTH, "height": HEIGHT, "images": ["a"]}


def test_the_mask_weight_is_zero_where_kept_and_feathered_inside_the_edge() -> None:
    kept, mask = _mask()
    weight = mask_weight(mask, WIDTH, HEIGHT)
    assert np.all(weight[kept] == 0.0)
    assert weight[32, 24] == pytest.approx(1.0)
    assert 0.0 < weight[16, 24] < 1.0  # on the edge, inside the hole


@pytest.mark.parametrize("hole", [(16, 48, 8, 40), (0, 20, 0, 64), (60, 64, 50, 64), (30, 31, 30, 31)])
def test_the_feather_blurred_around_the_box_is_the_feather_of_the_whole_mask(
    hole: tuple[int, int, int, int],
) -> None:
    top, bottom, left, right = hole
    rgba = np.full((HEIGHT, WIDTH, 4), 255, np.uint8)
    rgba[top:bottom, left:right, 3] = np.random.default_rng(2).integers(0, 255, (bottom - top, right - left))
    alpha = Image.fromarray(rgba[..., 3])
    blurred = np.asarray(alpha.filter(ImageFilter.BoxBlur(round(WIDTH * FEATHER_FRACTION))), np.float32)
    scale = np.float32(1 / 255)
    whole = (1.0 - rgba[..., 3].astype(np.float32) * scale) * (1.0 - blurred * scale)
    assert np.array_equal(mask_weight(_png(rgba), WIDTH, HEIGHT), whole)


def test_several_images_are_mixed_into_the_first_only_where_the_edit_goes() -> None:
    kept, mask = _mask()
    one = load_sources([_png(_picture(0))], mask, WIDTH, HEIGHT, transparent=False)
    two = load_sources([_png(_picture(0)), _png(_picture(1) // 2)], mask, WIDTH, HEIGHT, transparent=False)
    assert np.array_equal(one.color[kept], two.color[kept])
    assert not np.array_equal(one.color[~kept], two.color[~kept])


def test_sketch_keeps_every_pixel_outside_the_mask_and_paints_inside() -> None:
    kept, mask = _mask()
    source = _picture()
    ctx = _context(a=_png(source), m=_png(np.zeros((1, 1, 4), np.uint8)))
    ctx.uploads["m"] = mask
    output = SketchAdapter({}).predict({**EDIT, "mask": "m"}, ctx)  # type: ignore[arg-type]
    edited = _rgb(output["images"][0]["b64_json"])
    assert np.array_equal(edited[kept], source[kept])
    assert np.abs(edited[~kept].astype(int) - source[~kept]).mean() > 10


def test_sketch_edits_are_deterministic_and_fidelity_keeps_more_of_the_input() -> None:
    source = _picture()

    def distance(**extra: Any) -> tuple[str, float]:
        output = SketchAdapter({}).predict({**EDIT, **extra}, _context(a=_png(source)))  # type: ignore[arg-type]
        b64 = output["images"][0]["b64_json"]
        return b64, float(np.abs(_rgb(b64).astype(int) - source).mean())

    (first, low), (again, _) = distance(), distance()
    _, high = distance(input_fidelity="high")
    assert first == again
    assert 0 < high < low


def test_sketch_edit_partials_and_cancel() -> None:
    ctx = _context(a=_png(_picture()))
    SketchAdapter({}).predict({**EDIT, "partial_images": 2}, ctx)  # type: ignore[arg-type]
    assert [chunk["partial_image_index"] for chunk in ctx.chunks] == [0, 1]
    stopping = FakeContext(cancel_on_emit=True, uploads={"a": _png(_picture())})
    with pytest.raises(PredictionCancelled):
        SketchAdapter({}).predict({**EDIT, "partial_images": 2}, stopping)  # type: ignore[arg-type]


def test_the_edit_input_is_part_of_the_schema() -> None:
    jsonschema.validate({**EDIT, "mask": None, "input_fidelity": "high"}, SketchAdapter.input_schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**EDIT, "input_fidelity": "max"}, SketchAdapter.input_schema)
    assert SketchAdapter.compatibilities["openai_images_edits"] is True


@pytest.fixture(scope="module")
def diffusers_adapter(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pytest.importorskip("diffusers", reason="needs the diffusers extra")
    from tests.fixtures.tiny_diffusion import build_tiny_pipeline
    from workers.adapters.diffusion.pipeline import DiffusersAdapter

    path: Path = build_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd"))
    adapter = DiffusersAdapter(
        {"path": str(path), "device": "cpu", "steps": {"low": 2, "medium": 4, "high": 6}}
    )
    adapter.setup()
    return adapter


def test_diffusers_inpaints_with_a_mask_keeping_the_rest_exactly(diffusers_adapter: Any) -> None:
    kept, mask = _mask()
    source = _picture()
    ctx = _context(a=_png(source), m=mask)
    output = diffusers_adapter.predict({**EDIT, "mask": "m", "seed": 3, "partial_images": 1}, ctx)
    edited = _rgb(output["images"][0]["b64_json"])
    assert np.array_equal(edited[kept], source[kept])
    assert not np.array_equal(edited[~kept], source[~kept])
    assert len(ctx.chunks) == 1
    inpainting = diffusers_adapter._edit_pipelines["inpainting"]
    assert inpainting.unet is diffusers_adapter.pipeline.unet  # the same weights, not a copy
    assert inpainting.vae is diffusers_adapter.pipeline.vae


def test_diffusers_image_to_image_without_a_mask_is_seeded_and_shares_weights(diffusers_adapter: Any) -> None:
    source = _png(_picture())

    def edit(**extra: Any) -> str:
        output = diffusers_adapter.predict({**EDIT, "seed": 5, **extra}, _context(a=source))
        b64: str = output["images"][0]["b64_json"]
        return b64

    assert edit() == edit()
    assert edit() != edit(seed=6)
    assert edit() != edit(input_fidelity="high")
    image_to_image = diffusers_adapter._edit_pipelines["image-to-image"]
    assert image_to_image.unet is diffusers_adapter.pipeline.unet
    assert image_to_image.text_encoder is diffusers_adapter.pipeline.text_encoder


def test_diffusers_edit_stops_on_cancel(diffusers_adapter: Any) -> None:
    ctx = FakeContext(cancel_on_emit=True, uploads={"a": _png(_picture())})
    with pytest.raises(PredictionCancelled):
        diffusers_adapter.predict({**EDIT, "partial_images": 2}, ctx)
    assert len(ctx.chunks) == 1

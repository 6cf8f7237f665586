"""/v1/images/generations on a real diffusers pipeline (tiny and random), with the official clients.

The module builds the tiny pipeline, writes a models file that serves it with
the ``diffusers`` adapter, and runs its own API and worker on the private Redis.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
import wriftai
import yaml
from PIL import Image

pytest.importorskip("diffusers", reason="needs the diffusers extra")
pytest.importorskip("transformers", reason="needs the diffusers extra")

from common.processes.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from common.processes.launcher import Launcher  # noqa: E402
from tests.conftest import KEYS, MODELS, base_env  # noqa: E402
from tests.fixtures.tiny_diffusion import build_tiny_pipeline  # noqa: E402
from tests.integration.conftest import Stack, wait_for_status  # noqa: E402

QUEUE = "tests.tiny-sd"
"""The queue of both tiny models, served only by this module's worker."""
SLOW_STEPS = 200
"""Denoising steps of ``tests/tiny-sd-slow``: seconds of work, so there is time to cancel it."""


def _tiny_models(pipeline: Path) -> list[dict[str, Any]]:
    options = {
        "path": str(pipeline),
        "device": "cpu",
        "sizes": ["64x64", "128x64"],
        "default_size": "64x64",
    }
    return [
        {
            "owner": "tests",
            "name": "tiny-sd",
            "description": "A tiny random Stable Diffusion pipeline.",
            "versions": [
                {
                    "number": 1,
                    "adapter": "diffusers",
                    "queue": QUEUE,
                    "options": {**options, "steps": {"low": 2, "medium": 4, "high": 6}},
                }
            ],
        },
        {
            "owner": "tests",
            "name": "tiny-sd-slow",
            "description": "The tiny pipeline with many steps.",
            "versions": [
                {
                    "number": 1,
                    "adapter": "diffusers",
                    "queue": QUEUE,
                    "options": {**options, "steps": SLOW_STEPS},
                }
            ],
        },
    ]


@pytest.fixture(scope="module")
def sd_stack(redis_server: EmbeddedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """An API and a worker serving the fixture models plus the tiny pipeline, for this module."""
    pipeline = build_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd"))
    fixture = yaml.safe_load(MODELS.read_text(encoding="utf-8"))
    models = tmp_path_factory.mktemp("sd-models") / "models.yaml"
    models.write_text(
        yaml.safe_dump({"models": fixture["models"] + _tiny_models(pipeline)}), encoding="utf-8"
    )
    logs = tmp_path_factory.mktemp("sd-logs")
    # A real pipeline on a busy 2-core runner can take more than the suite's 4 s to a
    # first partial image; no test here is about the deadline, so it is out of their way.
    env = base_env(
        redis_server.url,
        tmp_path_factory.mktemp("sd-data"),
        INFERQ_MODELS=str(models),
        INFERQ_SYNC_TIMEOUT="60",
    )
    launcher = Launcher(env, log_dir=logs)
    try:
        base_url = launcher.start_api("127.0.0.1", free_port(), name="sd-api")
        launcher.start_worker([QUEUE], name="sd@tests")
        yield Stack(base_url, env, launcher, logs)
    finally:
        launcher.stop_all()


@pytest.fixture
def client(sd_stack: Stack) -> Iterator[openai.OpenAI]:
    """The official OpenAI client as owner ``alice``."""
    with openai.OpenAI(base_url=f"{sd_stack.base_url}/v1", api_key=KEYS["alice"]) as found:
        yield found


@pytest.fixture
def alice(sd_stack: Stack) -> Iterator[wriftai.Client]:
    """The official wriftai client as owner ``alice``."""
    with sd_stack.client("alice") as found:
        yield found


def _image(b64: str | None) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(b64 or "")))
    image.load()
    return image


def test_images_of_the_asked_size_and_format(client: openai.OpenAI) -> None:
    result = client.images.generate(
        model="tests/tiny-sd", prompt="a red circle", size="128x64", n=2, output_format="webp"
    )
    images = [_image(item.b64_json) for item in result.data]
    assert [(i.format, i.size, i.mode) for i in images] == [("WEBP", (128, 64), "RGB")] * 2
    assert result.data[0].b64_json != result.data[1].b64_json
    assert (result.size, result.output_format, result.quality) == ("128x64", "webp", "medium")
    assert result.data[0].revised_prompt == "a red circle"

    default = client.images.generate(model="tests/tiny-sd", prompt="a red circle", quality="low")
    assert _image(default.data[0].b64_json).size == (64, 64) and default.size == "64x64"


def test_a_transparent_png_has_real_alpha(client: openai.OpenAI) -> None:
    result = client.images.generate(model="tests/tiny-sd", prompt="a star", background="transparent")
    image = _image(result.data[0].b64_json)
    assert (image.format, image.mode) == ("PNG", "RGBA")
    assert image.getchannel("A").getextrema() == (0, 255)


def test_a_size_the_model_does_not_list_is_422(client: openai.OpenAI) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        client.images.generate(model="tests/tiny-sd", prompt="x", size="64x128")
    assert "64x64, 128x64" in raised.value.message


def test_the_same_seed_gives_the_same_image(client: openai.OpenAI) -> None:
    def render(seed: int) -> str | None:
        result = client.images.generate(
            model="tests/tiny-sd", prompt="ocean waves", extra_body={"seed": seed}
        )
        return result.data[0].b64_json

    assert render(7) == render(7)
    assert render(7) != render(8)


def test_streaming_sends_partial_images_then_completed(client: openai.OpenAI) -> None:
    events = list(
        client.images.generate(
            model="tests/tiny-sd", prompt="a night sky", quality="high", stream=True, partial_images=2
        )
    )
    assert [e.type for e in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    partials, final = events[:2], events[2]
    assert [p.partial_image_index for p in partials] == [0, 1]  # type: ignore[union-attr]
    renders = [e.b64_json for e in events]
    assert len(set(renders)) == 3 and all(_image(b64).size == (64, 64) for b64 in renders)
    assert final.usage.output_tokens > 0  # type: ignore[union-attr]


def _stopped_at(logs: str) -> int:
    """The step a cancelled prediction stopped after, from its logs."""
    match = re.search(rf"^stopped after step (\d+) of {SLOW_STEPS}$", logs, re.MULTILINE)
    assert match, logs
    return int(match[1])


def test_a_cancel_mid_denoise_ends_the_prediction_within_a_few_steps(alice: wriftai.Client) -> None:
    events = alice.predictions.create(
        model="tests/tiny-sd-slow",
        input={"prompt": "a slow one", "width": 64, "height": 64, "partial_images": 3},
        wait=True,
        stream=True,
    )
    prediction_id, kinds = "", []
    for event in events:
        kinds.append(event["event"])
        data: Any = event["data"]
        if event["event"] == "init":
            prediction_id = data["id"]
        elif kinds.count("output") == 1 and event["event"] == "output":  # the partial after step 50
            assert data["partial_image_index"] == 0
            alice.predictions.cancel(prediction_id)
    assert kinds[0] == "init" and kinds[-1] == "done"
    assert 1 <= kinds.count("output") <= 2

    ended = alice.predictions.get(prediction_id)
    assert ended["status"] == "cancelled"
    assert SLOW_STEPS // 4 <= _stopped_at(ended["logs"]) < SLOW_STEPS // 2  # well before the end


def test_a_client_that_hangs_up_mid_stream_gets_its_prediction_cancelled(
    client: openai.OpenAI, alice: wriftai.Client, sd_stack: Stack
) -> None:
    with client.images.generate(
        model="tests/tiny-sd-slow", prompt="never mind", stream=True, partial_images=3
    ) as stream:
        first = next(iter(stream))
        assert first.type == "image_generation.partial_image"
    (prediction,) = alice.predictions.list().items
    status = wait_for_status(sd_stack.env["INFERQ_REDIS_URL"], prediction["id"], {"cancelled", "succeeded"})
    assert status == "cancelled"
    assert _stopped_at(alice.predictions.get(prediction["id"])["logs"]) < SLOW_STEPS // 2  # not the deadline


def _upload(rgba: np.ndarray, name: str) -> tuple[str, bytes, str]:
    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, "PNG")
    return (name, buffer.getvalue(), "image/png")


def test_edits_inpaint_with_a_mask_and_transform_without_one(client: openai.OpenAI) -> None:
    y, x = np.mgrid[0:64, 0:64]
    source = np.stack([x * 4, y * 4, (x + y) * 2], axis=2).astype(np.uint8)
    mask = np.full((64, 64, 4), 255, np.uint8)
    mask[16:48, 16:48, 3] = 0
    kept = mask[..., 3] == 255

    inpainted = client.images.edit(
        model="tests/tiny-sd",
        image=_upload(source, "in.png"),
        mask=_upload(mask, "mask.png"),
        prompt="a red circle",
        extra_body={"seed": 1},
    )
    edited = np.asarray(_image(inpainted.data[0].b64_json).convert("RGB"))
    assert inpainted.size == "64x64" and np.array_equal(edited[kept], source[kept])
    assert not np.array_equal(edited[~kept], source[~kept])

    whole = client.images.edit(
        model="tests/tiny-sd",
        image=[_upload(source, "a.png"), _upload(source[::-1].copy(), "b.png")],
        prompt="a red circle",
        n=2,
        output_format="jpeg",
        response_format="b64_json",
    )
    assert [_image(item.b64_json).format for item in whole.data] == ["JPEG", "JPEG"]
    assert whole.data[0].b64_json != whole.data[1].b64_json


def test_a_streamed_edit_sends_partial_images(client: openai.OpenAI) -> None:
    source = np.full((64, 64, 3), 128, np.uint8)
    events = list(
        client.images.edit(
            model="tests/tiny-sd",
            image=_upload(source, "in.png"),
            prompt="a star",
            stream=True,
            partial_images=2,
            quality="high",
        )
    )
    assert [e.type for e in events] == ["image_edit.partial_image"] * 2 + ["image_edit.completed"]
    assert _image(events[-1].b64_json).size == (64, 64)  # type: ignore[union-attr]

"""/v1/images/edits with the official openai client: real uploads, real edits, real streams."""

from __future__ import annotations

import base64
import io
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import redis
import wriftai
from PIL import Image

from tests.conftest import KEYS, stored
from tests.integration.conftest import Stack, wait_for_status

WIDTH, HEIGHT = 128, 96


@pytest.fixture
def client(stack: Stack) -> Iterator[openai.OpenAI]:
    """The official OpenAI client as owner ``alice``."""
    with openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key=KEYS["alice"]) as found:
        yield found


def _picture(seed: int = 0, size: tuple[int, int] = (WIDTH, HEIGHT)) -> np.ndarray:
    """A smooth RGB picture with some texture."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], axis=2)
    return np.clip(base + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)


def _file(pixels: np.ndarray, fmt: str = "PNG", name: str = "image.png") -> tuple[str, bytes, str]:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, fmt)
    return (name, buffer.getvalue(), f"image/{fmt.lower()}")


def _mask(size: tuple[int, int] = (WIDTH, HEIGHT)) -> tuple[np.ndarray, tuple[str, bytes, str]]:
    """A mask transparent in a central rectangle; the boolean array of the kept pixels."""
    width, height = size
    rgba = np.full((height, width, 4), 255, np.uint8)
    rgba[20:70, 30:100, 3] = 0
    return rgba[..., 3] == 255, _file(rgba, name="mask.png")


def _decoded(b64: str | None) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(b64 or "")))
    image.load()
    return image


def test_outside_the_mask_every_pixel_is_the_inputs(client: openai.OpenAI) -> None:
    source = _picture()
    kept, mask = _mask()
    result = client.images.edit(
        model="inferq/sketch", image=_file(source), mask=mask, prompt="a red circle at sunset"
    )
    edited = np.asarray(_decoded(result.data[0].b64_json).convert("RGB"))
    assert edited.shape == source.shape and result.size == f"{WIDTH}x{HEIGHT}"
    assert np.array_equal(edited[kept], source[kept])
    assert np.abs(edited[~kept].astype(int) - source[~kept]).mean() > 10  # the hole was painted


def test_without_a_mask_the_whole_image_is_edited_and_fidelity_keeps_more(client: openai.OpenAI) -> None:
    source = _picture()

    def distance(fidelity: str) -> float:
        result = client.images.edit(
            image=_file(source),
            prompt="mountains and waves",
            input_fidelity=fidelity,  # type: ignore[arg-type]
        )
        edited = np.asarray(_decoded(result.data[0].b64_json).convert("RGB")).astype(int)
        return float(np.abs(edited - source).mean())

    low, high = distance("low"), distance("high")
    assert 0 < high < low


def test_several_images_n_outputs_and_usage(client: openai.OpenAI) -> None:
    files = [_file(_picture(seed), name=f"{seed}.png") for seed in range(3)]
    result = client.images.edit(image=files, prompt="stars", n=2, size="256x256", quality="low")
    encoded = [item.b64_json for item in result.data]
    assert len(set(encoded)) == 2
    assert all(_decoded(b64).size == (256, 256) for b64 in encoded)
    assert result.usage is not None and result.usage.input_tokens_details.image_tokens > 0
    one = client.images.edit(image=files[:1], prompt="stars", size="256x256", quality="low")
    assert one.data[0].b64_json != encoded[0]  # the other images are mixed in


@pytest.mark.parametrize(
    ("output_format", "source_format"), [("png", "WEBP"), ("jpeg", "PNG"), ("webp", "JPEG")]
)
def test_every_output_format_from_every_input_format(
    client: openai.OpenAI, output_format: str, source_format: str
) -> None:
    image = _file(_picture(), source_format, f"in.{source_format.lower()}")
    result = client.images.edit(image=image, prompt="a cat", output_format=output_format)  # type: ignore[arg-type]
    assert _decoded(result.data[0].b64_json).format == output_format.upper()
    assert result.output_format == output_format


def test_url_answers_are_fetchable(client: openai.OpenAI) -> None:
    result = client.images.edit(image=_file(_picture()), prompt="a cat", response_format="url")
    fetched = httpx.get(result.data[0].url or "")
    assert fetched.status_code == 200 and Image.open(io.BytesIO(fetched.content)).size == (WIDTH, HEIGHT)


@pytest.mark.parametrize("partial_images", [0, 2])
def test_streaming_sends_partial_images_then_completed(client: openai.OpenAI, partial_images: int) -> None:
    kept, mask = _mask()
    source = _picture()
    events = list(
        client.images.edit(
            image=_file(source), mask=mask, prompt="circles", stream=True, partial_images=partial_images
        )
    )
    partials = [e for e in events if e.type == "image_edit.partial_image"]
    completed = [e for e in events if e.type == "image_edit.completed"]
    assert [p.partial_image_index for p in partials] == list(range(partial_images))
    assert len(completed) == 1 and events[-1] is completed[0]
    for b64 in [p.b64_json for p in partials] + [completed[0].b64_json]:
        assert np.array_equal(np.asarray(_decoded(b64).convert("RGB"))[kept], source[kept])
    assert len({p.b64_json for p in partials} | {completed[0].b64_json}) == partial_images + 1


def _uploads(stack: Stack) -> list[Path]:
    folder = Path(stack.env["INFERQ_DATA_DIR"]) / "uploads"
    return sorted(folder.glob("upload-*")) if folder.is_dir() else []


def test_uploads_reach_the_worker_through_storage_not_redis(
    client: openai.OpenAI, alice: wriftai.Client, stack: Stack
) -> None:
    before = set(_uploads(stack))
    kept, mask = _mask()
    raw = client.images.with_raw_response.edit(image=_file(_picture()), mask=mask, prompt="x")
    prediction = alice.predictions.get(raw.headers["x-prediction-id"])
    names = [*prediction["input"]["images"], prediction["input"]["mask"]]
    assert all(name.startswith("upload-") for name in names)
    assert {path.name for path in set(_uploads(stack)) - before} == set(names)


def _png(size: tuple[int, int]) -> bytes:
    return _file(np.zeros((size[1], size[0], 3), np.uint8))[1]


def _bomb() -> bytes:
    """A PNG claiming 20000x20000 pixels in a few hundred bytes."""
    width = height = 20000
    header = b"\x89PNG\r\n\x1a\n"

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    rows = zlib.compress(b"\x00" * (width + 1) * 16)
    return header + chunk(b"IHDR", ihdr) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("files", "param", "status"),
    [
        ({"image": ("x.png", b"not an image at all", "image/png")}, "image", 400),
        ({"image": ("x.png", _png((64, 64))[:-40], "image/png")}, "image", 400),
        ({"image": ("x.png", _bomb(), "image/png")}, "image", 400),
        ({"image": ("x.gif", b"GIF89a" + b"\x00" * 40, "image/gif")}, "image", 400),
        ({"image": ("x.png", _png((WIDTH, HEIGHT))), "mask": ("m.png", _png((64, 64)))}, "mask", 400),
        ({"image": ("x.png", _png((WIDTH, HEIGHT))), "mask": ("m.png", _png((WIDTH, HEIGHT)))}, "mask", 400),
        (
            [("image[]", ("x.png", _png((64, 64)))), ("image[]", ("y.png", _png((64, 64))[:-40]))],
            "image",
            400,
        ),
        ({"image": ("x.png", b"not an image at all"), "mask": ("m.png", _png((64, 64)))}, "image", 400),
        ([("image[]", ("x.png", _png((64, 64))))] * 17, "image", 422),
        ({}, "image", 422),
    ],
)
def test_bad_uploads_are_refused_and_nothing_is_stored(
    stack: Stack, redis_client: redis.Redis, files: object, param: str, status: int
) -> None:
    before = _uploads(stack)
    with stack.http() as http:
        response = http.post("/v1/images/edits", data={"prompt": "x"}, files=files)  # type: ignore[arg-type]
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert stored(redis_client) == [] and _uploads(stack) == before


@pytest.mark.parametrize(
    ("data", "param"),
    [({"colour": "red"}, "colour"), ({"n": "11"}, "n"), ({"input_fidelity": "max"}, "input_fidelity")],
)
def test_bad_fields_are_422_naming_them(
    client: openai.OpenAI, redis_client: redis.Redis, data: dict[str, str], param: str
) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        client.images.edit(image=_file(_picture()), prompt="x", extra_body=data)
    assert raised.value.param == param
    assert stored(redis_client) == []


def test_a_model_that_cannot_edit_is_a_400_naming_it(
    client: openai.OpenAI, redis_client: redis.Redis
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.images.edit(model="inferq/echo", image=_file(_picture()), prompt="x")
    assert raised.value.code == "model_not_supported" and "inferq/echo" in raised.value.message
    assert stored(redis_client) == []


def test_the_models_api_flags_the_versions_that_edit(alice: wriftai.Client) -> None:
    sketch = alice.model_versions.get("inferq/sketch:1")
    assert sketch["compatibilities"].get("openai_images_edits") is True
    echo = alice.model_versions.get("inferq/echo:1")
    assert echo["compatibilities"].get("openai_images_edits") is False


def test_a_model_that_misses_the_deadline_gets_504_and_is_cancelled(
    client: openai.OpenAI, stack: Stack, start_worker: Callable[..., str]
) -> None:
    start_worker(["tests.slow-images"])
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as raised:
        client.images.edit(model="tests/slow-images", image=_file(_picture()), prompt="never")
    response = raised.value.response
    assert response.status_code == 504 and response.headers["x-should-retry"] == "false"
    assert time.monotonic() - started < 3 * float(stack.env["INFERQ_SYNC_TIMEOUT"])  # no retries
    prediction_id = response.headers["x-prediction-id"]
    assert wait_for_status(stack.env["INFERQ_REDIS_URL"], prediction_id, {"cancelled"}) == "cancelled"

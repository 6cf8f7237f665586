"""/v1/files with the official openai client: upload, list, get, content, delete, limits, expiry, keys."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
import redis

from api.signing import UrlSigner, derive_key
from common.config import Settings
from common.storage import OPENAI_FILES, LocalStorage
from common.store import keys
from common.store.files import FileStore
from tests.conftest import KEYS
from tests.integration.conftest import Stack

LINES = [
    {"custom_id": f"request-{n}", "method": "POST", "url": "/v1/embeddings", "body": {"input": f"text {n}"}}
    for n in range(3)
]
JSONL = "".join(json.dumps(line) + "\n" for line in LINES).encode()
DAY = 24 * 3600


def connect(base_url: str, owner: str = "alice") -> openai.OpenAI:
    return openai.OpenAI(api_key=KEYS[owner], base_url=f"{base_url}/v1", max_retries=0)


@pytest.fixture
def alice(stack: Stack) -> Iterator[openai.OpenAI]:
    with connect(stack.base_url) as client:
        yield client


@pytest.fixture
def bob(stack: Stack) -> Iterator[openai.OpenAI]:
    with connect(stack.base_url, "bob") as client:
        yield client


def uploads(data_dir: str | Path) -> list[str]:
    """The names of the uploaded files' bytes on disk."""
    root = Path(data_dir) / OPENAI_FILES
    return sorted(path.name for path in root.iterdir()) if root.is_dir() else []


def file_keys(client: redis.Redis) -> list[str]:
    """Every Redis key an uploaded file makes."""
    return sorted(client.keys("inferq:file*") + client.keys("inferq:owner:*:files"))


def test_a_jsonl_file_round_trips(stack: Stack, alice: openai.OpenAI) -> None:
    created = alice.files.create(file=("requests.jsonl", JSONL), purpose="batch")
    assert created.id.startswith("file-") and created.object == "file" and created.status == "processed"
    assert (created.bytes, created.filename, created.purpose) == (len(JSONL), "requests.jsonl", "batch")
    assert created.expires_at == created.created_at + 30 * DAY  # batch input's default, as OpenAI's

    assert alice.files.retrieve(created.id) == created
    content = alice.files.content(created.id)
    assert content.content == JSONL and content.text == JSONL.decode()
    assert content.response.headers["content-type"].startswith("application/jsonl")
    assert [f.id for f in alice.files.list()] == [created.id]
    assert created.id in uploads(stack.env["INFERQ_DATA_DIR"])

    deleted = alice.files.delete(created.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (created.id, "file", True)
    with pytest.raises(openai.NotFoundError):
        alice.files.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        alice.files.delete(created.id)
    assert list(alice.files.list()) == []
    assert created.id not in uploads(stack.env["INFERQ_DATA_DIR"])


def test_expiry_is_as_asked_and_other_purposes_are_kept(alice: openai.OpenAI, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"not json at all \xff")
    with path.open("rb") as f:
        kept = alice.files.create(file=f, purpose="user_data")
    assert kept.expires_at is None and kept.filename == "notes.txt"
    assert alice.files.content(kept.id).content == b"not json at all \xff"
    hour = alice.files.create(
        file=("in.jsonl", JSONL), purpose="batch", expires_after={"anchor": "created_at", "seconds": 3600}
    )
    assert hour.expires_at == hour.created_at + 3600


def test_listing_filters_orders_and_pages(alice: openai.OpenAI) -> None:
    made = [
        alice.files.create(file=(f"{n}.jsonl", JSONL), purpose="batch" if n % 2 else "user_data").id
        for n in range(5)
    ]
    newest = made[::-1]
    assert [f.id for f in alice.files.list()] == newest
    assert [f.id for f in alice.files.list(order="asc")] == made
    assert [f.id for f in alice.files.list(purpose="batch")] == [made[3], made[1]]

    page = alice.files.list(limit=2)
    assert [f.id for f in page.data] == newest[:2] and page.has_more
    following = alice.files.list(limit=2, after=newest[1])
    assert [f.id for f in following.data] == newest[2:4] and following.has_more
    last = alice.files.list(limit=2, after=newest[3])
    assert [f.id for f in last.data] == newest[4:] and not last.has_more
    assert [f.id for f in alice.files.list(limit=2)] == newest  # the client follows `after` by itself
    assert [f.id for f in alice.files.list(limit=2, order="asc", after=made[1])] == made[2:]

    body = httpx.get(
        f"{alice.base_url}files", params={"limit": 2}, headers={"Authorization": f"Bearer {KEYS['alice']}"}
    ).json()
    assert body["object"] == "list" and (body["first_id"], body["last_id"]) == (newest[0], newest[1])


def test_another_key_gets_404_as_for_a_missing_file(alice: openai.OpenAI, bob: openai.OpenAI) -> None:
    created = alice.files.create(file=("in.jsonl", JSONL), purpose="batch")
    missing = "file-" + "0" * 32
    for file_id in (created.id, missing, "not-an-id"):
        for call in (bob.files.retrieve, bob.files.content, bob.files.delete):
            with pytest.raises(openai.NotFoundError) as raised:
                call(file_id)
            assert raised.value.code == "not_found" and raised.value.type == "not_found_error"
    assert list(bob.files.list()) == []
    assert alice.files.retrieve(created.id).id == created.id


@pytest.mark.parametrize(
    ("fields", "files", "param", "code"),
    [
        ({"purpose": "batch"}, {}, "file", "invalid_request"),
        ({"purpose": "batch"}, {"other": ("in.jsonl", JSONL)}, "file", "invalid_request"),
        ({"purpose": "batch", "file": "in a field, not a file part"}, {}, "file", "invalid_request"),
        ({}, {"file": ("in.jsonl", JSONL)}, "purpose", "invalid_request"),
        ({"purpose": "batch_output"}, {"file": ("in.jsonl", JSONL)}, "purpose", "invalid_request"),
        ({"purpose": "nonsense"}, {"file": ("in.jsonl", JSONL)}, "purpose", "invalid_request"),
        ({"purpose": "user_data"}, {"file": ("empty.txt", b"")}, "file", "invalid_request"),
        ({"purpose": "batch"}, {"file": ("in.jsonl", b"\n\n")}, "file", "invalid_file"),
        ({"purpose": "batch"}, {"file": ("in.jsonl", JSONL + b"not json\n")}, "file", "invalid_file"),
        ({"purpose": "batch"}, {"file": ("in.jsonl", JSONL + b"[1, 2]\n")}, "file", "invalid_file"),
        ({"purpose": "batch"}, {"file": ("in.jsonl", b'{"a": NaN}\n')}, "file", "invalid_file"),
        ({"purpose": "batch"}, {"file": ("in.jsonl", b'{"a": "\xff"}\n')}, "file", "invalid_file"),
        (
            {"purpose": "batch"},
            {"file": ("in.json", json.dumps(LINES, indent=1).encode())},
            "file",
            "invalid_file",
        ),
        (
            {"purpose": "batch", "expires_after[anchor]": "created_at", "expires_after[seconds]": "60"},
            {"file": ("in.jsonl", JSONL)},
            "expires_after.seconds",
            "invalid_request",
        ),
        (
            {"purpose": "batch", "expires_after[anchor]": "created_at", "expires_after[seconds]": " 3_600"},
            {"file": ("in.jsonl", JSONL)},
            "expires_after.seconds",
            "invalid_request",
        ),
        (
            {"purpose": "batch", "expires_after[seconds]": "3600"},
            {"file": ("in.jsonl", JSONL)},
            "expires_after.anchor",
            "invalid_request",
        ),
    ],
)
def test_a_bad_upload_is_400_and_stores_nothing(
    stack: Stack,
    redis_client: redis.Redis,
    fields: dict[str, str],
    files: dict[str, tuple[str, bytes]],
    param: str,
    code: str,
) -> None:
    before = uploads(stack.env["INFERQ_DATA_DIR"])
    with stack.http() as http:
        response = http.post("/v1/files", data=fields, files=files or None)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    assert file_keys(redis_client) == []
    assert uploads(stack.env["INFERQ_DATA_DIR"]) == before


def test_the_openai_client_reads_the_refusal(alice: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        alice.files.create(file=("in.jsonl", b'{"custom_id": "a"}\n{"custom_id": \n'), purpose="batch")
    assert raised.value.code == "invalid_file" and raised.value.param == "file"
    assert "Line 2" in raised.value.message
    with pytest.raises(openai.BadRequestError) as raised:
        alice.files.create(file=("in.jsonl", JSONL), purpose="batch_output")  # type: ignore[arg-type]
    assert raised.value.param == "purpose"


@pytest.fixture
def small_limits(own_api: Callable[..., str]) -> Iterator[openai.OpenAI]:
    """An API whose files may hold 3 lines and 1,000 bytes, and whose other bodies 1,024 bytes."""
    base_url = own_api(INFERQ_MAX_FILE_LINES="3", INFERQ_MAX_FILE_BYTES="1000", INFERQ_MAX_BODY_BYTES="1024")
    with connect(base_url) as client:
        yield client


def test_the_line_and_size_limits_refuse_and_store_nothing(
    small_limits: openai.OpenAI, redis_client: redis.Redis
) -> None:
    four = JSONL + JSONL[: JSONL.index(b"\n") + 1]
    with pytest.raises(openai.BadRequestError) as raised:
        small_limits.files.create(file=("in.jsonl", four), purpose="batch")
    assert raised.value.code == "invalid_file" and "more than 3" in raised.value.message
    with pytest.raises(openai.APIStatusError) as too_large:
        small_limits.files.create(file=("big.txt", b"x" * 1001), purpose="user_data")
    assert too_large.value.status_code == 413 and too_large.value.code == "file_too_large"
    with pytest.raises(openai.APIStatusError) as far_too_large:  # refused before the body is read
        small_limits.files.create(file=("huge.txt", b"x" * 200_000), purpose="user_data")
    assert far_too_large.value.status_code == 413
    assert file_keys(redis_client) == []

    exact = small_limits.files.create(file=("full.txt", b"y" * 1000), purpose="user_data")
    assert exact.bytes == 1000  # over INFERQ_MAX_BODY_BYTES with its framing, and still taken
    assert small_limits.files.create(file=("in.jsonl", JSONL), purpose="batch").bytes == len(JSONL)
    with pytest.raises(openai.APIStatusError) as body_limit:  # which still holds everywhere else
        small_limits.embeddings.create(model="inferq/hash-embed", input="x" * 2000)
    assert body_limit.value.status_code == 413


def test_a_file_over_the_general_body_limit_uploads_whole(stack: Stack, alice: openai.OpenAI) -> None:
    line = json.dumps({"custom_id": "x", "body": {"input": "y" * 1000}}).encode() + b"\n"
    big = line * (12 * 1024 * 1024 // len(line))  # 12 MiB, over the default 10 MiB body limit
    created = alice.files.create(file=("big.jsonl", io.BytesIO(big)), purpose="batch")
    assert created.bytes == len(big)
    assert alice.files.content(created.id).content == big


def lapse(client: redis.Redis, file_id: str) -> None:
    """Expires a file now, as the clock passing its ``expires_at`` would (OpenAI's least is an hour)."""
    client.hset(keys.file(file_id), "expires_at", "1")
    client.zadd(keys.files_expiry(), {file_id: 1})


def test_an_expired_file_is_gone_and_swept(
    stack: Stack, alice: openai.OpenAI, redis_client: redis.Redis
) -> None:
    gone = alice.files.create(file=("in.jsonl", JSONL), purpose="batch")
    kept = alice.files.create(file=("in.jsonl", JSONL), purpose="batch")
    lapse(redis_client, gone.id)
    for call in (alice.files.retrieve, alice.files.content, alice.files.delete):
        with pytest.raises(openai.NotFoundError):
            call(gone.id)
    assert [f.id for f in alice.files.list()] == [kept.id]

    data_dir = Path(stack.env["INFERQ_DATA_DIR"])
    settings = Settings.from_env(stack.env)
    assert (
        FileStore(redis_client, LocalStorage(data_dir / OPENAI_FILES), settings).sweep() == 1
    )  # as the API's ticker
    assert gone.id not in uploads(data_dir) and kept.id in uploads(data_dir)
    assert not redis_client.exists(keys.file(gone.id))
    assert alice.files.content(kept.id).content == JSONL


def test_image_links_and_uploaded_files_never_cross(stack: Stack, alice: openai.OpenAI) -> None:
    """Signed image links live at ``/files/<name>``, uploads at ``/v1/files/<id>``: neither serves
    the other."""
    uploaded = alice.files.create(file=("in.jsonl", JSONL), purpose="batch")
    image = alice.images.generate(prompt="a red circle", size="64x64", response_format="url")
    assert image.data and image.data[0].url
    link = httpx.URL(image.data[0].url)
    name = link.path.rsplit("/", 1)[1]
    assert httpx.get(str(link)).status_code == 200

    auth = {"Authorization": f"Bearer {KEYS['alice']}"}
    for path in (f"/v1/files/{name}", f"/v1/files/{name}/content"):
        refused = httpx.get(f"{stack.base_url}{path}", params=dict(link.params), headers=auth)
        assert refused.status_code == 404, refused.text
    signed = UrlSigner(derive_key(KEYS.values()), ttl=60).sign(uploaded.id)  # a genuine link, to an upload
    for query in ({}, signed):
        refused = httpx.get(f"{stack.base_url}/files/{uploaded.id}", params=query, headers=auth)
        assert refused.status_code in (403, 404) and JSONL not in refused.content
    assert httpx.get(f"{stack.base_url}/files/{uploaded.id}", params=signed).status_code == 404

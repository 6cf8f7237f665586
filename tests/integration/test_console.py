"""The console in a real browser: Debian's ``chromium``, headless, driven by Playwright.

Each test signs in with a test key, works the console as a person would, and
saves a screenshot of the page under the run's temporary directory (the
paths are printed; ``pytest -s`` shows them). Waiting is done by Playwright's
``expect``, which retries until the page shows the state or the timeout ends.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, expect, sync_playwright

from tests.conftest import KEYS
from tests.integration.conftest import Stack
from tests.integration.receivers import receiving

LONG = 60_000
"""Milliseconds the browser may wait for a state (generous: the machine may be busy)."""


def chromium_path() -> str:
    """The system browser: ``INFERQ_CHROMIUM``, else ``chromium`` on the PATH (apt-get install chromium)."""
    found = os.environ.get("INFERQ_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("no chromium: apt-get install -y chromium (make test does when it can)")
    return found


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=stack.base_url)
    context.set_default_timeout(LONG)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if _is_bug(message) else None)
    yield page
    context.close()
    assert errors == [], f"the page logged errors: {errors}"


def _is_bug(message: ConsoleMessage) -> bool:
    """A console error other than the browser's note of a refused request (a 401 for a bad key)."""
    return message.type == "error" and not message.text.startswith("Failed to load resource")


def shoot(page: Page, screenshots: Path, name: str) -> Path:
    path = screenshots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def sign_in(page: Page, owner: str = "alice") -> None:
    page.goto("/")
    page.get_by_label("API key").fill(KEYS[owner])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("owner")).to_have_text(owner)


def test_signing_in_keeps_the_key_for_the_tab_and_refuses_a_bad_one(page: Page, screenshots: Path) -> None:
    page.goto("/")
    expect(page.get_by_role("link", name="API docs")).to_have_attribute("href", "/docs")
    shoot(page, screenshots, "sign-in")
    page.get_by_label("API key").fill("sk-nobody")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    sign_in(page)
    assert page.evaluate("sessionStorage.getItem('inferq.apiKey')") == KEYS["alice"]
    page.reload()
    expect(page.get_by_test_id("owner")).to_have_text("alice")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()


def test_the_playground_runs_sketch_and_shows_its_image(page: Page, screenshots: Path) -> None:
    sign_in(page)
    page.goto("/#/playground")
    expect(page.get_by_label("Model")).to_have_value("inferq/sketch")
    page.get_by_label("prompt *").fill("a lighthouse at dusk")
    page.get_by_label("width *").fill("256")
    page.get_by_label("height *").fill("256")
    page.get_by_label("partial_images").fill("2")
    expect(page.get_by_label("quality")).to_have_value('"medium"')
    page.get_by_role("button", name="Run").click()
    image = page.get_by_test_id("output-image")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.naturalWidth") == 256
    expect(page.locator("#pg-result .status")).to_have_text("succeeded")
    expect(page.locator("#snippet")).to_contain_text("curl -N")
    page.get_by_role("tab", name="Python (openai)").click()
    expect(page.locator("#snippet")).to_contain_text("client.images.generate(")
    shoot(page, screenshots, "playground")


def test_the_playground_shows_an_embeddings_dimensions_and_norm(page: Page) -> None:
    sign_in(page)
    page.goto("/#/playground")
    page.get_by_label("Model").select_option("inferq/hash-embed")
    page.get_by_label("input *").fill("first\nsecond")
    page.get_by_role("button", name="Run").click()
    table = page.get_by_test_id("embeddings")
    expect(table).to_contain_text("2 vector(s) of 64 dimensions")
    expect(table.locator("tbody tr").first).to_contain_text("1.0000")


def test_a_prediction_goes_from_queued_to_succeeded_live(
    page: Page, stack: Stack, start_worker: Callable[..., str], tmp_path: Path, screenshots: Path
) -> None:
    sign_in(page)
    with stack.client() as client:
        created = client.predictions.create(model="tests/idle", input={"record_to": str(tmp_path / "runs")})
    page.goto("/#/predictions")
    row = page.locator(f"tr[data-id='{created['id']}']")
    expect(row.locator(".status")).to_have_text("pending")
    shoot(page, screenshots, "predictions")
    row.get_by_role("link").click()
    expect(page.locator("h1")).to_contain_text(created["id"])
    expect(page.locator(".row .status")).to_have_text("pending")
    start_worker(["tests.idle"])
    expect(page.locator(".row .status")).to_have_text("succeeded")
    expect(page.get_by_test_id("timeline")).to_contain_text("ran ")
    expect(page.get_by_role("button", name="Cancel")).to_be_disabled()
    shoot(page, screenshots, "prediction")


def test_a_running_prediction_is_cancelled_from_its_page(page: Page, stack: Stack) -> None:
    sign_in(page)
    with stack.client() as client:
        created = client.predictions.create(
            model="inferq/echo", input={"prompt": "never mind", "delay_s": 120}, stream=True
        )
    page.goto(f"/#/predictions/{created['id']}")
    expect(page.locator(".row .status")).to_have_text("started")
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator(".row .status")).to_have_text("cancelled")


def test_a_prediction_page_shows_its_webhook_deliveries(page: Page, stack: Stack, screenshots: Path) -> None:
    sign_in(page)
    with receiving() as receiver:
        receiver.failures, receiver.failure_status = 1, 500
        with stack.client() as client:
            created = client.predictions.create(
                model="inferq/echo", input={"prompt": "hooked"}, webhook={"url": receiver.url}, wait=True
            )
        receiver.wait_for_terminal()
        page.goto(f"/#/predictions/{created['id']}")
        table = page.get_by_role("table", name="Webhook delivery attempts")
        expect(table.get_by_role("columnheader", name="Answer")).to_be_visible()
        expect(table.locator("tbody tr").first).to_contain_text("HTTP 500")
        expect(table.locator("tbody tr").first).to_contain_text("will retry")
        delivered = table.locator("tbody tr[data-outcome=delivered]")
        expect(delivered.last).to_contain_text("succeeded")  # refreshed until the last one is in
        expect(delivered.last).to_contain_text("HTTP 200")
        expect(page.get_by_text("Nothing waits for delivery.")).to_be_visible()
        shoot(page, screenshots, "prediction-webhooks")


def test_the_queues_page_follows_a_queue_under_load(
    page: Page, stack: Stack, start_worker: Callable[..., str], tmp_path: Path, screenshots: Path
) -> None:
    sign_in(page)
    with stack.client() as client:
        for i in range(6):
            client.predictions.create(
                model="tests/idle", input={"record_to": str(tmp_path / "runs"), "seconds": 0.2, "n": i}
            )
    page.goto("/#/queues")
    card = page.locator("section[data-queue='tests.idle']")
    expect(card.get_by_test_id("queued")).to_have_text("6")
    expect(card.get_by_test_id("workers")).to_have_text("0")
    expect(card.get_by_test_id("default-queued")).to_have_text("6")
    shoot(page, screenshots, "queues-loaded")
    start_worker(["tests.idle"])
    expect(card.get_by_test_id("workers")).to_have_text("1")
    expect(card.get_by_test_id("queued")).to_have_text("0")
    expect(card.get_by_test_id("throughput")).to_contain_text("6 in")
    expect(card.get_by_test_id("run-latency")).not_to_have_text("—")
    expect(card.locator("svg polyline")).to_have_count(2)
    page.get_by_label("Only queues with work or workers").check()
    expect(page.locator("section[data-queue='tests.crashes']")).to_have_count(0)
    expect(card).to_be_visible()
    shoot(page, screenshots, "queues")


def test_the_batches_page_follows_a_batch_to_completion(page: Page, stack: Stack, screenshots: Path) -> None:
    sign_in(page)
    oai = openai.OpenAI(api_key=KEYS["alice"], base_url=f"{stack.base_url}/v1", max_retries=0)
    lines = [
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "inferq/hash-embed", "input": f"passage {i}"},
        }
        for i in range(30)
    ]
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    upload = oai.files.create(file=("in.jsonl", io.BytesIO(data)), purpose="batch")
    batch = oai.batches.create(input_file_id=upload.id, endpoint="/v1/embeddings", completion_window="24h")
    oai.close()
    page.goto("/#/batches")
    row = page.locator(f"tr[data-id='{batch.id}']")
    expect(row.locator(".status")).to_have_text("completed")
    expect(row.get_by_test_id("progress")).to_have_attribute("value", "30")
    expect(row.get_by_test_id("counts")).to_have_text("30 of 30 requests done (0 failed)")
    with page.expect_download() as download:
        row.get_by_role("link", name="output").click()
    assert len(Path(download.value.path()).read_text().splitlines()) == 30
    shoot(page, screenshots, "batches")


def test_the_console_works_by_keyboard_at_phone_width(page: Page, screenshots: Path) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    expect(page.get_by_label("API key")).to_be_focused()
    page.keyboard.type(KEYS["alice"])
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("owner")).to_have_text("alice")
    for view in ("playground", "predictions", "queues", "batches"):
        page.goto(f"/#/{view}")
        expect(page.get_by_role("link", name=view.capitalize())).to_have_attribute("aria-current", "page")
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), view
    page.goto("/#/playground")
    page.reload()
    expect(page.get_by_label("Model")).to_have_value("inferq/sketch")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Playground")).to_be_focused()
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page.get_by_role("link", name="Predictions")).to_have_attribute("aria-current", "page")
    shoot(page, screenshots, "playground-phone")

"""Operations: readiness, metrics, the API description, rate limits, backpressure, logs, shutdown."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import redis
import wriftai
from openapi_spec_validator import validate
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import KEYS, stored
from tests.integration.conftest import Stack, pool_children, wait_for_status

TERMINAL = {"succeeded", "failed", "cancelled", "abandoned"}
ECHO_ONLY = """models:
  - owner: inferq
    name: echo
    versions: [{number: 1, adapter: echo}]
"""


def _metric(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_readyz_turns_unready_when_the_only_worker_stops(own_api: Callable[..., str], tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(ECHO_ONLY)
    base = own_api(INFERQ_MODELS=str(models))
    launcher = own_api.launcher  # type: ignore[attr-defined]
    assert httpx.get(f"{base}/readyz").status_code == 503  # no worker yet

    worker = launcher.start_worker(["inferq.echo", "inferq.webhooks"])
    ready = httpx.get(f"{base}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "redis": True,
        "queues": {"inferq.echo": 1, "inferq.webhooks": 1},
    }

    launcher.stop(worker)
    unready = httpx.get(f"{base}/readyz")
    assert unready.status_code == 503 and unready.json()["queues"]["inferq.echo"] == 0
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}


def test_metrics_move_as_predictions_run(
    stack: Stack, alice: wriftai.Client, start_worker: Callable[..., str]
) -> None:
    start_worker(["tests.runs"])
    before = httpx.get(f"{stack.base_url}/metrics").text
    for _ in range(3):
        alice.predictions.create(model="inferq/echo", input={"prompt": "counted"}, wait=True)
    after = httpx.get(f"{stack.base_url}/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    echo = {"model": "inferq/echo"}
    assert _metric(text, "inferq_predictions_created_total", **echo) == 3  # Redis was flushed before
    assert _metric(text, "inferq_predictions_finished_total", status="succeeded", **echo) == 3
    assert _metric(text, "inferq_prediction_run_seconds_count", **echo) == 3
    assert _metric(text, "inferq_prediction_wait_seconds_bucket", le="+Inf", **echo) == 3
    assert _metric(text, "inferq_live_workers", queue="tests.runs") == 1
    assert _metric(text, "inferq_queue_depth", queue="tests.idle") == 0
    route = {"method": "POST", "route": "/v1/predictions", "status": "201"}
    assert (
        _metric(text, "inferq_http_requests_total", **route)
        >= _metric(before, "inferq_http_requests_total", **route) + 3
    )
    assert (
        _metric(text, "inferq_http_request_duration_seconds_count", method="POST", route="/v1/predictions")
        > 0
    )


def test_metrics_can_require_a_key(own_api: Callable[..., str]) -> None:
    base = own_api(INFERQ_METRICS_AUTH="1")
    assert httpx.get(f"{base}/metrics").status_code == 401
    assert httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {KEYS['bob']}"}).status_code == 200


def test_the_openapi_document_is_valid_3_1_and_lists_every_route(stack: Stack) -> None:
    document = httpx.get(f"{stack.base_url}/openapi.json").json()
    validate(document)  # raises unless it is a valid OpenAPI 3.1 document
    assert document["openapi"] == "3.1.0"
    documented = {
        (method.upper(), path) for path, operations in document["paths"].items() for method in operations
    }
    served = _served_routes(stack)
    assert served and served <= documented, served - documented
    create = document["paths"]["/v1/predictions"]["post"]
    assert {"201", "422"} <= set(create["responses"])
    assert "x-request-id" in create["responses"]["201"].get("headers", {})


def _served_routes(stack: Stack) -> set[tuple[str, str]]:
    """The routes the running API answers, read from its own URL map (in a subprocess-free way)."""
    import os

    from api import create_app
    from common.config import Settings

    environment = {k: v for k, v in stack.env.items() if k.startswith("INFERQ_")}
    app = create_app(Settings.from_env(environment), background=False)
    served = set()
    for rule in app.url_map.iter_rules():
        # Pages for people in a browser (the docs, the console at /) are not API operations.
        if rule.endpoint in {
            "static",
            "docs_static.swagger_ui_file",
            "console.index",
            "console.asset",
        } or rule.endpoint.startswith("api-docs."):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        served |= {(method, path) for method in rule.methods or () if method not in {"HEAD", "OPTIONS"}}
    del os
    return served


def test_docs_render_offline(stack: Stack) -> None:
    page = httpx.get(f"{stack.base_url}/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    scripts = re.findall(r'src="([^"]+)"', page.text) + re.findall(r'href="([^"]+\.css)"', page.text)
    assert scripts and all(s.startswith("/docs/static/") for s in scripts)  # nothing from a CDN
    for script in scripts:
        served = httpx.get(f"{stack.base_url}{script}")
        assert served.status_code == 200 and len(served.content) > 1000, script
    assert "/openapi.json" in page.text


def test_rate_limits_answer_429_with_the_headers_the_client_needs(own_api: Callable[..., str]) -> None:
    base = own_api(INFERQ_RATE_LIMIT="3 per 2 seconds")
    headers = {"Authorization": f"Bearer {KEYS['alice']}"}
    first = httpx.get(f"{base}/v1/predictions", headers=headers)
    assert first.headers["x-ratelimit-limit"] == "3" and first.headers["x-ratelimit-remaining"] == "2"
    assert abs(int(first.headers["x-ratelimit-reset"]) - time.time()) < 5  # unix seconds
    for _ in range(2):
        assert httpx.get(f"{base}/v1/predictions", headers=headers).status_code == 200
    limited = httpx.get(f"{base}/v1/predictions", headers=headers)
    assert limited.status_code == 429
    assert int(limited.headers["x-ratelimit-reset"]) >= int(time.time())
    assert int(limited.headers["Retry-After"]) >= 0
    assert limited.json()["error"]["type"] == "rate_limit_error"
    other = httpx.get(f"{base}/v1/predictions", headers={"Authorization": f"Bearer {KEYS['bob']}"})
    assert other.status_code == 200  # limits are per key

    with httpx.Client() as http:  # the official client waits for the reset and retries by itself
        client = wriftai.Client(access_token=KEYS["alice"], api_base_url=f"{base}/v1", http_client=http)
        assert client.predictions.list().items == []
    assert httpx.get(f"{base}/healthz").status_code == 200  # health is not limited


def test_a_full_queue_answers_429_and_stores_nothing(
    own_api: Callable[..., str], redis_client: redis.Redis
) -> None:
    base = own_api(INFERQ_MAX_QUEUE_DEPTH="2")
    headers = {"Authorization": f"Bearer {KEYS['alice']}"}
    body = {"model": "tests/idle", "input": {"record_to": "/dev/null"}}
    accepted = [httpx.post(f"{base}/v1/predictions", json=body, headers=headers) for _ in range(2)]
    assert [r.status_code for r in accepted] == [201, 201]
    refused = httpx.post(f"{base}/v1/predictions", json=body, headers=headers)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "queue_full"
    assert int(refused.headers["x-ratelimit-reset"]) > time.time() and refused.headers["Retry-After"]
    assert len(redis_client.keys("inferq:prediction:*")) == 2  # only the two accepted ones
    for response in accepted:
        httpx.post(f"{base}/v1/predictions/{response.json()['id']}/cancel", headers=headers)
    assert stored(redis_client)  # (the cancelled two are kept for their retention)


def test_logs_are_json_lines_naming_the_request_and_prediction(stack: Stack, alice: wriftai.Client) -> None:
    done = alice.predictions.create(model="inferq/echo", input={"prompt": "logged"}, wait=True)
    # (the worker logs the ending after recording it, so the line can follow the response)
    about_it = _lines(stack.logs / "default@tests.log", lambda line: done["id"] in str(line.get("message")))
    # one line per prediction, its recorder's; Celery's "received" / "succeeded in" only at DEBUG
    assert [(line["logger"], line["prediction_id"]) for line in about_it] == [
        ("workers.outcomes", done["id"])
    ]
    api_lines = _json_lines(stack.logs / "api.log")
    assert api_lines and all({"ts", "level", "logger", "message"} <= set(line) for line in api_lines)


def test_each_answered_request_gets_one_access_line_naming_it(stack: Stack) -> None:
    request_id = "access-line-check"
    with stack.http() as http:
        response = http.post(
            "/v1/predictions",
            json={"model": "inferq/echo", "input": {"prompt": "logged"}},
            headers={"Prefer": "wait", "X-Request-Id": request_id},
        )
    assert response.status_code == 201 and response.headers["x-request-id"] == request_id
    # (written once the response has gone out)
    [line] = _lines(stack.logs / "api.log", lambda line: line.get("request_id") == request_id)
    assert line["logger"] == "inferq.access" and line["message"] == "POST /v1/predictions 201"
    assert (line["method"], line["path"], line["status"]) == ("POST", "/v1/predictions", 201)
    assert line["prediction_id"] == response.json()["id"]
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0


def _lines(path: Path, wanted: Callable[[dict[str, object]], bool]) -> list[dict[str, object]]:
    """The JSON lines of the log at ``path`` that are ``wanted``, once there are any (10 s at most)."""
    deadline = time.monotonic() + 10
    while not (found := [line for line in _json_lines(path) if wanted(line)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def _json_lines(path: Path) -> list[dict[str, object]]:
    found = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def test_a_stopping_worker_lets_its_prediction_finish(
    alice: wriftai.Client, stack: Stack, start_worker: Callable[..., str], tmp_path: Path
) -> None:
    name = start_worker(["tests.runs"], INFERQ_SHUTDOWN_GRACE="20")
    record = tmp_path / "runs.txt"
    running = alice.predictions.create(model="tests/runs", input={"record_to": str(record), "seconds": 2})
    wait_for_status(stack.env["INFERQ_REDIS_URL"], running["id"], {"started"})

    started = time.monotonic()
    code = start_worker.launcher.stop(name, signal.SIGTERM, timeout=30)  # type: ignore[attr-defined]

    assert code == 0 and time.monotonic() - started < 15
    assert alice.predictions.get(running["id"])["status"] == "succeeded"


def test_a_prediction_longer_than_the_grace_goes_back_to_the_queue(
    alice: wriftai.Client, stack: Stack, start_worker: Callable[..., str], tmp_path: Path
) -> None:
    stopping = start_worker(["tests.runs"], INFERQ_SHUTDOWN_GRACE="1")
    record = tmp_path / "runs.txt"
    running = alice.predictions.create(model="tests/runs", input={"record_to": str(record), "seconds": 4})
    wait_for_status(stack.env["INFERQ_REDIS_URL"], running["id"], {"started"})
    launcher = start_worker.launcher  # type: ignore[attr-defined]
    stopped_pids = {launcher.processes[stopping].pid, *pool_children(launcher.processes[stopping].pid)}

    launcher.stop(stopping, signal.SIGTERM, timeout=30)
    start_worker(["tests.runs"])

    assert wait_for_status(stack.env["INFERQ_REDIS_URL"], running["id"], TERMINAL, timeout=60) == "succeeded"
    done = [line.split() for line in record.read_text().splitlines() if line.startswith("done")]
    assert len(done) == 1 and int(done[0][2]) not in stopped_pids

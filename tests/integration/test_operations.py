"""Running inferq: `inferq up` on embedded defaults, and the API when Redis is unreachable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import wriftai

from common.processes.embedded_redis import free_port
from common.processes.launcher import Launcher
from common.processes.runtime import threads_per_process, usable_cores
from tests.conftest import ROOT, base_env


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        for task in Path(f"/proc/{current}/task").iterdir():
            children = {int(c) for c in (task / "children").read_text().split()}
            frontier.extend(children - found)
            found |= children
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_inferq_up_serves_predictions_on_embedded_defaults_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERQ_")}
    env["INFERQ_DATA_DIR"] = str(tmp_path)
    port = free_port()
    with subprocess.Popen(
        [sys.executable, "-m", "common.processes.cli", "up", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    ) as up:
        try:
            _use_and_stop(up, port, tmp_path)
        finally:
            if up.poll() is None:
                up.kill()


def _use_and_stop(up: subprocess.Popen[str], port: int, data_dir: Path) -> None:
    assert up.stdout is not None
    banner = [up.stdout.readline() for _ in range(2)]
    assert banner[0].strip() == f"inferq is up: http://127.0.0.1:{port}/v1"
    key = banner[1].split("API key:")[1].strip()
    assert key == (data_dir / "dev-key").read_text().strip()
    with httpx.Client() as http:
        client = wriftai.Client(
            access_token=key, api_base_url=f"http://127.0.0.1:{port}/v1", http_client=http
        )
        done = client.predictions.create(model="inferq/echo", input={"prompt": "up and running"}, wait=True)
    assert done["output"] == "up and running"
    started = _descendants(up.pid)
    assert len(started) >= 3  # redis-server, gunicorn (and its worker), the celery worker (and its pool)

    up.send_signal(signal.SIGINT)

    assert up.wait(timeout=60) == 0
    assert not [pid for pid in started if _alive(pid)]


def test_the_api_answers_503_with_retry_after_while_redis_is_unreachable(tmp_path: Path) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    launcher = Launcher(base_env(dead, tmp_path), log_dir=tmp_path)
    try:
        base = launcher.start_api("127.0.0.1", free_port())
        with httpx.Client() as http:
            client = wriftai.Client(
                access_token="sk-alice", api_base_url=f"{base}/v1", http_client=http, max_retries=0
            )
            for call in (
                lambda: client.predictions.create(model="inferq/echo", input={"prompt": "x"}),
                lambda: client.predictions.list(),
                lambda: client.predictions.get("01a20a23-726e-7112-aef2-7b499c04ca05"),
            ):
                with pytest.raises(httpx.HTTPStatusError) as raised:
                    call()
                response = raised.value.response
                assert response.status_code == 503
                assert int(response.headers["Retry-After"]) >= 1
                assert response.json()["error"]["code"] == "service_unavailable"
    finally:
        launcher.stop_all()


def test_inferq_api_refuses_to_start_without_settings(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERQ_")}
    result = subprocess.run(
        [sys.executable, "-m", "common.processes.cli", "api"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "INFERQ_REDIS_URL" in result.stderr


def test_a_bad_setting_fails_loudly(tmp_path: Path) -> None:
    env = {**os.environ, "INFERQ_WAIT_MAX": "soon", "INFERQ_REDIS_URL": "redis://127.0.0.1:1/0"}
    result = subprocess.run(
        [sys.executable, "-m", "common.processes.cli", "api"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "INFERQ_WAIT_MAX='soon' is invalid" in result.stderr


def test_a_worker_of_several_processes_gives_each_its_share_of_the_cores(
    alice: wriftai.Client, start_worker: Callable[..., str]
) -> None:
    start_worker(["tests.threads"], concurrency=2)
    expected = os.environ.get("OMP_NUM_THREADS") or str(threads_per_process(2, usable_cores()))

    created = [alice.predictions.create(model="tests/threads", input={}) for _ in range(6)]
    reports = [alice.predictions.wait(p["id"])["output"] for p in created]

    assert all(report["omp_num_threads"] == expected for report in reports), reports
    assert all(report["torch_threads"] == int(expected) for report in reports), reports

"""Running inferq: `inferq up` on embedded defaults, and the API when Redis is unreachable."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
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


def _inferq_up(port: int, **options: Any) -> subprocess.Popen[Any]:
    """``inferq up`` on ``port`` with no ``INFERQ_*`` setting but the ``INFERQ_*`` keys of ``options``
    (the other options go to ``Popen``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFERQ_")}
    env.update({k: v for k, v in options.items() if k.startswith("INFERQ_")})
    popen = {k: v for k, v in options.items() if not k.startswith("INFERQ_")}
    command = [sys.executable, "-m", "common.processes.cli", "up", "--port", str(port)]
    return subprocess.Popen(command, cwd=ROOT, env=env, **popen)


def test_inferq_up_serves_predictions_on_embedded_defaults_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    with _inferq_up(port, INFERQ_DATA_DIR=str(tmp_path), stdout=subprocess.PIPE, text=True) as up:
        try:
            _use_and_stop(up, port, tmp_path)
        finally:
            if up.poll() is None:
                up.kill()


def _use_and_stop(up: subprocess.Popen[str], port: int, data_dir: Path) -> None:
    assert up.stdout is not None
    banner = [up.stdout.readline() for _ in range(7)]
    assert banner[0].strip() == f"inferq is up: http://127.0.0.1:{port}/v1"
    key = banner[1].split("API key:")[1].strip()
    assert key == (data_dir / "dev-key").read_text().strip()
    _check_the_embedded_redis_is_private(banner, data_dir)
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


ECHO_ONLY = """\
models:
  - owner: inferq
    name: echo
    versions:
      - number: 1
        adapter: echo
"""

TEXT_LINE = re.compile(r"^\d\d:\d\d:\d\d (DEBUG|INFO|WARNING|ERROR|CRITICAL) +\S+\[\d+\] \S+: ")


def _read_until(fd: int, end: str, timeout: float) -> str:
    """What a terminal shows until ``end`` appears (or the deadline passes, or the program exits)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while end.encode() not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the program closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    return seen.decode(errors="replace").replace("\r\n", "\n")


def test_inferq_up_at_a_terminal_logs_text_and_prints_its_banner_last(tmp_path: Path) -> None:
    models = tmp_path / "models.yaml"
    models.write_text(ECHO_ONLY)
    port = free_port()
    controller, terminal = pty.openpty()
    settings = {"INFERQ_DATA_DIR": str(tmp_path), "INFERQ_MODELS": str(models)}
    with _inferq_up(port, **settings, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal) as up:
        os.close(terminal)
        try:
            shown = _read_until(controller, "press Ctrl-C to stop", timeout=90)
            with httpx.Client() as http:
                page = http.get(f"http://127.0.0.1:{port}/")
            up.send_signal(signal.SIGINT)
            assert up.wait(timeout=60) == 0
        finally:
            if up.poll() is None:
                up.kill()
            os.close(controller)

    lines = shown.rstrip("\n").split("\n")
    assert lines[-1].strip() == "press Ctrl-C to stop", shown[-2000:]
    start = next(i for i, line in enumerate(lines) if line.startswith("inferq is up: "))
    banner = lines[start:]
    assert banner[0] == f"inferq is up: http://127.0.0.1:{port}/v1"
    assert f"http://127.0.0.1:{port}/ " in banner[2]
    logged = lines[:start]
    assert not [line for line in logged if line.startswith("{")], "JSON lines at a terminal"
    assert [line for line in logged if TEXT_LINE.match(line) and "ready on queues inferq.echo" in line]
    assert [line for line in logged if TEXT_LINE.match(line) and line.split()[2].startswith("api[")]

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for link in ("/docs", "/openapi.json", "/healthz"):
        assert f'href="{link}"' in page.text


def _check_the_embedded_redis_is_private(banner: list[str], data_dir: Path) -> None:
    """Another local user can neither use the embedded Redis nor make it write files anywhere."""
    (redis_line,) = [line for line in banner if line.strip().startswith("Redis: ")]
    password = (data_dir / "redis-password").read_text().strip()
    assert password not in redis_line
    port = int(redis_line.split("127.0.0.1:")[1].split("/")[0])
    stranger = redis.Redis(port=port)
    with pytest.raises(redis.AuthenticationError):
        stranger.ping()
    stranger.close()
    owner = redis.Redis(port=port, password=password)
    with pytest.raises(redis.ResponseError, match="unknown command"):
        owner.config_set("dir", "/tmp")
    owner.close()
    for secret in ("dev-key", "redis-password"):
        assert (data_dir / secret).stat().st_mode & 0o777 == 0o600
    assert (data_dir / "redis").stat().st_mode & 0o777 == 0o700


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

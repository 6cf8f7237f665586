"""Starting and stopping inferq's processes: used by ``inferq up``, the test fixtures and the benchmarks.

The API runs as gunicorn with gevent workers (``python -m gunicorn``), each
worker as ``python -m workers``; this module only builds their command lines
and watches them, so it never imports the API or worker packages.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import IO

from common.config import Settings
from common.connections import redis_client
from common.processes.relay import Relay
from common.store import keys

STOP_TIMEOUT = 30.0
"""Seconds a process gets to stop on SIGTERM before it is killed."""

READY_TIMEOUT = 60.0
"""Seconds a process gets to become ready."""

KEEPALIVE = 75
"""Seconds the API keeps an idle client connection open (longer than the usual load balancer's 60)."""


def metrics_directory(base: Path) -> Path:
    """An empty directory for the API's Prometheus multiprocess files (stale ones skew counts)."""
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    return base


def api_command(
    host: str, port: int, workers: int, metrics_dir: Path, keepalive: int = KEEPALIVE
) -> list[str]:
    """The gunicorn command line of the API.

    gevent workers hold hundreds of waiting requests and open streams per
    process as cheap greenlets, where a thread-per-request server would cap
    them at its thread count. The worker class (``common.processes.webserver.Worker``) speaks
    HTTP with gevent's own server, which costs less CPU per request than
    gunicorn's parser, and closes connections idle for ``--keep-alive``
    seconds. ``metrics_dir`` lets gunicorn's processes share their request
    metrics.
    """
    return [
        sys.executable, "-m", "gunicorn",
        "--worker-class", "common.processes.webserver.Worker",
        "--worker-connections", "1000",
        "--workers", str(workers),
        "--bind", f"{host}:{port}",
        "--timeout", "60",
        "--graceful-timeout", "30",
        "--keep-alive", str(keepalive),
        "--no-control-socket",
        "--env", f"PROMETHEUS_MULTIPROC_DIR={metrics_dir}",
        "api:create_app()",
    ]  # fmt: skip


def worker_command(queues: str | None, concurrency: int, hostname: str | None) -> list[str]:
    """The command line of a prediction worker."""
    command = [sys.executable, "-m", "workers", "--concurrency", str(concurrency)]
    if queues:
        command += ["--queues", queues]
    if hostname:
        command += ["--hostname", hostname]
    return command


class Launcher:
    """Starts processes with one environment, waits for them to be ready, and stops them all."""

    def __init__(self, env: dict[str, str], log_dir: Path | None = None, relay: Relay | None = None) -> None:
        self.env = env
        self.log_dir = log_dir
        self.relay = relay
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: list[str]) -> subprocess.Popen[bytes]:
        """Starts ``command`` as ``name``.

        Its output goes to ``<log_dir>/<name>.log`` when a log directory is set,
        else through the relay when there is one, else to this process's stderr
        (keeping stdout for what ``inferq up`` prints).
        """
        output: IO[bytes] | int | None = None
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            output = (self.log_dir / f"{name}.log").open("ab")
        elif self.relay is not None:
            output = subprocess.PIPE
        process = subprocess.Popen(
            command,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=output or sys.stderr,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if self.relay is not None and process.stdout is not None:
            self.relay.attach(process.stdout, name)
        elif output is not None and not isinstance(output, int):
            output.close()
        self.processes[name] = process
        return process

    def start_api(
        self, host: str, port: int, workers: int = 1, name: str = "api", keepalive: int = KEEPALIVE
    ) -> str:
        """Starts the API and returns its base URL once ``/healthz`` answers."""
        scratch = self.log_dir or Path(tempfile.gettempdir()) / f"inferq-{os.getpid()}"
        metrics_dir = metrics_directory(scratch / f"metrics-{port}")
        process = self.start(name, api_command(host, port, workers, metrics_dir, keepalive))
        base = f"http://{host}:{port}"
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return base
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            self._check_alive(name, process, deadline)
            time.sleep(0.05)

    def start_worker(self, queues: list[str], *, concurrency: int = 1, name: str | None = None) -> str:
        """Starts a worker on ``queues`` and returns its name once it heart-beats on all of them."""
        hostname = name or f"worker-{uuid.uuid4().hex[:8]}@localhost"
        process = self.start(hostname, worker_command(",".join(queues), concurrency, hostname))
        client = redis_client(Settings.from_env(self.env))
        deadline = time.monotonic() + READY_TIMEOUT
        try:
            while not all(client.zscore(keys.worker_heartbeats(q), hostname) for q in queues):
                self._check_alive(hostname, process, deadline)
                time.sleep(0.05)
        finally:
            client.close()
        return hostname

    def _check_alive(self, name: str, process: subprocess.Popen[bytes], deadline: float) -> None:
        if process.poll() is not None:
            raise RuntimeError(
                f"{name} exited with {process.returncode} before it was ready{self._tail(name)}"
            )
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} was not ready within {READY_TIMEOUT:g} s{self._tail(name)}")

    def _tail(self, name: str, lines: int = 15) -> str:
        if self.log_dir is None or not (self.log_dir / f"{name}.log").is_file():
            return ""
        text = (self.log_dir / f"{name}.log").read_text(errors="replace").splitlines()[-lines:]
        return "; its log ends:\n" + "\n".join(text)

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int | None:
        """Signals one process and waits for it (killing it after ``timeout``); returns its exit code."""
        process = self.processes.pop(name)
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def kill_group(self, name: str) -> None:
        """SIGKILLs a process with every child it has (as ``docker kill`` would), and reaps it."""
        process = self.processes.pop(name)
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()

    def stop_all(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stops every process: SIGTERM to all at once, then waits, killing stragglers."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def exited(self) -> list[tuple[str, int]]:
        """The processes that have exited, with their exit codes."""
        return [(name, p.returncode) for name, p in self.processes.items() if p.poll() is not None]

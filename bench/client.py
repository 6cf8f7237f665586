"""A lean client of inferq's prediction API: one kept-alive ``http.client`` connection per instance.

The benchmarks use the standard library rather than the official client so that
what they measure is inferq, not httpx. One instance per thread.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from typing import Any

from harness import API_KEY


class Client:
    """Creates and cancels predictions over one keep-alive connection.

    Args:
        port: The API's port on 127.0.0.1.
        timeout: Socket timeout in seconds (a held wait needs more than its ``wait``).
        key: The API key to send (its owner's predictions are the ones seen).
    """

    def __init__(self, port: int, timeout: float = 120.0, key: str = API_KEY) -> None:
        self.port = port
        self.timeout = timeout
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        self.headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def request(self, method: str, path: str, body: Any = None, wait: float | None = None) -> tuple[int, Any]:
        """Sends one request and returns ``(status code, decoded JSON body)``.

        A dropped keep-alive connection is reopened once for the next request.
        """
        headers = dict(self.headers)
        if wait is not None:
            headers["Prefer"] = f"wait={wait:g}"
        data = None if body is None else json.dumps(body)
        try:
            self.connection.request(method, path, body=data, headers=headers)
            response = self.connection.getresponse()
            payload = response.read()
        except (ConnectionError, http.client.HTTPException):
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            raise
        return response.status, json.loads(payload) if payload else None

    def create(self, model: str, input: dict[str, Any], wait: float | None = None) -> tuple[int, Any]:
        """``POST /v1/predictions`` (not streamed), holding for ``wait`` seconds when given."""
        return self.request(
            "POST", "/v1/predictions", {"model": model, "input": input, "stream": False}, wait
        )

    def cancel(self, prediction_id: str) -> int:
        """``POST /v1/predictions/<id>/cancel``; returns the status code (200, or 409 once finished)."""
        return self.request("POST", f"/v1/predictions/{prediction_id}/cancel")[0]

    def close(self) -> None:
        """Closes the connection."""
        self.connection.close()


def creates(
    port: int, count: int, clients: int, create: Callable[[Client], tuple[int, Any]], key: str = API_KEY
) -> tuple[list[Any], list[str]]:
    """Runs ``create`` ``count`` times from ``clients`` threads, each on its own connection (with ``key``).

    Returns:
        The answers of the ``201`` creates, and one line per other answer (after
        the first of those, the threads stop taking more).
    """
    answers: list[Any] = []
    errors: list[str] = []
    lock = threading.Lock()
    left = [count]

    def client() -> None:
        api = Client(port, key=key)
        try:
            while True:
                with lock:
                    if left[0] == 0 or errors:
                        return
                    left[0] -= 1
                code, payload = create(api)
                with lock:
                    if code == 201:
                        answers.append(payload)
                    else:
                        errors.append(f"{code} {payload}")
        finally:
            api.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers, errors

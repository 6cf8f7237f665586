"""The console's files: shipped as package data, served under their CSP, fetching nothing from elsewhere."""

from __future__ import annotations

import fnmatch
import re
import tomllib

from flask import Flask

from api.views import console
from tests.conftest import ROOT


def test_every_console_file_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["api"]
    files = [p.relative_to(ROOT / "api").as_posix() for p in console.STATIC.rglob("*") if p.is_file()]
    assert "console/index.html" in files
    missing = [f for f in files if not any(fnmatch.fnmatch(f, pattern) for pattern in patterns)]
    assert missing == []


def test_no_console_file_loads_anything_from_another_origin() -> None:
    for path in console.STATIC.rglob("*"):
        if path.is_file():
            text = path.read_text()
            # The SVG namespace is a name, never fetched.
            assert re.findall(r"https?://(?!www\.w3\.org/2000/svg)", text) == [], path


def _get(path: str) -> tuple[int, str, dict[str, str], str]:
    app = Flask("console-test")
    app.register_blueprint(console.blp)
    response = app.test_client().get(path)
    try:
        return (
            response.status_code,
            response.mimetype,
            dict(response.headers),
            response.get_data(as_text=True),
        )
    finally:
        response.close()


def test_the_page_and_its_scripts_are_served_under_the_policy() -> None:
    status, mimetype, headers, text = _get("/")
    assert status == 200 and mimetype == "text/html"
    assert headers["Content-Security-Policy"] == console.POLICY
    assert "script-src 'self'" in console.POLICY and "unsafe-inline" not in console.POLICY
    assert headers["X-Content-Type-Options"] == "nosniff"
    for src in re.findall(r'(?:src|href)="(/console/[^"]+)"', text):
        assert _get(src)[0] == 200, src
    assert _get("/console/js/app.js")[1] in {"text/javascript", "application/javascript"}
    assert _get("/console/../views/console.py")[0] == 404

"""Webhook URL policy and signatures (no network: literal addresses only)."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest
import wriftai

from common.webhooks import WebhookRefused, check_url, signature


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://127.8.9.10/x",
        "http://10.0.0.1/x",
        "http://172.16.5.4/x",
        "http://192.168.1.1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://100.100.100.200/x",
        "http://0.0.0.0/x",
        "http://224.0.0.1/x",
        "http://[::1]/x",
        "http://[fe80::1]/x",
        "http://[fd00:ec2::254]/x",
        "http://[::ffff:10.0.0.1]/x",
        "http://[2002:7f00:1::1]/x",  # 6to4 around 127.0.0.1
        "http://[2002:a9fe:a9fe::1]/x",  # 6to4 around 169.254.169.254
        "http://[fec0::1]/x",  # site-local
    ],
)
def test_non_public_addresses_are_refused(url: str) -> None:
    with pytest.raises(WebhookRefused) as refused:
        check_url(url, allow_private=False)
    assert refused.value.param == "webhook.url"
    check_url(url, allow_private=True)  # allowed for development


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "http:///x", "gopher://a/b", "x"]
)
def test_bad_schemes_are_refused_even_when_private_is_allowed(url: str) -> None:
    with pytest.raises(WebhookRefused):
        check_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url", ["http://8.8.8.8/hook", "https://1.1.1.1:8443/x", "http://[2606:4700::1111]/x"]
)
def test_public_addresses_pass(url: str) -> None:
    check_url(url, allow_private=False)


def test_signature_is_exactly_what_wriftai_verifies() -> None:
    body = b'{"id": "x", "status": "succeeded"}'
    header = signature("s3cret", body, timestamp=1_700_000_000)
    t, v1 = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", header).groups()  # type: ignore[union-attr]
    expected = hmac.new(b"s3cret", t.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert v1 == expected
    wriftai.verify_webhook(body, signature("s3cret", body), "s3cret")
    with pytest.raises(wriftai.WebhookSignatureMismatchError):
        wriftai.verify_webhook(body + b" ", signature("s3cret", body), "s3cret")

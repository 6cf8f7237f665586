"""Webhook URLs and signatures: who may be called, and how receivers verify the caller.

A webhook URL must be http(s), and by default must not resolve to loopback,
private, link-local, shared, multicast or reserved addresses (which covers
cloud metadata endpoints such as 169.254.169.254): it is checked when the
prediction is created and again before every delivery, since DNS can change,
and a delivery connects only to an address :func:`resolve` has just checked
(never resolving the name again), so a name that answers differently to the
check and to the connection (DNS rebinding) cannot reach a private address.
``INFERQ_WEBHOOK_ALLOW_PRIVATE=1`` lifts that for development and tests.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from common.errors import InferqError

SIGNATURE_HEADER = "wriftai-webhook-signature"
"""``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>``, as ``wriftai.verify_webhook`` checks it."""

SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")
"""Carrier-grade NAT space, where some clouds put their metadata endpoint."""

REFUSED_IPV6 = (ipaddress.ip_network("2002::/16"), ipaddress.ip_network("fec0::/10"))
"""6to4 (it embeds any IPv4 address, private ones too) and the deprecated site-local
space, neither of which ``ipaddress`` counts as private."""

Address = tuple[int, tuple[Any, ...]]
"""An address to connect to: the socket family, and the socket address (``(host, port, ...)``)."""


class WebhookRefused(InferqError, ValueError):
    """The webhook URL may not be called (bad scheme, unresolvable, or a private address)."""

    status_code = 422
    error_type = "invalid_request_error"
    code = "webhook_refused"


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv4Address) and ip in SHARED_ADDRESS_SPACE)
        or (isinstance(ip, ipaddress.IPv6Address) and any(ip in net for net in REFUSED_IPV6))
    )


def check_url(url: str, *, allow_private: bool) -> None:
    """Checks that ``url`` may be called.

    Raises:
        WebhookRefused: Naming why.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused("webhook URLs must be http or https, with a host", param="webhook.url")
    if allow_private:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as e:
        raise WebhookRefused(f"the webhook URL's port is invalid: {e}", param="webhook.url") from e
    resolve(parts.hostname, port, allow_private=False)


def resolve(host: str, port: int, *, allow_private: bool) -> list[Address]:
    """Resolves ``host`` once and checks every address it has; a delivery connects only to these.

    Raises:
        WebhookRefused: When the host does not resolve, or (unless ``allow_private``) any of
            its addresses is not public.
    """
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError, UnicodeError) as e:
        raise WebhookRefused(f"the webhook host does not resolve: {e}", param="webhook.url") from e
    addresses: list[Address] = [(family, sockaddr) for family, _, _, _, sockaddr in found]
    refused = sorted({str(sockaddr[0]) for _, sockaddr in addresses if not _public(str(sockaddr[0]))})
    if refused and not allow_private:
        raise WebhookRefused(
            f"the webhook host resolves to a non-public address ({refused[0]}); "
            "set INFERQ_WEBHOOK_ALLOW_PRIVATE=1 to allow that in development",
            param="webhook.url",
        )
    if not addresses:
        raise WebhookRefused("the webhook host has no address", param="webhook.url")
    return addresses


def signature(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header value for ``body``: HMAC-SHA256 keyed by ``secret`` over ``"<t>." + body``."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode("utf-8"), str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest}"

"""``sentinel://`` URLs: where Redis's Sentinels are (``INFERQ_REDIS_URL``)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SENTINEL_SCHEMES = {"sentinel": False, "sentinels": True}
"""URL schemes that name Redis through its Sentinels, and whether they speak TLS."""

DEFAULT_SENTINEL_PORT = 26379
"""The port of a Sentinel named without one."""


@dataclass(frozen=True)
class SentinelUrl:
    """``sentinel[s]://[[user]:password@]host[:port],host[:port]/db``: where Redis's Sentinels are.

    The credentials are the Redis server's (the Sentinels' own password is
    ``INFERQ_SENTINEL_PASSWORD``); ``sentinels://`` speaks TLS to both.
    """

    hosts: tuple[tuple[str, int], ...]
    db: int
    username: str | None
    password: str | None
    tls: bool

    @classmethod
    def parse(cls, url: str) -> SentinelUrl | None:
        """The Sentinels ``url`` names, or None when it is a plain Redis URL.

        Raises:
            ValueError: On a Sentinel URL without hosts, with a bad port or a bad database.
        """
        scheme, _, rest = url.partition("://")
        if scheme.lower() not in SENTINEL_SCHEMES:
            return None
        credentials, _, location = rest.rpartition("@")
        netloc, _, path = location.partition("/")
        hosts = []
        for entry in filter(None, (part.strip() for part in netloc.split(","))):
            parsed = urlsplit(f"//{entry}")
            if not parsed.hostname:
                raise ValueError(f"sentinel {entry!r} has no host")
            hosts.append((parsed.hostname, parsed.port or DEFAULT_SENTINEL_PORT))
        if not hosts:
            raise ValueError("names no sentinel (sentinel://host:26379,host:26379/0)")
        db = path.partition("?")[0].strip("/") or "0"
        if not db.isdigit():
            raise ValueError(f"database {db!r} is not a number")
        username, _, password = credentials.partition(":")
        return cls(
            hosts=tuple(hosts),
            db=int(db),
            username=unquote(username) or None,
            password=unquote(password) or None,
            tls=SENTINEL_SCHEMES[scheme.lower()],
        )

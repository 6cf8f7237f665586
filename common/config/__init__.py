"""One typed settings object, read from the environment, shared by the API and the workers.

Every setting is an ``INFERQ_*`` environment variable. A value that cannot be
used, or an ``INFERQ_*`` variable nobody knows (usually a typo), stops the
process with a :class:`~common.errors.ConfigError` naming the variable.

The parsers of the values are in ``values``, and ``sentinel://`` URLs in
``sentinel_url``. Like the rest of the shared vocabulary, this package imports
nothing of ``common.store``, ``common.queue`` or ``common.processes``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from common.config import values
from common.config.sentinel_url import SentinelUrl
from common.errors import ConfigError

DEFAULT_MODELS_PATH = Path(__file__).parent.parent / "models.yaml"
"""The models file that ships with inferq, used when ``INFERQ_MODELS`` is unset."""

DEFAULT_WAIT = 60.0
"""Seconds a bare ``Prefer: wait`` holds, and the cap on ``wait=n``, unless configured."""

WEBHOOK_TIMEOUT_MAX = 60.0
"""The most ``INFERQ_WEBHOOK_TIMEOUT`` may be: an attempt must end well within its outbox lock
(``common.store.outbox.LOCK_SECONDS``), or a second deliverer could post beside it."""

T = TypeVar("T")


def _setting(env: str, parse: Callable[[str], Any], doc: str, *, secret: bool = False) -> Any:
    return field(metadata={"env": env, "parse": parse, "doc": doc, "secret": secret})


@dataclass(frozen=True)
class Settings:
    """Every setting of an inferq process. Build it with :meth:`from_env`."""

    redis_url: str | None = _setting(
        "INFERQ_REDIS_URL",
        values.redis_url,
        "Redis for records, events and the Celery broker: redis://, rediss://, unix://, or "
        "sentinel[s]://[:password@]host:26379,host:26379/0 with INFERQ_REDIS_MASTER",
        secret=True,
    )
    redis_master: str | None = _setting(
        "INFERQ_REDIS_MASTER",
        values.optional_text,
        "the master name the Sentinels monitor (sentinel:// URLs)",
    )
    sentinel_password: str | None = _setting(
        "INFERQ_SENTINEL_PASSWORD",
        values.optional_text,
        "the Sentinels' own password, if they have one",
        secret=True,
    )
    redis_replicas_ack: int = _setting(
        "INFERQ_REDIS_REPLICAS_ACK",
        values.whole,
        "replicas that must have a create or a terminal write (WAIT) before it counts (0: none)",
    )
    api_keys: dict[str, str] = _setting(
        "INFERQ_API_KEYS", values.api_keys, "comma-separated owner:key pairs", secret=True
    )
    models_path: Path = _setting("INFERQ_MODELS", values.path, "path to the models YAML file")
    data_dir: Path = _setting("INFERQ_DATA_DIR", values.path, "where embedded Redis and files live")
    wait_default: float = _setting("INFERQ_WAIT_DEFAULT", values.seconds, "seconds a bare Prefer: wait holds")
    wait_max: float = _setting("INFERQ_WAIT_MAX", values.seconds, "cap on Prefer: wait=n, in seconds")
    max_run_time: float = _setting("INFERQ_MAX_RUN_TIME", values.seconds, "seconds a prediction may run")
    queue_deadline: float = _setting(
        "INFERQ_QUEUE_DEADLINE", values.seconds, "seconds a prediction may wait to start before abandoned"
    )
    cancel_grace: float = _setting(
        "INFERQ_CANCEL_GRACE", values.seconds, "seconds an adapter gets to stop before it is killed"
    )
    lease_ttl: float = _setting(
        "INFERQ_LEASE_TTL", values.seconds, "seconds a worker's claim lives unrenewed"
    )
    max_attempts: int = _setting(
        "INFERQ_MAX_ATTEMPTS", values.count, "claims of one prediction before it is abandoned"
    )
    retention: float = _setting("INFERQ_RETENTION", values.seconds, "seconds finished predictions are kept")
    max_body_bytes: int = _setting("INFERQ_MAX_BODY_BYTES", values.count, "largest request body accepted")
    max_upload_bytes: int = _setting(
        "INFERQ_MAX_UPLOAD_BYTES",
        values.count,
        "largest /v1/images/edits body accepted (its images and mask)",
    )
    max_input_bytes: int = _setting(
        "INFERQ_MAX_INPUT_BYTES", values.count, "largest prediction input accepted, as stored (JSON)"
    )
    max_file_bytes: int = _setting(
        "INFERQ_MAX_FILE_BYTES", values.count, "largest file uploaded to /v1/files (its own body limit)"
    )
    max_file_lines: int = _setting(
        "INFERQ_MAX_FILE_LINES", values.count, "most requests (non-empty lines) in an uploaded batch file"
    )
    request_read_timeout: float = _setting(
        "INFERQ_REQUEST_READ_TIMEOUT",
        values.seconds,
        "seconds a client gets to send a whole request (line, headers, body) once it starts; then 408",
    )
    heartbeat_interval: float = _setting(
        "INFERQ_HEARTBEAT_INTERVAL",
        values.seconds,
        "seconds between keep-alive comments on idle event streams",
    )
    webhook_allow_private: bool = _setting(
        "INFERQ_WEBHOOK_ALLOW_PRIVATE",
        values.flag,
        "allow webhooks to private addresses (development, tests)",
    )
    webhook_queue: str = _setting("INFERQ_WEBHOOK_QUEUE", values.text, "Celery queue of webhook deliveries")
    webhook_retry_window: float = _setting(
        "INFERQ_WEBHOOK_RETRY_WINDOW", values.seconds, "seconds a failing webhook delivery is retried"
    )
    webhook_timeout: float = _setting(
        "INFERQ_WEBHOOK_TIMEOUT", values.seconds, "seconds one webhook delivery attempt may take, all told"
    )
    rate_limit: str | None = _setting(
        "INFERQ_RATE_LIMIT", values.rate_limit, "requests per API key, e.g. 600/minute (unset: no limit)"
    )
    max_pending_per_key: int = _setting(
        "INFERQ_MAX_PENDING_PER_KEY",
        values.whole,
        "unfinished predictions per API key before creates get 429 (0: no limit)",
    )
    max_running_per_key: int = _setting(
        "INFERQ_MAX_RUNNING_PER_KEY",
        values.whole,
        "predictions of one API key running at once across all workers; more wait (0: no limit)",
    )
    key_weights: dict[str, float] = _setting(
        "INFERQ_KEY_WEIGHTS", values.key_weights, "owner:weight,... shares of workers' turns (default 1)"
    )
    batch_window: float | None = _setting(
        "INFERQ_BATCH_WINDOW",
        values.optional_seconds,
        "seconds every batch's completion window lasts, whatever it asked (unset: as asked, 24h)",
    )
    max_queue_depth: int = _setting(
        "INFERQ_MAX_QUEUE_DEPTH",
        values.whole,
        "queued tasks per model queue before creates get 429 (0: no limit)",
    )
    metrics_auth: bool = _setting("INFERQ_METRICS_AUTH", values.flag, "require an API key for /metrics")
    celery_events: bool = _setting(
        "INFERQ_CELERY_EVENTS", values.flag, "send Celery task events and answer remote control (for Flower)"
    )
    shutdown_grace: float = _setting(
        "INFERQ_SHUTDOWN_GRACE", values.seconds, "seconds a stopping worker lets running predictions finish"
    )
    log_format: str = _setting("INFERQ_LOG_FORMAT", values.log_format, "json (default) or text")
    log_level: str = _setting("INFERQ_LOG_LEVEL", values.log_level, "DEBUG, INFO (default), WARNING or ERROR")
    sync_timeout: float = _setting(
        "INFERQ_SYNC_TIMEOUT", values.seconds, "seconds an OpenAI-compatible call waits before it cancels"
    )
    default_image_model: str = _setting(
        "INFERQ_DEFAULT_IMAGE_MODEL", values.text, "model of /v1/images/generations when none is named"
    )
    url_ttl: float = _setting("INFERQ_URL_TTL", values.seconds, "seconds a signed file link stays valid")
    url_signing_key: str | None = _setting(
        "INFERQ_URL_SIGNING_KEY",
        values.optional_text,
        "secret for file links; default: derived from the API keys",
        secret=True,
    )
    moderation: str | None = _setting(
        "INFERQ_MODERATION", values.optional_text, "prompt policy: a YAML term file or package.module:Class"
    )
    redis_max_connections: int = _setting(
        "INFERQ_REDIS_MAX_CONNECTIONS", values.count, "Redis connections per process, at most"
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Reads every ``INFERQ_*`` variable, applying defaults for the unset ones.

        Raises:
            ConfigError: On an unusable value or an unknown ``INFERQ_*`` variable.
        """
        known = {f.metadata["env"]: f for f in fields(cls)}
        unknown = sorted(name for name in environ if name.startswith("INFERQ_") and name not in known)
        if unknown:
            raise ConfigError(
                f"unknown setting(s) {', '.join(unknown)}; known settings: {', '.join(sorted(known))}"
            )
        values: dict[str, Any] = {}
        for name, spec in known.items():
            if name in environ:
                try:
                    values[spec.name] = spec.metadata["parse"](environ[name])
                except ValueError as e:
                    shown = "(value not shown)" if spec.metadata.get("secret") else repr(environ[name])
                    raise ConfigError(f"{name}={shown} is invalid: {e}") from e
        if "wait_max" in values and "wait_default" not in values:
            values["wait_default"] = min(DEFAULT_WAIT, values["wait_max"])
        return cls.defaults(**values)

    @classmethod
    def defaults(cls, **overrides: Any) -> Settings:
        """Builds settings from the documented defaults, with ``overrides`` applied."""
        values: dict[str, Any] = {
            "redis_url": None,
            "redis_master": None,
            "sentinel_password": None,
            "redis_replicas_ack": 0,
            "api_keys": {},
            "models_path": DEFAULT_MODELS_PATH,
            "data_dir": Path("~/.local/share/inferq").expanduser(),
            "wait_default": DEFAULT_WAIT,
            "wait_max": DEFAULT_WAIT,
            "max_run_time": 1800.0,
            "queue_deadline": 1800.0,
            "cancel_grace": 5.0,
            "lease_ttl": 10.0,
            "max_attempts": 3,
            "retention": 3600.0,
            "max_body_bytes": 10 * 1024 * 1024,
            "max_upload_bytes": 128 * 1024 * 1024,
            "max_input_bytes": 1024 * 1024,
            "max_file_bytes": 200 * 1024 * 1024,
            "max_file_lines": 50_000,
            "request_read_timeout": 60.0,
            "sync_timeout": 60.0,
            "rate_limit": None,
            "max_queue_depth": 1000,
            "max_pending_per_key": 10000,
            "max_running_per_key": 0,
            "key_weights": {},
            "batch_window": None,
            "metrics_auth": False,
            "celery_events": False,
            "shutdown_grace": 30.0,
            "log_format": "json",
            "log_level": "INFO",
            "webhook_allow_private": False,
            "webhook_queue": "inferq.webhooks",
            "webhook_retry_window": 3600.0,
            "webhook_timeout": 10.0,
            "heartbeat_interval": 15.0,
            "default_image_model": "inferq/sketch",
            "url_ttl": 3600.0,
            "url_signing_key": None,
            "moderation": None,
            "redis_max_connections": 32,
        }
        values.update(overrides)
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Checks the relations between settings.

        Raises:
            ConfigError: When two settings contradict each other.
        """
        if self.wait_default > self.wait_max:
            raise ConfigError("INFERQ_WAIT_DEFAULT must not exceed INFERQ_WAIT_MAX")
        if self.lease_ttl < 1:
            raise ConfigError("INFERQ_LEASE_TTL must be at least 1 second")
        if self.sentinel is not None and not self.redis_master:
            raise ConfigError(
                "INFERQ_REDIS_URL names Sentinels: set INFERQ_REDIS_MASTER to the monitored name"
            )
        if self.webhook_timeout > WEBHOOK_TIMEOUT_MAX:
            raise ConfigError(f"INFERQ_WEBHOOK_TIMEOUT must not exceed {WEBHOOK_TIMEOUT_MAX:g} seconds")

    @property
    def required_redis_url(self) -> str:
        """The Redis URL, for processes that cannot start an embedded Redis themselves.

        Raises:
            ConfigError: When ``INFERQ_REDIS_URL`` is unset.
        """
        if not self.redis_url:
            raise ConfigError("INFERQ_REDIS_URL is not set (only `inferq up` starts an embedded Redis)")
        return self.redis_url

    @property
    def sentinel(self) -> SentinelUrl | None:
        """The Sentinels ``INFERQ_REDIS_URL`` names, or None for a plain Redis URL."""
        return SentinelUrl.parse(self.redis_url) if self.redis_url else None

    @property
    def visibility_timeout(self) -> int:
        """Seconds before the broker redelivers an unacknowledged message.

        It must stay above the longest a worker can legitimately hold a message
        (setup, the run cap and the cancel grace); crashed workers are recovered
        much sooner by lease expiry, not by this timeout.
        """
        return int(2 * self.max_run_time + self.cancel_grace + 300)

    @property
    def live_ttl(self) -> int:
        """Seconds an unfinished prediction's keys live: long enough to wait, run, and be kept after."""
        margin = 300
        return int(self.queue_deadline + self.max_run_time + self.cancel_grace + self.retention) + margin

    def weight_of(self, owner: str) -> str:
        """``owner``'s share of turns (``INFERQ_KEY_WEIGHTS``) as the create script stores it."""
        return format(self.key_weights.get(owner, 1.0), "g")

    @property
    def lease_renew_interval(self) -> float:
        """How often a running worker renews its claim: three times per lease."""
        return self.lease_ttl / 3


def describe_settings() -> list[tuple[str, str]]:
    """Lists ``(variable, description)`` for every setting, for the README and ``--help``."""
    return [(f.metadata["env"], f.metadata["doc"]) for f in fields(Settings)]

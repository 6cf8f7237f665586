"""Settings: defaults, one parser per variable, loud failures naming the variable."""

from dataclasses import fields
from pathlib import Path

import pytest

from common.config import (
    DEFAULT_MODELS_PATH,
    DEFAULT_WAIT,
    Settings,
    describe_settings,
)
from common.config.sentinel_url import SentinelUrl
from common.config.values import api_keys
from common.errors import ConfigError


def test_from_env_without_variables_gives_the_defaults() -> None:
    settings = Settings.from_env({"PATH": "/usr/bin", "HOME": "/root"})
    assert settings == Settings.defaults()
    assert settings.redis_url is None
    assert settings.api_keys == {}
    assert settings.models_path == DEFAULT_MODELS_PATH
    assert settings.data_dir == Path("~/.local/share/inferq").expanduser()
    assert (settings.wait_default, settings.wait_max) == (DEFAULT_WAIT, DEFAULT_WAIT)
    assert (settings.max_run_time, settings.queue_deadline, settings.retention) == (1800.0, 1800.0, 3600.0)
    assert (settings.cancel_grace, settings.lease_ttl, settings.max_attempts) == (5.0, 10.0, 3)
    assert (settings.max_body_bytes, settings.redis_max_connections) == (10 * 1024 * 1024, 32)
    assert (settings.sync_timeout, settings.url_ttl) == (60.0, 3600.0)
    assert settings.default_image_model == "inferq/sketch"
    assert (settings.url_signing_key, settings.moderation) == (None, None)


@pytest.mark.parametrize(
    ("variable", "raw", "attribute", "expected"),
    [
        ("INFERQ_REDIS_URL", " redis://h:6379/1 ", "redis_url", "redis://h:6379/1"),
        ("INFERQ_REDIS_URL", "   ", "redis_url", None),
        ("INFERQ_API_KEYS", "alice:sk-a, bob:sk-b", "api_keys", {"sk-a": "alice", "sk-b": "bob"}),
        ("INFERQ_API_KEYS", "", "api_keys", {}),
        ("INFERQ_MODELS", "/etc/models.yaml", "models_path", Path("/etc/models.yaml")),
        ("INFERQ_MODELS", "~/m.yaml", "models_path", Path("~/m.yaml").expanduser()),
        ("INFERQ_DATA_DIR", "/var/lib/inferq", "data_dir", Path("/var/lib/inferq")),
        ("INFERQ_WAIT_DEFAULT", "12.5", "wait_default", 12.5),
        ("INFERQ_WAIT_MAX", "90", "wait_max", 90.0),
        ("INFERQ_MAX_RUN_TIME", "600", "max_run_time", 600.0),
        ("INFERQ_QUEUE_DEADLINE", "30", "queue_deadline", 30.0),
        ("INFERQ_CANCEL_GRACE", "0.5", "cancel_grace", 0.5),
        ("INFERQ_LEASE_TTL", "3", "lease_ttl", 3.0),
        ("INFERQ_MAX_ATTEMPTS", "7", "max_attempts", 7),
        ("INFERQ_RETENTION", "1e3", "retention", 1000.0),
        ("INFERQ_MAX_BODY_BYTES", "1024", "max_body_bytes", 1024),
        ("INFERQ_REDIS_MAX_CONNECTIONS", "4", "redis_max_connections", 4),
        ("INFERQ_SYNC_TIMEOUT", "15", "sync_timeout", 15.0),
        ("INFERQ_DEFAULT_IMAGE_MODEL", " acme/paint ", "default_image_model", "acme/paint"),
        ("INFERQ_URL_TTL", "60", "url_ttl", 60.0),
        ("INFERQ_URL_SIGNING_KEY", " s3cret ", "url_signing_key", "s3cret"),
        ("INFERQ_URL_SIGNING_KEY", "", "url_signing_key", None),
        ("INFERQ_MODERATION", "/etc/terms.yaml", "moderation", "/etc/terms.yaml"),
        ("INFERQ_MODERATION", " ", "moderation", None),
    ],
)
def test_each_variable_is_parsed(variable: str, raw: str, attribute: str, expected: object) -> None:
    assert getattr(Settings.from_env({variable: raw}), attribute) == expected


def test_every_field_has_its_own_variable_and_a_description() -> None:
    described = dict(describe_settings())
    assert len(described) == len(fields(Settings))
    assert all(name.startswith("INFERQ_") and doc for name, doc in described.items())


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        *[
            (name, raw)
            for name in (
                "INFERQ_WAIT_DEFAULT",
                "INFERQ_MAX_RUN_TIME",
                "INFERQ_QUEUE_DEADLINE",
                "INFERQ_CANCEL_GRACE",
                "INFERQ_RETENTION",
                "INFERQ_SYNC_TIMEOUT",
                "INFERQ_URL_TTL",
            )
            for raw in ("0", "-1", "abc", "inf", "nan", "")
        ],
        *[
            (name, raw)
            for name in ("INFERQ_MAX_ATTEMPTS", "INFERQ_MAX_BODY_BYTES", "INFERQ_REDIS_MAX_CONNECTIONS")
            for raw in ("0", "-3", "1.5", "many", "")
        ],
        ("INFERQ_MODELS", ""),
        ("INFERQ_DEFAULT_IMAGE_MODEL", " "),
        ("INFERQ_DATA_DIR", "  "),
        ("INFERQ_API_KEYS", "alice"),
        ("INFERQ_LEASE_TTL", "0"),
    ],
)
def test_bad_value_raises_config_error_naming_the_variable(variable: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({variable: raw})


def test_unknown_inferq_variable_is_rejected_by_name() -> None:
    with pytest.raises(ConfigError, match="INFERQ_WAIT_MAXIMUM"):
        Settings.from_env({"INFERQ_WAIT_MAXIMUM": "5"})


def test_wait_max_alone_caps_the_default_wait() -> None:
    assert Settings.from_env({"INFERQ_WAIT_MAX": "30"}).wait_default == 30.0
    assert Settings.from_env({"INFERQ_WAIT_MAX": "120"}).wait_default == DEFAULT_WAIT


def test_wait_default_above_wait_max_is_rejected() -> None:
    with pytest.raises(ConfigError, match="INFERQ_WAIT_DEFAULT must not exceed INFERQ_WAIT_MAX"):
        Settings.from_env({"INFERQ_WAIT_DEFAULT": "90"})
    with pytest.raises(ConfigError, match="INFERQ_WAIT_DEFAULT"):
        Settings.defaults(wait_default=10.0, wait_max=5.0)


def test_lease_shorter_than_a_second_is_rejected() -> None:
    with pytest.raises(ConfigError, match="INFERQ_LEASE_TTL"):
        Settings.from_env({"INFERQ_LEASE_TTL": "0.5"})


@pytest.mark.parametrize(
    ("max_run_time", "cancel_grace"), [(0.1, 0.1), (1.0, 5.0), (1800.0, 5.0), (86400.0, 60.0)]
)
def test_visibility_timeout_outlasts_a_whole_run(max_run_time: float, cancel_grace: float) -> None:
    settings = Settings.defaults(max_run_time=max_run_time, cancel_grace=cancel_grace)
    assert isinstance(settings.visibility_timeout, int)
    assert settings.visibility_timeout > max_run_time + cancel_grace


def test_lease_is_renewed_three_times_per_lease() -> None:
    assert Settings.defaults(lease_ttl=6.0).lease_renew_interval == 2.0


def test_required_redis_url() -> None:
    assert Settings.defaults(redis_url="redis://r").required_redis_url == "redis://r"
    with pytest.raises(ConfigError, match="INFERQ_REDIS_URL"):
        _ = Settings.defaults().required_redis_url


def test_parse_api_keys_maps_keys_to_owners() -> None:
    raw = " alice:sk-1 ,bob.x:sk-2,,carol_3:sk:with:colons "
    assert api_keys(raw) == {"sk-1": "alice", "sk-2": "bob.x", "sk:with:colons": "carol_3"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("alice", "not of the form owner:key"),
        ("alice:", "not of the form owner:key"),
        (":sk-1", "not of the form owner:key"),
        ("al ice:sk-1", "owner 'al ice'"),
        ("-alice:sk-1", "owner '-alice'"),
        (f"{'a' * 65}:sk-1", "may hold only"),
        ("alice:sk-1,bob:sk-1", "given twice"),
    ],
)
def test_parse_api_keys_rejects(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        api_keys(raw)


def test_bad_api_keys_error_does_not_reveal_keys() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"INFERQ_API_KEYS": "alice:sk-secret,sk-bare-secret"})
    assert "secret" not in str(caught.value)


def test_owner_with_trailing_newline_is_rejected() -> None:
    with pytest.raises(ValueError, match="owner"):
        api_keys("alice\n:sk-1")


def test_a_sentinel_url_needs_the_master_name() -> None:
    url = "sentinel://127.0.0.1:26379,127.0.0.1:26380/0"
    with pytest.raises(ConfigError, match="INFERQ_REDIS_MASTER"):
        Settings.from_env({"INFERQ_REDIS_URL": url})
    settings = Settings.from_env({"INFERQ_REDIS_URL": url, "INFERQ_REDIS_MASTER": "inferq"})
    assert settings.sentinel is not None
    assert settings.sentinel.hosts == (("127.0.0.1", 26379), ("127.0.0.1", 26380))


@pytest.mark.parametrize(
    "url", ["sentinel://", "sentinel://h1:notaport/0", "sentinel://h1/zero", "sentinel://:pw@/0"]
)
def test_a_bad_sentinel_url_is_refused_without_showing_it(url: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"INFERQ_REDIS_URL": url, "INFERQ_REDIS_MASTER": "inferq"})
    assert "(value not shown)" in str(raised.value)


def test_sentinel_url_credentials_and_tls() -> None:
    parsed = SentinelUrl.parse("sentinels://user:p%40ss@h1:1,h2/3")
    assert parsed == SentinelUrl(
        hosts=(("h1", 1), ("h2", 26379)), db=3, username="user", password="p@ss", tls=True
    )
    assert SentinelUrl.parse("redis://h1:6379/0") is None

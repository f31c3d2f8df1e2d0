from __future__ import annotations

import pytest

from coldchain.settings import SettingsError, load_settings, metrics_listener


def test_defaults_run_on_an_sqlite_file_in_the_working_directory() -> None:
    settings = load_settings({})
    assert settings.database_url == "sqlite:///coldchain.db"
    assert settings.engine == "sqlite"


def test_a_postgresql_url_selects_postgresql() -> None:
    settings = load_settings({"COLDCHAIN_DATABASE_URL": "postgresql://u@db:5432/coldchain"})
    assert settings.engine == "postgresql"


def test_numbers_are_read_from_their_text() -> None:
    settings = load_settings({"COLDCHAIN_PORT": "9001", "COLDCHAIN_CLOCK_DRIFT_LIMIT_S": "2.5"})
    assert (settings.port, settings.clock_drift_limit_s) == (9001, 2.5)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"COLDCHAIN_PORT": "eighty"}, "COLDCHAIN_PORT: Expected `int`, got `str`"),
        ({"COLDCHAIN_PORT": "70000"}, "COLDCHAIN_PORT: Expected `int` <= 65535"),
        ({"COLDCHAIN_WORKERS": "0"}, "COLDCHAIN_WORKERS: Expected `int` >= 1"),
        ({"COLDCHAIN_DATABASE_URL": "mysql://x"}, "COLDCHAIN_DATABASE_URL: expected sqlite:///PATH or postgresql://"),
        ({"COLDCHAIN_LOG_LEVEL": "loud"}, "COLDCHAIN_LOG_LEVEL: expected one of"),
        ({"COLDCHAIN_DATABSE_URL": "sqlite:///x.db"}, "unknown setting COLDCHAIN_DATABSE_URL"),
        ({"COLDCHAIN_JOBS_ENABLED": "maybe"}, "COLDCHAIN_JOBS_ENABLED: Expected `bool`, got `str`"),
        ({"COLDCHAIN_JOB_INTERVAL_S": "0"}, "COLDCHAIN_JOB_INTERVAL_S: Expected `float` > 0"),
        ({"COLDCHAIN_WEBHOOK_MAX_ATTEMPTS": "0"}, "COLDCHAIN_WEBHOOK_MAX_ATTEMPTS: Expected `int` >= 1"),
        (
            {"COLDCHAIN_WEBHOOK_RETRY_S": "60", "COLDCHAIN_WEBHOOK_RETRY_MAX_S": "30"},
            "COLDCHAIN_WEBHOOK_RETRY_MAX_S: must be at least COLDCHAIN_WEBHOOK_RETRY_S (60)",
        ),
        ({"COLDCHAIN_METRICS_TOKEN": "short"}, "COLDCHAIN_METRICS_TOKEN: use at least 16 characters"),
        ({"COLDCHAIN_METRICS_ADDRESS": "9464"}, "COLDCHAIN_METRICS_ADDRESS: expected host:port"),
        ({"COLDCHAIN_METRICS_ADDRESS": "127.0.0.1:99999"}, "COLDCHAIN_METRICS_ADDRESS: expected host:port"),
        ({"COLDCHAIN_METRICS_ADDRESS": ":9464"}, "COLDCHAIN_METRICS_ADDRESS: expected host:port"),
        ({"COLDCHAIN_STOP_TIMEOUT_S": "0"}, "COLDCHAIN_STOP_TIMEOUT_S: Expected `float` > 0"),
        (
            {"COLDCHAIN_DRAIN_S": "20", "COLDCHAIN_STOP_TIMEOUT_S": "20"},
            "COLDCHAIN_DRAIN_S: must be shorter than COLDCHAIN_STOP_TIMEOUT_S (20)",
        ),
    ],
)
def test_a_bad_value_is_refused_with_the_variable_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ)
    assert str(caught.value).startswith(message)


def test_test_suite_variables_are_not_settings() -> None:
    assert load_settings({"COLDCHAIN_TEST_POSTGRES_URL": "postgresql://x"}).engine == "sqlite"


def test_jobs_run_by_default_and_can_be_switched_off() -> None:
    assert load_settings({}).jobs_enabled
    settings = load_settings({"COLDCHAIN_JOBS_ENABLED": "false", "COLDCHAIN_WEBHOOK_INTERVAL_S": "0.5"})
    assert (settings.jobs_enabled, settings.webhook_interval_s) == (False, 0.5)


def test_metrics_are_off_until_a_token_or_an_address_is_set_and_an_ipv6_address_is_taken() -> None:
    assert (load_settings({}).metrics_token, load_settings({}).metrics_address) == (None, None)
    assert metrics_listener("[::1]:9464") == ("::1", 9464)
    assert metrics_listener("10.0.0.5:9464") == ("10.0.0.5", 9464)


def test_email_is_off_until_an_smtp_server_is_set_and_then_needs_a_sender_and_the_portals_address() -> None:
    assert load_settings({}).email_enabled is False
    settings = load_settings(
        {
            "COLDCHAIN_SMTP_HOST": "mail.example.org",
            "COLDCHAIN_SMTP_FROM": "coldchain <alerts@example.org>",
            "COLDCHAIN_PUBLIC_URL": "https://coldchain.example.org/",
            "COLDCHAIN_SMTP_USERNAME": "coldchain",
            "COLDCHAIN_SMTP_PASSWORD": "secret",
        }
    )
    assert settings.email_enabled and (settings.smtp_port, settings.smtp_tls) == (587, "starttls")
    assert settings.links_base == "https://coldchain.example.org"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"COLDCHAIN_SMTP_HOST": "mail", "COLDCHAIN_PUBLIC_URL": "https://c.example"}, "COLDCHAIN_SMTP_FROM"),
        ({"COLDCHAIN_SMTP_HOST": "mail", "COLDCHAIN_SMTP_FROM": "a@b.example"}, "COLDCHAIN_PUBLIC_URL"),
        ({"COLDCHAIN_PUBLIC_URL": "ftp://c.example"}, "COLDCHAIN_PUBLIC_URL: expected http(s)"),
        ({"COLDCHAIN_PUBLIC_URL": "https://c.example/?x=1"}, "COLDCHAIN_PUBLIC_URL"),
        ({"COLDCHAIN_SMTP_TLS": "ssl"}, "COLDCHAIN_SMTP_TLS"),
        (
            {
                "COLDCHAIN_SMTP_HOST": "mail",
                "COLDCHAIN_SMTP_FROM": "a@b.example",
                "COLDCHAIN_PUBLIC_URL": "https://c.example",
                "COLDCHAIN_SMTP_USERNAME": "u",
                "COLDCHAIN_SMTP_PASSWORD": "p",
                "COLDCHAIN_SMTP_TLS": "none",
            },
            "would send COLDCHAIN_SMTP_PASSWORD in clear",
        ),
        ({"COLDCHAIN_EMAIL_RETRY_S": "600", "COLDCHAIN_EMAIL_RETRY_MAX_S": "60"}, "COLDCHAIN_EMAIL_RETRY_MAX_S"),
    ],
)
def test_an_email_setting_that_cannot_work_stops_start_up_naming_it(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(environ)

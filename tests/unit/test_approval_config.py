"""Slack settings: Slack's usual names, secrets that never print, errors naming what is missing."""

from __future__ import annotations

import logging

import pytest

from runbooks.approvals.config import SlackNotConfigured, SlackSettings, require

TOKEN = "xoxb-1234-secret-value"


def test_secrets_never_show_in_repr_or_logs(caplog: pytest.LogCaptureFixture):
    settings = SlackSettings.model_validate(
        {"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": "shh-signing"}
    )
    logging.getLogger("test").warning("settings: %s %r", settings, settings)

    assert TOKEN not in caplog.text and "shh-signing" not in caplog.text
    assert settings.bot_token is not None and settings.bot_token.get_secret_value() == TOKEN


def test_read_from_slacks_usual_environment_names(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-1")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    monkeypatch.setenv("RUNBOOK_SLACK_CHANNEL", "C0OPS")
    monkeypatch.setenv("RUNBOOK_SLACK_API_URL", "http://127.0.0.1:9/api")

    settings = SlackSettings()

    assert settings.channel == "C0OPS"
    assert settings.base_url == "http://127.0.0.1:9/api/"  # slack-sdk's urljoin needs the slash


def test_missing_settings_are_named_without_values(monkeypatch: pytest.MonkeyPatch):
    for name in ("SLACK_APP_TOKEN", "RUNBOOK_SLACK_CHANNEL"):
        monkeypatch.delenv(name, raising=False)
    settings = SlackSettings.model_validate({"SLACK_BOT_TOKEN": TOKEN})

    with pytest.raises(SlackNotConfigured) as error:
        require(settings, "bot_token", "app_token", "channel")

    assert "SLACK_APP_TOKEN, RUNBOOK_SLACK_CHANNEL" in str(error.value)
    assert TOKEN not in str(error.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3000", ("127.0.0.1", 3000)),
        (":3000", ("127.0.0.1", 3000)),
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),
        ("[::1]:3000", ("::1", 3000)),
    ],
)
def test_listen_http_address_defaults_to_loopback(value, expected):
    from runbooks.cli.listen import _address

    assert _address(value) == expected


@pytest.mark.parametrize("value", ["host", "host:", "127.0.0.1:70000", "a:b"])
def test_listen_http_address_that_is_not_one_is_a_user_error(value):
    from runbooks.cli.errors import UserError
    from runbooks.cli.listen import _address

    with pytest.raises(UserError, match="--http wants HOST:PORT or PORT"):
        _address(value)

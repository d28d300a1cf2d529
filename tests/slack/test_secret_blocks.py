"""Slack secrets kept in Prefect Secret blocks instead of the environment."""

from __future__ import annotations

import pytest
from prefect.blocks.system import Secret

from runbooks.approvals.config import load_slack_settings

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


def test_secrets_missing_from_the_environment_are_read_from_prefect_secret_blocks(
    monkeypatch: pytest.MonkeyPatch,
):
    for name in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-from-env")
    Secret.model_validate({"value": "xoxb-from-block"}).save("slack-bot-token", overwrite=True)
    Secret.model_validate({"value": "xapp-from-block"}).save("slack-app-token", overwrite=True)
    try:
        settings = load_slack_settings()
    finally:  # the Prefect API is shared by the session: leave no secrets for other tests
        Secret.delete("slack-bot-token")
        Secret.delete("slack-app-token")

    assert settings.bot_token is not None
    assert settings.bot_token.get_secret_value() == "xoxb-from-block"
    assert settings.app_token.get_secret_value() == "xapp-from-env"  # type: ignore[union-attr]
    assert settings.signing_secret is None  # no block, no variable: reported when needed

"""Slack configuration from the environment (Slack's usual names) or Prefect Secret blocks.

Secrets are ``SecretStr`` so a repr, a log line or an artifact shows ``**********``.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

SLACK_API_DEFAULT = "https://slack.com/api/"

# Prefect Secret block names tried when the environment does not set a secret.
SECRET_BLOCKS = {
    "bot_token": "slack-bot-token",
    "app_token": "slack-app-token",
    "signing_secret": "slack-signing-secret",
}


class SlackSettings(BaseSettings):
    """Where approvals are posted and how the listener proves requests are Slack's."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    bot_token: SecretStr | None = Field(None, validation_alias="SLACK_BOT_TOKEN")
    app_token: SecretStr | None = Field(None, validation_alias="SLACK_APP_TOKEN")
    signing_secret: SecretStr | None = Field(None, validation_alias="SLACK_SIGNING_SECRET")
    channel: str | None = Field(
        None, validation_alias="RUNBOOK_SLACK_CHANNEL", description="Channel ID (C…)"
    )
    api_url: str = Field(
        SLACK_API_DEFAULT,
        validation_alias=AliasChoices("RUNBOOK_SLACK_API_URL"),
        description="Web API base URL; point it at the stand-in for tests and demos.",
    )
    app_id: str | None = Field(
        None,
        validation_alias="RUNBOOK_SLACK_APP_ID",
        description="Our app's ID (A…); clicks carrying another api_app_id are refused.",
    )

    @property
    def base_url(self) -> str:
        """slack-sdk joins with urljoin: without the trailing slash the path is dropped."""
        return self.api_url if self.api_url.endswith("/") else self.api_url + "/"


class SlackNotConfigured(RuntimeError):
    """A setting the approval gate or listener needs is missing; says which and how to set it."""


def load_slack_settings(*, use_prefect_blocks: bool = True) -> SlackSettings:
    """Environment first; missing secrets from Prefect Secret blocks when a Prefect API is set."""
    settings = SlackSettings()  # fields come from the environment
    if not use_prefect_blocks:
        return settings
    missing = {f: b for f, b in SECRET_BLOCKS.items() if getattr(settings, f) is None}
    if not missing:
        return settings
    found = _from_prefect_blocks(missing)
    return settings.model_copy(update={k: SecretStr(v) for k, v in found.items()})


def _from_prefect_blocks(names: dict[str, str]) -> dict[str, str]:
    import os

    if not os.environ.get("PREFECT_API_URL"):
        return {}
    from prefect.blocks.system import Secret

    found: dict[str, str] = {}
    for field, block in names.items():
        try:
            found[field] = str(Secret.load(block).get())  # type: ignore[union-attr]
        except (ValueError, RuntimeError):
            continue  # no such block: the caller reports what is missing
    return found


def require(settings: SlackSettings, *fields: str) -> None:
    """Fail with one line naming each missing setting (never its value)."""
    env = {
        "bot_token": "SLACK_BOT_TOKEN",
        "app_token": "SLACK_APP_TOKEN",
        "signing_secret": "SLACK_SIGNING_SECRET",
        "channel": "RUNBOOK_SLACK_CHANNEL",
    }
    missing = [env[f] for f in fields if getattr(settings, f) is None]
    if missing:
        raise SlackNotConfigured(
            f"missing Slack settings: {', '.join(missing)} "
            "(set them in the environment or as Prefect Secret blocks, see docs/slack-app.md)"
        )

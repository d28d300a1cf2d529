"""What Slack sends when someone clicks: the ``block_actions`` payload, parsed into models.

A payload is untrusted shape even when its signature is good (the signing secret could leak,
Slack adds fields): every field we read is typed and bounded here, so a list where an object
belongs, a 300-character user id or a missing field is a one-line refusal, never an exception
deeper in. Fields we do not read are ignored.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

# Slack IDs: users U…/W…, teams T…/E…, apps A…, channels C…/G…/D…. Upper case letters and digits.
SlackId = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z0-9]{2,32}$")]
Short = Annotated[str, StringConstraints(strict=True, max_length=64)]
ActionValue = Annotated[str, StringConstraints(strict=True, max_length=2000)]  # Slack's limit


class MalformedPayload(ValueError):
    """The payload is not a shape Slack sends; the message is one line, safe to answer with."""


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class User(_Part):
    id: SlackId
    team_id: SlackId | None = None


class Team(_Part):
    id: SlackId


class Channel(_Part):
    id: SlackId


class Container(_Part):
    """Where the button was: the message (channel + ts) the click came from."""

    channel_id: SlackId | None = None
    message_ts: Short | None = None


class Action(_Part):
    action_id: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=255)]
    value: ActionValue | None = None
    action_ts: Short | None = None


class BlockActions(_Part):
    """A button click (``type: block_actions``); only the fields the checks read."""

    type: Annotated[str, StringConstraints(strict=True, pattern=r"^block_actions$")]
    user: User
    actions: list[Action] = Field(min_length=1, max_length=25)
    team: Team | None = None
    api_app_id: SlackId | None = None
    container: Container | None = None
    channel: Channel | None = None

    @property
    def channel_id(self) -> str | None:
        if self.container and self.container.channel_id:
            return self.container.channel_id
        return self.channel.id if self.channel else None


class _Kind(_Part):
    type: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64)]


def read_interaction(data: Any) -> BlockActions | None:
    """The click in ``data``, None for an interaction that is not a click (ignored, acked).

    Raises ``MalformedPayload`` for anything that is not a shape Slack sends.
    """
    if not isinstance(data, dict):
        raise MalformedPayload(f"malformed payload: a JSON object expected, got {_kind(data)}")
    try:
        if _Kind.model_validate(data).type != "block_actions":
            return None
        return BlockActions.model_validate(data)
    except ValidationError as exc:
        raise MalformedPayload("malformed payload: " + _summary(exc)) from None


def _summary(exc: ValidationError) -> str:
    """First problems, by field path; never the offending value (it may be huge or hostile)."""
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}"
        for e in exc.errors(include_url=False, include_input=False)[:3]
    ]
    return "; ".join(parts).replace("\n", " ")


def _kind(data: Any) -> str:
    return "null" if data is None else type(data).__name__

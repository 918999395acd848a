"""The shapes of the Slack request bodies the router reads (pydantic).

Only the fields the router uses are declared, each with its type; everything else is
ignored. A body of another shape is a clear 400 naming the fields, never a 500.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class SlackCommand(_Body):
    """A slash command's form: every field is text, so any form fits."""

    command: str = ""
    text: str = ""
    trigger_id: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    response_url: str | None = None


class SlackUser(_Body):
    id: str | None = None
    username: str | None = None
    name: str | None = None


class SlackAction(_Body):
    action_id: str = ""
    value: str = ""
    action_ts: str | None = None


class SlackInteraction(_Body):
    """A ``block_actions`` payload (the buttons); other interaction types are not read."""

    type: str
    trigger_id: str | None = None
    response_url: str | None = None
    user: SlackUser = Field(default_factory=SlackUser)
    actions: list[SlackAction] = Field(default_factory=list)

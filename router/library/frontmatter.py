"""YAML front matter (``---`` … ``---`` at the top of a runbook)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from router.yamlfile import ConfigError, Locator, format_loc


class FrontMatter(BaseModel):
    """The keys a runbook's front matter may set; unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore")

    title: str | None = None
    category: str | None = None
    alerts: list[str] = Field(default_factory=list)
    description: str | None = None
    service: list[str] = Field(default_factory=list)  # one name, or the list a page covers
    team: str | None = None
    component: str | None = None
    owner: str | None = None
    tags: list[str] = Field(default_factory=list)
    alert_lines: dict[str, int] = Field(default_factory=dict, exclude=True)

    @field_validator("title", "description", "team", "component", "owner", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return str(value) if isinstance(value, int | float) else value

    @field_validator("alerts", "tags", "service", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        if isinstance(value, str | int | float):
            return [str(value)]
        if isinstance(value, list):
            return [str(v) if isinstance(v, int | float) else v for v in value]
        return value


def parse_front_matter(content: str, path: Path, first_line: int) -> FrontMatter:
    """Parse the YAML between the fences; ``first_line`` is the 1-based line of its first line."""
    offset = first_line - 1
    try:
        root = yaml.compose(content, Loader=yaml.SafeLoader)
        data = yaml.safe_load(content)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 + offset if mark else first_line
        raise ConfigError(path, line, f"invalid front matter YAML: {exc.problem or exc}") from None
    if data is None:
        return FrontMatter()
    locator = Locator(path, root)
    if not isinstance(data, dict):
        raise ConfigError(path, first_line, "front matter must be a YAML mapping")
    try:
        meta = FrontMatter.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        line = (locator.line(first["loc"]) or 1) + offset
        raise ConfigError(
            path, line, f"front matter {format_loc(first['loc'])}: {first['msg']}"
        ) from None
    lines = {
        name: (locator.line(("alerts", i)) or 1) + offset for i, name in enumerate(meta.alerts)
    }
    return meta.model_copy(update={"alert_lines": lines})

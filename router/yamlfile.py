"""YAML files that remember where each value came from, for errors that name a line.

``load_yaml`` returns the data and a :class:`Locator`; ``locator.line(("rules", 2,
"matchers"))`` gives the 1-based line of that value, so a validation error can say
``rules/default.yaml:14: rules[2].matchers: ...`` instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError


class ConfigError(Exception):
    """A problem in a file the router loads, with the file and line it is on."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Locator:
    """Maps a path of keys and indexes inside a YAML document to its line."""

    path: Path
    root: yaml.Node | None

    def line(self, loc: Sequence[str | int]) -> int | None:
        node = self.root
        best = node.start_mark.line + 1 if node is not None else None
        for key in loc:
            node = _child(node, key)
            if node is None:
                break
            best = node.start_mark.line + 1
        return best

    def error(self, loc: Sequence[str | int], message: str) -> ConfigError:
        return ConfigError(self.path, self.line(loc), message)

    def validation_error(
        self, exc: ValidationError, prefix: Sequence[str | int] = ()
    ) -> ConfigError:
        """The first pydantic error, placed on its line, the others summarised."""
        errors = exc.errors()
        first = errors[0]
        loc = (*prefix, *first["loc"])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return self.error(loc, f"{format_loc(loc)}: {first['msg']}{more}")


def _child(node: yaml.Node | None, key: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == key or str(k.value) == str(key):
                return v
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        return node.value[key]
    return None


def format_loc(loc: Sequence[str | int]) -> str:
    """``("rules", 2, "matchers")`` → ``rules[2].matchers``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def load_yaml(path: Path) -> tuple[Any, Locator]:
    """Read one YAML document, raising :class:`ConfigError` with a line on bad syntax."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(path, None, f"cannot read file: {exc.strerror or exc}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise ConfigError(path, line, f"invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, None, f"invalid YAML: {exc}") from None
    return data, Locator(path, root)

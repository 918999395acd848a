"""YAML files that remember where each value came from, for errors that name a line.

``load_yaml`` returns the data and a :class:`Locator`; ``locator.line(("rules", 2,
"matchers"))`` gives the 1-based line of that value, so a validation error can say
``rules/default.yaml:14: rules[2].matchers: ...`` instead of a traceback.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

T = TypeVar("T")


class ConfigError(Exception):
    """A problem in a file the router loads, with the file and line it is on."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line else self.path
        super().__init__(f"{where}: {message}")

    @property
    def problems(self) -> list[ConfigError]:
        """Every problem this error stands for (one, unless it is a :class:`ConfigErrors`)."""
        return [self]

    @property
    def sort_key(self) -> tuple[str, int]:
        return self.path, self.line or 0


class ConfigErrors(ConfigError):
    """Several problems, sorted by file and line; reads as the first one and a count."""

    def __init__(self, errors: Iterable[ConfigError]) -> None:
        self.errors = sorted((p for e in errors for p in e.problems), key=lambda e: e.sort_key)
        first = self.errors[0]
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        super().__init__(first.path, first.line, first.message + more)

    @property
    def problems(self) -> list[ConfigError]:
        return self.errors


def collect(problems: list[ConfigError], load: Callable[[], T]) -> T | None:
    """``load()``, or None with its problems added to ``problems``."""
    try:
        return load()
    except ConfigError as exc:
        problems.extend(exc.problems)
        return None


def raise_if_any(errors: Sequence[ConfigError]) -> None:
    """Raise every collected problem at once."""
    if errors:
        raise ConfigErrors(errors)


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
        self,
        exc: ValidationError,
        prefix: Sequence[str | int] = (),
        model: type[BaseModel] | None = None,
    ) -> ConfigErrors:
        """Every pydantic error, each on its line; ``model`` (the validated class) lets an
        unknown key say which known key it probably meant."""
        return ConfigErrors(self.problem(e, prefix, model) for e in exc.errors())

    def problem(
        self, error: Any, prefix: Sequence[str | int] = (), model: type[BaseModel] | None = None
    ) -> ConfigError:
        """One pydantic error (an item of ``ValidationError.errors()``) on its line."""
        loc = (*prefix, *error["loc"])
        return self.error(loc, f"{format_loc(loc)}: {_say(error, model)}")


def _child(node: yaml.Node | None, key: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == key or str(k.value) == str(key):
                return v
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        return node.value[key]
    return None


def _say(error: Any, model: type[BaseModel] | None) -> str:
    if error["type"] != "extra_forbidden" or model is None:
        return str(error["msg"])
    *parent, key = error["loc"]
    known = keys_at(model, parent)
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    return "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")


def keys_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The keys a model accepts at ``loc`` inside it (``("rules", 0)`` → a rule's keys)."""
    kind: Any = model
    for part in loc:
        kind = _inner(kind, part)
        if kind is None:
            return []
    kind = _models_in(kind)
    return (
        [alias for field in kind.model_fields.items() for alias in _names(*field)] if kind else []
    )


def _inner(kind: Any, part: str | int) -> Any:
    model = _models_in(kind)
    if model is not None and isinstance(part, str):
        field = next((f for name, f in model.model_fields.items() if part in _names(name, f)), None)
        return field.annotation if field else None
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if isinstance(part, int) or typing.get_origin(kind) is dict:
        return args[-1] if args else None
    return None


def _models_in(kind: Any) -> type[BaseModel] | None:
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return kind
    if typing.get_origin(kind) in (typing.Union, types.UnionType, typing.Annotated):
        return next((m for m in map(_models_in, typing.get_args(kind)) if m), None)
    return None


def _names(name: str, field: Any) -> list[str]:
    return [field.alias] if field.alias else [name]


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
        raise _syntax_error(path, exc) from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, None, f"invalid YAML: {exc}") from None
    raise_if_any(list(_duplicate_keys(path, root)))
    return data, Locator(path, root)


def _syntax_error(path: Path, exc: yaml.MarkedYAMLError) -> ConfigError:
    """Where the problem starts: an unterminated quote is where the quote opens."""
    context = exc.context or ""
    starts = "quoted scalar" in context or exc.problem_mark is None
    mark = exc.context_mark if starts and exc.context_mark else exc.problem_mark
    line = mark.line + 1 if mark else None
    problem = exc.problem or str(exc)
    if starts and "quoted" in context:
        problem = f"unterminated quoted string ({problem})"
    return ConfigError(path, line, f"invalid YAML: {problem}")


def _duplicate_keys(path: Path, node: yaml.Node | None) -> Iterable[ConfigError]:
    """A key given twice in one mapping (YAML would silently keep the last one)."""
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            name, line = str(key.value), key.start_mark.line + 1
            if name in first and key.tag != "tag:yaml.org,2002:merge":
                yield ConfigError(
                    path, line, f"duplicate key {name!r} (first at line {first[name]})"
                )
            first.setdefault(name, line)
            yield from _duplicate_keys(path, value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _duplicate_keys(path, item)

"""``ROUTER_*`` environment variables → configuration keys, at any depth.

Every key of the settings model has one variable: its path joined with ``_``, upper-cased
(``diagnostics.kubernetes.enabled`` is ``ROUTER_DIAGNOSTICS_KUBERNETES_ENABLED``). A key
whose value is a list, a mapping or a section also takes JSON. ``ROUTER_<KEY>_FILE=/path``
supplies a key from a file (a mounted secret). Any other ``ROUTER_*`` variable is
*unknown*: ignored, never fatal, and reported with the closest known name (a typo, or a
Kubernetes service link such as ``ROUTER_SLACK_SERVICE_HOST``).
"""

from __future__ import annotations

import difflib
import json
import re
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from router.yamlfile import ConfigError, keys_at

PREFIX = "ROUTER_"
CONFIG_VARIABLE = "ROUTER_CONFIG"  # names the YAML file; not a key
FILE_SUFFIX = "_FILE"
# What Kubernetes adds for a Service named router-*: ROUTER_SLACK_SERVICE_HOST, ..._PORT_80_TCP.
SERVICE_LINK = re.compile(
    r"_(SERVICE_HOST|SERVICE_PORT(_\w+)?|PORT(_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)$"
)


@dataclass(frozen=True)
class Variable:
    """One known variable: the key path it sets, and whether its value is JSON."""

    path: tuple[str, ...]
    json: bool


@dataclass
class Environment:
    """What the ``ROUTER_*`` variables set: nested values, and which variable set which key."""

    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[tuple[str, ...], str] = field(default_factory=dict)

    def origin(self, loc: tuple[str | int, ...]) -> str | None:
        """The variable that supplied the value at ``loc`` (or a section holding it)."""
        for length in range(len(loc), 0, -1):
            name = self.origins.get(tuple(str(p) for p in loc[:length]))
            if name:
                return name
        return None


def variables(model: type[BaseModel], skip: frozenset[str] = frozenset()) -> dict[str, Variable]:
    """Every variable the model's keys can be set by, by name."""
    return {
        PREFIX + "_".join(path).upper(): Variable(path, json)
        for path, json in _paths(model, ())
        if path[0] not in skip
    }


def _paths(
    model: type[BaseModel], prefix: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], bool]]:
    for name in keys_at(model, ()):
        annotation = _annotation(model, name)
        nested = _section(annotation)
        yield (*prefix, name), nested is not None or _is_container(annotation)
        if nested is not None:
            yield from _paths(nested, (*prefix, name))


def _annotation(model: type[BaseModel], key: str) -> Any:
    return next(f.annotation for n, f in model.model_fields.items() if key in (n, f.alias))


def _section(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _is_container(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return origin in (list, dict, tuple, set) or (
        origin is not None and any(_is_container(a) for a in typing.get_args(annotation))
    )


def read_environment(
    model: type[BaseModel], environ: Mapping[str, str], skip: frozenset[str] = frozenset()
) -> Environment:
    """The values ``environ``'s ``ROUTER_*`` variables give the model's keys.

    Raises :class:`ConfigError` naming the variable for a JSON value that does not parse
    or a ``*_FILE`` that cannot be read.
    """
    known = variables(model, skip)
    given = {name.upper(): value for name, value in environ.items() if _ours(name)}
    env = Environment()
    for name in sorted(given, key=lambda n: (len(n), n)):  # sections before their keys
        base = name.removesuffix(FILE_SUFFIX)
        if name in known:
            value = given[name]
        elif base in known and base not in given:  # the variable itself wins over its file
            if not given[name]:
                continue  # an empty *_FILE names no file
            value, name = _read_file(name, given[name]), base
        else:
            continue  # unknown: see unknown_variable_warnings
        variable = known[name]
        if variable.json and not value.strip():
            continue  # an empty list, mapping or section (e.g. an empty Secret key): unset
        _place(env.values, variable.path, _decode(name, value) if variable.json else value)
        env.origins[variable.path] = name
    return env


def unknown_variable_warnings(
    model: type[BaseModel], environ: Mapping[str, str], skip: frozenset[str] = frozenset()
) -> list[str]:
    """One line per unknown ``ROUTER_*`` variable, naming the closest known one."""
    known = [*variables(model, skip), CONFIG_VARIABLE]
    lines = []
    for name in sorted(n.upper() for n in environ if _ours(n)):
        if name in known or name.removesuffix(FILE_SUFFIX) in known:
            continue
        if SERVICE_LINK.search(name):
            hint = "a Kubernetes service link (set enableServiceLinks: false on the pod)"
        else:
            base = name.removesuffix(FILE_SUFFIX)
            hint = _closest(base, known, suffix=name[len(base) :])
        lines.append(f"ignoring environment variable {name}: {hint}")
    return lines


def _closest(name: str, known: list[str], suffix: str = "") -> str:
    """``did you mean X?``, comparing the names without their common prefix."""
    bare = {k.removeprefix(PREFIX): k for k in known}
    close = difflib.get_close_matches(name.removeprefix(PREFIX), list(bare), n=1, cutoff=0.7)
    return f"did you mean {bare[close[0]]}{suffix}?" if close else "no such setting"


def _ours(name: str) -> bool:
    return name.upper().startswith(PREFIX) and name.upper() != CONFIG_VARIABLE


def _read_file(name: str, path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(name, None, f"cannot read {path} ({exc.strerror})") from None


def _decode(name: str, value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ConfigError(name, None, f"not valid JSON: {exc.msg} at column {exc.colno}") from None


def _place(values: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    holder = values
    for key in path[:-1]:
        nested = holder.get(key)
        holder[key] = holder = dict(nested) if isinstance(nested, dict) else {}
    holder[path[-1]] = value

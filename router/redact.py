"""Redaction of secrets from text that leaves the process (logs, diagnostics, messages).

Two layers: exact *known* secret values (the configured tokens and passwords, registered
at start-up) and *patterns* that look like credentials wherever they come from
(``Authorization`` headers, Slack tokens, passwords in URLs, ``token=…`` pairs).
Everything is replaced by ``***``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, SecretStr

MASK = "***"

_SECRET_KEYS = r"[\w.-]*?(?:token|password|passwd|pwd|secret|api[_-]?key|routing[_-]?key)"

# A piece of every name ``_SECRET_KEYS`` matches, lower-cased.
_KEY_WORD = re.compile("token|passw|pwd|secret|api|routing")

_SECRET_KEY = re.compile(r"(?i)" + _SECRET_KEYS + r"|authorization|dsn")

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # ``Authorization: Bearer abc`` / ``authorization=Basic abc`` / ``Authorization: abc``
    (
        re.compile(
            r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token)\s+)?)[^\s\"',;]+"
        ),
        r"\1" + MASK,
    ),
    # A bare ``Bearer abc`` / ``Basic dXNlcjpwYXNz`` credential.
    # (A credential has a character other than a lower-case letter: "Basic authentication" stays.)
    (
        re.compile(r"\b(Bearer|Basic)\s+(?=[a-z]*[^a-z\s])(?!\*\*\*|realm=)[A-Za-z0-9._~+/=-]{6,}"),
        r"\1 " + MASK,
    ),
    # Slack tokens (bot, user, app-level, refresh, legacy).
    (re.compile(r"\bxox[abeoprs]-[A-Za-z0-9-]+|\bxapp-[A-Za-z0-9-]+"), MASK),
    # ``scheme://user:password@host``.
    (re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)[^\s/@]+(@)"), r"\1" + MASK + r"\2"),
    # ``token=abc``, ``password: abc``, ``"api_key": "abc"``, ``?secret=abc&``.
    (
        re.compile(
            r"(?i)(\b"
            + _SECRET_KEYS
            + r"[\"']?\s*[=:]\s*[\"']?)(?!\*\*\*|None\b|null\b|SecretStr\()[^\s&\"',;}\]]+"
        ),
        r"\1" + MASK,
    ),
)


# What each of ``_PATTERNS`` cannot match without, in the same order.
_NEEDS: tuple[Any, ...] = (
    # (Case-insensitive matching knows letters beyond ASCII that lower() does not map.)
    lambda text: not text.isascii() or "authorization" in text.lower(),
    lambda text: "Bearer" in text or "Basic" in text,
    lambda text: "xox" in text or "xapp-" in text,
    lambda text: "://" in text,
    lambda text: not text.isascii() or _KEY_WORD.search(text.lower()) is not None,
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with the given secret values and credential-like patterns masked."""
    return _redact(text, _longest_first(_variants(secrets)))


def _longest_first(variants: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(variants, key=len, reverse=True))


def _redact(text: str, ordered: tuple[str, ...]) -> str:
    """:func:`redact` with the secrets' variants already made and ordered longest first."""
    for secret in ordered:
        text = text.replace(secret, MASK)
    # Each pattern only where it can match: every one needs a piece of literal text
    # (a text with none of them, a label value say, skips the regular expressions).
    for (pattern, replacement), needed in zip(_PATTERNS, _NEEDS, strict=True):
        if needed(text):
            text = pattern.sub(replacement, text)
    return text


@functools.lru_cache(maxsize=1024)  # field names: a small set, asked about per log line
def is_secret_key(name: str) -> bool:
    """Whether a field named ``name`` (``bot_token``, ``password``, ``api_key``…) holds a secret."""
    return _SECRET_KEY.fullmatch(name) is not None


def _variants(secrets: Iterable[str]) -> set[str]:
    """Each secret as it may appear in text: raw, JSON-escaped, ``repr``-escaped."""
    out: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        out.add(secret)
        out.add(json.dumps(secret)[1:-1])
        out.add(repr(secret)[1:-1])
    out.discard("")
    return out


class Redactor:
    """Masks the secrets registered with :meth:`add`, plus the built-in patterns.

    Create one at start-up, register every configured secret, and hand it to whatever
    writes text out (the log handler, diagnostics, sinks).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._ordered: tuple[str, ...] = ()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | SecretStr | None) -> None:
        """Register a secret value (empty values and ``None`` are ignored)."""
        if isinstance(secret, SecretStr):
            secret = secret.get_secret_value()
        if secret:
            self._secrets |= _variants([secret])
            # As :func:`redact` does: the variants' own variants too.
            self._ordered = _longest_first(_variants(self._secrets))

    def __call__(self, text: str) -> str:
        return _redact(text, self._ordered)

    def value(self, value: Any) -> Any:
        """Redact strings inside ``value`` (dicts, lists, tuples); other scalars pass through."""
        if isinstance(value, str):
            return self(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {
                str(k): MASK if is_secret_key(str(k)) and v else self.value(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(v) for v in value]
        return self(str(value))


def secret_values(model: BaseModel) -> list[str]:
    """Every :class:`SecretStr` value in ``model`` and its nested models.

    A secret that is a URL also contributes its decoded password, which may show up
    on its own (in a driver's error message, say).
    """
    found: list[str] = []
    for name in type(model).model_fields:
        _collect(getattr(model, name), found)
    return found


def _collect(value: Any, found: list[str]) -> None:
    if isinstance(value, SecretStr):
        raw = value.get_secret_value()
        if raw:
            found.append(raw)
            found.extend(_url_password(raw))
    elif isinstance(value, BaseModel):
        found.extend(secret_values(value))
    elif isinstance(value, Mapping):
        for item in value.values():
            _collect(item, found)
    elif isinstance(value, list | tuple):
        for item in value:
            _collect(item, found)


def _url_password(text: str) -> list[str]:
    if "://" not in text:
        return []
    try:
        password = urlsplit(text).password
    except ValueError:
        return []
    if not password:
        return []
    return [password, unquote(password)] if unquote(password) != password else [password]

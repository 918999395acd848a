"""Structured logging: text for humans, JSON lines for machines, never a secret.

Every record written by the handler :func:`configure_logging` installs goes through a
:class:`~router.redact.Redactor`: the message (after ``%`` formatting), the extra fields
and the exception text. Pass extra fields the usual way::

    log.info("webhook received", extra={"receiver": "team-a", "alerts": 3})
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from router.redact import MASK, Redactor, is_secret_key

LogFormat = Literal["text", "json"]

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName", "color_message"}  # uvicorn adds color_message
)

# Loggers that install their own handlers (uvicorn with its default ``log_config``);
# they are reset to propagate to the root handler instead.
_SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields passed to a log call through ``extra=``."""
    return {
        k: v for k, v in vars(record).items() if k not in _RECORD_ATTRS and not k.startswith("_")
    }


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _RedactingFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def _by_name(self, key: str, value: Any) -> Any:
        """A field named for a secret is masked; inside a container, so is each such key."""
        if value and is_secret_key(key):
            return MASK
        return value if isinstance(value, str | int | float) else self.redactor.value(value)

    def _exception(self, record: logging.LogRecord) -> str | None:
        parts = []
        if record.exc_info:
            parts.append(self.formatException(record.exc_info))
        elif record.exc_text:
            parts.append(record.exc_text)
        if record.stack_info:
            parts.append(self.formatStack(record.stack_info))
        return self.redactor("\n".join(parts)) if parts else None


class TextFormatter(_RedactingFormatter):
    """``2024-05-01T12:00:00.000Z INFO logger message key=value …`` plus any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname} {record.name} {record.getMessage()}"
        for key, value in extra_fields(record).items():
            line += f" {key}={_text_value(self._by_name(key, value))}"
        line = self.redactor(line)  # the whole line, so each value's text is redacted too
        exception = self._exception(record)
        return f"{line}\n{exception}" if exception else line


def _text_value(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif type(value) is int:  # most fields: counts, statuses (not bool, which JSON spells)
        text = str(value)
    else:
        text = json.dumps(value, default=str)
    if not text or _NEEDS_QUOTES.search(text):
        return json.dumps(text)
    return text


_NEEDS_QUOTES = re.compile(r'[\s"=]')


class JsonFormatter(_RedactingFormatter):
    """One JSON object a line: ``ts``, ``level``, ``logger``, ``msg``, extras, ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "msg": self.redactor(record.getMessage()),
        }
        extras = self.redactor.value(extra_fields(record))
        entry.update({k: v for k, v in extras.items() if k not in entry})
        exception = self._exception(record)
        if exception:
            entry["exc"] = exception
        return json.dumps(entry, default=str, ensure_ascii=False)


def make_handler(
    format: LogFormat = "text", redactor: Redactor | None = None, stream: TextIO | None = None
) -> logging.Handler:
    """A stream handler with the formatter for ``format``, redacting through ``redactor``."""
    redactor = redactor if redactor is not None else Redactor()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    formatter = JsonFormatter(redactor) if format == "json" else TextFormatter(redactor)
    handler.setFormatter(formatter)
    return handler


def configure_logging(
    format: LogFormat = "text",
    level: str | int = "info",
    *,
    redactor: Redactor | None = None,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Make the root logger write through one redacting handler; return that handler.

    Replaces the root logger's handlers, and routes uvicorn's loggers to it (run
    uvicorn with ``log_config=None`` so it does not install its own again).
    """
    handler = make_handler(format, redactor, stream)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in _SERVER_LOGGERS:
        server_logger = logging.getLogger(name)
        for old in list(server_logger.handlers):
            server_logger.removeHandler(old)
        server_logger.propagate = True
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # the PagerDuty client: a line per call
    return handler

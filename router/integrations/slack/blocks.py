"""Block Kit building under Slack's limits, and splitting long mrkdwn between messages.

Every builder clips its text to the documented limit, so no payload built here is
refused with ``invalid_blocks`` or ``msg_too_long``. :func:`split` cuts a list of
converted markdown blocks into pieces that each fit one section, at block
boundaries; a code block longer than a piece is cut between lines and re-fenced.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from router.integrations.slack.mrkdwn import Block

MAX_BLOCKS = 50
SECTION_TEXT = 3000
FIELD_TEXT = 2000
MAX_FIELDS = 10
HEADER_TEXT = 150
FALLBACK_TEXT = 4000
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
URL = 3000
MAX_BUTTONS = 25
CONTEXT_ELEMENTS = 10
REPLY_TEXT = 12000  # text per thread reply; Slack refuses messages near 40,000

_FENCE = "```"
_ELLIPSIS = "…"

JSON = dict[str, Any]


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    entity = cut.rfind("&")
    if entity >= len(cut) - 5 and ";" not in cut[entity:]:
        cut = cut[:entity]  # never leave half of "&amp;"
    return cut + _ELLIPSIS


def header(text: str) -> JSON:
    return {"type": "header", "text": _plain(text, HEADER_TEXT)}


def section(text: str, fields: Iterable[str] = ()) -> JSON:
    block: JSON = {"type": "section", "text": _mrkdwn(text or " ", SECTION_TEXT)}
    shown = [_mrkdwn(f, FIELD_TEXT) for f in fields][:MAX_FIELDS]
    if shown:
        block["fields"] = shown
    return block


def context(*texts: str) -> JSON:
    elements = [_mrkdwn(t, SECTION_TEXT) for t in texts if t][:CONTEXT_ELEMENTS]
    return {"type": "context", "elements": elements or [_mrkdwn(" ", SECTION_TEXT)]}


def divider() -> JSON:
    return {"type": "divider"}


def link_button(text: str, url: str, action_id: str) -> JSON | None:
    """A button that opens ``url``; ``None`` unless it is an http(s) URL short enough to send."""
    if not url.startswith(("https://", "http://")) or len(url) > URL:
        return None
    return {"type": "button", "text": _plain(text, BUTTON_TEXT), "url": url, "action_id": action_id}


def value_button(text: str, action_id: str, value: str) -> JSON:
    button = {"type": "button", "text": _plain(text, BUTTON_TEXT), "action_id": action_id}
    return {**button, "value": value[:BUTTON_VALUE]}


def actions(buttons: Iterable[JSON | None], block_id: str | None = None) -> JSON | None:
    elements = [b for b in buttons if b is not None][:MAX_BUTTONS]
    if not elements:
        return None
    block: JSON = {"type": "actions", "elements": elements}
    if block_id:
        block["block_id"] = block_id[:255]
    return block


def fit(blocks: list[JSON], limit: int = MAX_BLOCKS) -> list[JSON]:
    """At most ``limit`` blocks, keeping a trailing actions block (the buttons matter)."""
    if len(blocks) <= limit:
        return blocks
    tail = [blocks[-1]] if blocks[-1]["type"] == "actions" else []
    keep = blocks[: limit - len(tail) - 1]
    return [*keep, context("_(shortened: more in the thread)_"), *tail]


def split(parts: list[Block], limit: int = SECTION_TEXT) -> list[str]:
    """Pack converted blocks into pieces of at most ``limit`` characters, at block boundaries."""
    pieces: list[str] = []
    current = ""
    for part in parts:
        for chunk in _cut(part, limit):
            joined = f"{current}\n\n{chunk}" if current else chunk
            if len(joined) <= limit:
                current = joined
                continue
            if current:
                pieces.append(current)
            current = chunk
    if current:
        pieces.append(current)
    return pieces


def group(
    pieces: list[str], max_text: int = REPLY_TEXT, max_blocks: int = MAX_BLOCKS
) -> list[list[str]]:
    """Group section texts into messages of at most ``max_text`` characters and blocks."""
    messages: list[list[str]] = []
    size = 0
    for piece in pieces:
        if not messages or size + len(piece) > max_text or len(messages[-1]) >= max_blocks:
            messages.append([])
            size = 0
        messages[-1].append(piece)
        size += len(piece)
    return messages


def _cut(part: Block, limit: int) -> list[str]:
    """One block as chunks of at most ``limit`` characters."""
    if len(part.text) <= limit:
        return [part.text]
    if part.kind in ("code", "table"):
        body = part.text[len(_FENCE) + 1 : -(len(_FENCE) + 1)]
        room = limit - 2 * (len(_FENCE) + 1)
        return [f"{_FENCE}\n{chunk}\n{_FENCE}" for chunk in _lines(body, room)]
    return _lines(part.text, limit)


def _lines(text: str, limit: int) -> list[str]:
    """Cut ``text`` between lines (or words, or anywhere) into chunks of at most ``limit``."""
    chunks: list[str] = []
    current = ""
    for line in text.split("\n"):
        for piece in _long_line(line, limit):
            joined = f"{current}\n{piece}" if current else piece
            if len(joined) <= limit:
                current = joined
            else:
                chunks.append(current)
                current = piece
    if current:
        chunks.append(current)
    return chunks


def _long_line(line: str, limit: int) -> list[str]:
    pieces: list[str] = []
    while len(line) > limit:
        cut = line.rfind(" ", 0, limit)
        cut = cut if cut > limit // 2 else limit
        pieces.append(line[:cut])
        line = line[cut:].lstrip(" ")
    return [*pieces, line]


def _plain(text: str, limit: int) -> JSON:
    return {"type": "plain_text", "text": clip(text or " ", limit), "emoji": True}


def _mrkdwn(text: str, limit: int) -> JSON:
    return {"type": "mrkdwn", "text": clip(text, limit)}

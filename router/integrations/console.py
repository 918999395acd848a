"""The console sink: shows what would have been posted, on standard output or in a file.

It is the embedded default, on when neither Slack nor PagerDuty is configured.
``text`` renders ``templates/console.txt.j2`` for humans; ``json`` writes one
triage result per line for machines.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TextIO

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from router.delivery import Delivery
from router.render.limits import shown
from router.render.order import verdicts_first
from router.retriage_request import RetriageRequest
from router.triage import TriageResult

EXCERPT_LINES = 12  # of a runbook section, unless its first commands need more
MAX_EXCERPT_LINES = 40  # the most it grows to reach the end of the first code block
FENCES = ("```", "~~~")


class ConsoleSink:
    name = "console"

    def __init__(
        self,
        templates: Path,
        *,
        format: Literal["text", "json"] = "text",
        path: Path | None = None,
        stream: TextIO | None = None,
    ) -> None:
        self.format = format
        self.path = path
        self.stream = stream
        env = Environment(
            loader=FileSystemLoader(str(templates)),
            autoescape=select_autoescape(default=False),
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        self._template = env.get_template("console.txt.j2") if format == "text" else None
        self._lock = asyncio.Lock()

    def render(self, result: TriageResult) -> list[Delivery]:
        key = f"console:{result.alert.state_key}"
        return [Delivery(self.name, "print", key, {"text": self.render_text(result, key)})]

    def render_text(
        self, result: TriageResult, key: str = "", destinations: Sequence[str] = ()
    ) -> str:
        """One record; ``destinations`` (for ``triage``) says where the alert would go."""
        if self._template is None:
            record = (
                {"key": key, **result.model_dump(mode="json")}
                if key
                else result.model_dump(mode="json")
            )
            return json.dumps(record, separators=(",", ":"))
        findings = verdicts_first(result.findings)
        lines = result.runbook.markdown.splitlines() if result.runbook else []
        length = excerpt_length(lines)
        text = self._template.render(
            r=result,
            labels=shown(result.alert.labels),
            findings=findings,
            excerpt_lines=lines[:length],
            more_lines=len(lines) - length,
            destinations=destinations,
        ).rstrip()
        return f"{text}\n    id: {key}" if key else text

    async def send(self, delivery: Delivery) -> dict[str, Any] | None:
        text = delivery.payload["text"] + "\n"
        async with self._lock:
            if self.path is not None:
                await asyncio.to_thread(_append, self.path, text)
            else:
                stream = self.stream or sys.stdout
                stream.write(text)
                stream.flush()
        return None

    async def already_delivered(self, delivery: Delivery) -> bool:
        """Only a file can be checked: look for the delivery's key in it."""
        if self.path is None:
            return False
        return await asyncio.to_thread(_contains, self.path, delivery.key)

    async def retriage(
        self, result: TriageResult, request: RetriageRequest, *, rerun: bool
    ) -> list[Delivery]:
        return []  # nobody asks the console

    def retriage_failed(self, request: RetriageRequest, reason: str) -> list[Delivery]:
        return []

    async def aclose(self) -> None:
        """Nothing to release: every line is flushed as it is written."""


def excerpt_length(lines: Sequence[str]) -> int:
    """How many lines of a runbook section to show: the first ``EXCERPT_LINES``, or up to
    the end of its first code block (the first commands) when that is near enough; never
    a cut inside a code block, never trailing blank lines."""
    fences = [i for i, line in enumerate(lines) if line.lstrip().startswith(FENCES)]
    end = min(len(lines), EXCERPT_LINES)
    if len(fences) >= 2 and fences[1] < MAX_EXCERPT_LINES:
        end = max(end, fences[1] + 1)
    opened = [i for i in fences if i < end]
    if len(opened) % 2:  # the cut is inside a code block: stop before it
        end = opened[-1]
    while end and not lines[end - 1].strip():
        end -= 1
    return end


def _contains(path: Path, key: str) -> bool:
    """Whether a complete record with this key is in the file (a torn last line is not)."""
    text_marker, json_marker = f"    id: {key}\n", f'"key":"{key}"'
    try:
        with path.open(encoding="utf-8") as handle:
            return any(
                line == text_marker or (json_marker in line and line.endswith("\n"))
                for line in handle
            )
    except FileNotFoundError:
        return False


def _append(path: Path, text: str) -> None:
    """Append a record, first ending a line torn by a crash so records never run together."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("ab") as handle:
        if handle.tell() > 0:
            with path.open("rb") as reader:
                reader.seek(-1, 2)
                if reader.read(1) != b"\n":
                    text = "\n" + text
        handle.write(text.encode("utf-8"))

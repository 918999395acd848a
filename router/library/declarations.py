"""Finding the alert names a runbook section declares.

Recognised forms: a labelled line (``Alert: X``, ``Alertname: X``, ``**Name**: `X```),
a CamelCase code span on a line that mentions an alert or a name, a table with
an ``Alert``/``Alertname`` column, and a heading that is itself an alert name.
"""

from __future__ import annotations

import re

from markdown_it.token import Token

from router.library.markdown import link_hrefs, plain_text

IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_CAMEL = re.compile(r"[A-Z][A-Za-z0-9]*[a-z0-9][A-Z][A-Za-z0-9]*")
_LABEL = re.compile(
    r"^[\W\d_]*(?:alert\s*name|alertname|alerts?)\W*?\s*[:=]\s*(?P<value>.*)$", re.I
)
# "**Name**: CheckoutLatencyHigh": a name label declares an alert when its value looks like one.
_NAME_LABEL = re.compile(r"^[\W\d_]*name\W*?\s*[:=]\s*(?P<value>\S+)\s*$", re.I)
_QUOTES = "\"'`\u201c\u201d\u2018\u2019"  # straight, back and curly quotes
_MENTION = re.compile(r"\b(?:alerts?|alertname|name)\b", re.I)
_ALERT_COLUMNS = frozenset({"alert", "alerts", "alertname", "alert name"})
# A "Name" column declares alerts only when its cells look like alert names.
_NAME_COLUMNS = frozenset({"name", "rule", "alerting rule"})

# Kubernetes container states look like alert names but are reasons, not alerts.
_K8S_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "OOMKilled",
        "CreateContainerConfigError",
        "CreateContainerError",
        "ContainerCreating",
        "RunContainerError",
        "InvalidImageName",
        "PodInitializing",
    }
)

Found = tuple[str, str]


def looks_like_alert(text: str) -> bool:
    """A CamelCase identifier such as ``KubePodCrashLooping`` (not a Kubernetes reason)."""
    return bool(_CAMEL.fullmatch(text)) and text not in _K8S_REASONS


def line_declarations(children: list[Token]) -> list[Found]:
    """``(name, how)`` pairs declared on one line of inline tokens."""
    text = plain_text(children).strip()
    codes = [c.content.strip() for c in children if c.type == "code_inline"]
    label = _LABEL.match(text)
    if label:
        names = [c for c in codes if IDENTIFIER.fullmatch(c)] or _names_in(label["value"])
        return [(name, "label") for name in names]
    named = _NAME_LABEL.match(text)
    if named and looks_like_alert(named["value"].strip(_QUOTES)):
        return [(named["value"].strip(_QUOTES), "label")]
    if _MENTION.search(text):
        return [(c, "code span") for c in codes if looks_like_alert(c)]
    return []


def _names_in(value: str) -> list[str]:
    """Names in a label's value: ``A, B`` or ``A (critical)``."""
    names = []
    for part in value.split(","):
        words = [w.strip(_QUOTES) for w in part.split()]
        if not words or not IDENTIFIER.fullmatch(words[0]):
            continue
        if len(words) == 1 or _CAMEL.fullmatch(words[0]):
            names.append(words[0])
    return names


def table_declarations(tokens: list[Token], start: int) -> list[tuple[str, int, str | None]]:
    """``(name, line, target)`` for each row of the table at ``tokens[start]``.

    Only tables with an Alert/Alertname column count; ``target`` is the first
    local link in the row, when there is one.
    """
    found: list[tuple[str, int, str | None]] = []
    column: int | None = None
    camel_only = False
    cells: list[Token] = []
    for token in tokens[start:]:
        if token.type == "table_close":
            break
        if token.type == "tr_open":
            cells = []
        elif token.type == "inline":
            cells.append(token)
        elif token.type == "tr_close" and column is None:
            headers = [plain_text(c.children or []).strip().lower() for c in cells]
            column = next((i for i, h in enumerate(headers) if h in _ALERT_COLUMNS), -1)
            if column < 0:
                column = next((i for i, h in enumerate(headers) if h in _NAME_COLUMNS), -1)
                camel_only = column >= 0
        elif token.type == "tr_close" and 0 <= column < len(cells):
            rows = _row_declarations(cells, column)
            found.extend(r for r in rows if not camel_only or looks_like_alert(r[0]))
    return found


def _row_declarations(cells: list[Token], column: int) -> list[tuple[str, int, str | None]]:
    cell = cells[column]
    children = cell.children or []
    codes = [c.content.strip() for c in children if c.type == "code_inline"]
    names = codes or [plain_text(children).strip()]
    hrefs = [h for c in cells for h in link_hrefs(c.children or []) if "://" not in h]
    line = cell.map[0] + 1 if cell.map else 0
    target = hrefs[0] if hrefs else None
    return [(name, line, target) for name in names if IDENTIFIER.fullmatch(name)]


def heading_declares(title: str) -> bool:
    """A heading that is itself an alert name, like ``## KubePodCrashLooping``."""
    return looks_like_alert(title.strip())

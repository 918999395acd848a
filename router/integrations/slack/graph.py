"""A small PNG of the alert expression over the last hour, for a chat thread.

Drawn with matplotlib's object API on the ``Agg`` canvas (no pyplot, so no global
figure state and no display needed), imported on first use. Values are labelled as an engineer reads them
(ms, %, MiB) when the unit can be told from the expression.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import UTC, datetime

from router.units import format_value

_UNITS = (
    (re.compile(r"_ratio\b|\bratio\b"), "ratio"),
    (re.compile(r"_percent\b|_pct\b"), "percent"),
    (re.compile(r"_seconds(_bucket|_sum|_count|_total)?\b|duration|latency"), "seconds"),
    (re.compile(r"_bytes(_total)?\b"), "bytes"),
)
_LABELS = {"ratio": "ratio (%)", "percent": "percent", "seconds": "seconds", "bytes": "bytes"}
_TITLE = 80


def guess_unit(expression: str) -> str:
    """``ratio``, ``percent``, ``seconds``, ``bytes`` or ``""``, from metric names in a PromQL."""
    for pattern, unit in _UNITS:
        if pattern.search(expression):
            return unit
    return ""


def render_png(
    points: Sequence[tuple[float, float]],
    *,
    title: str,
    unit: str = "",
    start: float | None = None,
) -> bytes | None:
    """The points (unix seconds, value) as a PNG; ``None`` for fewer than two points."""
    if len(points) < 2:
        return None
    # Imported here: matplotlib and numpy are ~50 MiB that a router without Slack never needs.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import DateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    figure = Figure(figsize=(6.4, 2.6), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    times = [datetime.fromtimestamp(t, UTC) for t, _ in points]
    axes.plot(times, [v for _, v in points], color="#e01e5a", linewidth=1.5)
    if start is not None and times[0].timestamp() <= start <= times[-1].timestamp():
        axes.axvline(
            datetime.fromtimestamp(start, UTC), color="#555555", linestyle="--", linewidth=1
        )
        axes.annotate(
            "alert start",
            (datetime.fromtimestamp(start, UTC), 1),
            xycoords=("data", "axes fraction"),
            xytext=(3, -10),
            textcoords="offset points",
            fontsize=7,
            color="#555555",
        )
    axes.set_title(title if len(title) <= _TITLE else title[: _TITLE - 1] + "…", fontsize=8)
    axes.set_ylabel(_LABELS.get(unit, "value"), fontsize=8)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda v, _: format_value(v, unit)))
    axes.xaxis.set_major_formatter(DateFormatter("%H:%M", tz=UTC))
    axes.tick_params(labelsize=7)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()

"""The alert expression's graph as a PNG."""

from __future__ import annotations

import struct

from router.integrations.slack.graph import guess_unit, render_png


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_a_series_is_drawn_as_a_small_png() -> None:
    points = [(1_800_000_000 + 60 * i, 0.2 + 0.01 * i) for i in range(60)]
    data = render_png(points, title="p95 latency", unit="seconds", start=1_800_001_800)
    assert data is not None
    assert png_size(data) == (640, 260)
    assert 5_000 < len(data) < 200_000


def test_no_graph_for_fewer_than_two_points() -> None:
    assert render_png([], title="x") is None
    assert render_png([(1.0, 2.0)], title="x") is None


def test_units_from_the_expression() -> None:
    assert (
        guess_unit("histogram_quantile(0.95, rate(http_request_duration_seconds_bucket[5m]))")
        == "seconds"
    )
    assert guess_unit("container_memory_working_set_bytes > 1e9") == "bytes"
    assert guess_unit("pg_connections_ratio > 0.8") == "ratio"
    assert guess_unit("up == 0") == ""

"""The one bounded body reader, which every endpoint reads through."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import Request

from router.web.body import read_body
from router.web.errors import HTTPError


def request_of(*messages: dict[str, Any], headers: list | None = None) -> Request:
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return Request({"type": "http", "method": "POST", "headers": headers or []}, receive)


async def test_a_client_that_hangs_up_is_a_400_not_a_413() -> None:
    request = request_of(
        {"type": "http.request", "body": b'{"alerts": [', "more_body": True},
        {"type": "http.disconnect"},
    )
    with pytest.raises(HTTPError) as caught:
        await read_body(request, 1024)
    assert (caught.value.status_code, caught.value.error) == (400, "client disconnected")


async def test_more_than_the_limit_is_a_413_without_reading_on() -> None:
    request = request_of(
        {"type": "http.request", "body": b"x" * 600, "more_body": True},
        {"type": "http.request", "body": b"x" * 600, "more_body": True},
    )  # a third chunk would fail the test: the queue is empty
    with pytest.raises(HTTPError) as caught:
        await read_body(request, 1000)
    assert caught.value.status_code == 413


async def test_a_declared_length_over_the_limit_is_refused_before_reading() -> None:
    request = request_of(headers=[(b"content-length", b"5000")])
    with pytest.raises(HTTPError) as caught:
        await read_body(request, 1000)
    assert caught.value.status_code == 413


async def test_a_body_within_the_limit_is_read_whole() -> None:
    request = request_of(
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"c", "more_body": False},
    )
    assert await read_body(request, 3) == b"abc"

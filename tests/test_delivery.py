"""One mapping from an HTTP failure to a DeliveryError, with a fixed set of reasons."""

from __future__ import annotations

import email.utils
import time

import pytest

from router.delivery import DEFAULT_RETRY_AFTER, REASONS, DeliveryError, delivery_error, retry_after


@pytest.mark.parametrize(
    ("status", "kind", "permanent", "unsure"),
    [
        (400, "client", True, False),
        (404, "client", True, False),
        (401, "auth", True, False),
        (403, "auth", True, False),
        (408, "timeout", False, True),
        (429, "rate_limited", False, False),
        (500, "server", False, True),
        (503, "server", False, True),
    ],
)
def test_each_status_has_one_meaning(status: int, kind: str, permanent: bool, unsure: bool) -> None:
    error = delivery_error(status, {}, f"HTTP {status} for alert 3f1c0de2a9b84e11")
    assert (error.kind, error.permanent, error.unsure) == (kind, permanent, unsure)
    assert error.kind in REASONS
    assert "3f1c0de2a9b84e11" in error.reason  # the text is for the log


def test_a_429_is_rate_limited_for_as_long_as_it_says() -> None:
    error = delivery_error(429, {"Retry-After": "7"}, "slow down")
    assert error.rate_limited and error.retry_after == 7.0


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert retry_after({"retry-after": "12"}) == 12.0
    assert retry_after({"Retry-After": "-3"}) == 0.0
    later = email.utils.formatdate(time.time() + 60, usegmt=True)
    assert 55 <= retry_after({"Retry-After": later}) <= 60
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    assert retry_after({"Retry-After": past}) == 0.0


@pytest.mark.parametrize("headers", [None, {}, {"Retry-After": ""}, {"Retry-After": "soon"}])
def test_a_missing_or_unreadable_retry_after_has_one_default(headers: dict | None) -> None:
    assert retry_after(headers) == DEFAULT_RETRY_AFTER


def test_an_error_without_a_kind_is_other_unless_rate_limited() -> None:
    assert DeliveryError("something").kind == "other"
    assert DeliveryError("paused", rate_limited=True).kind == "rate_limited"

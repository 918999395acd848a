from __future__ import annotations

import pytest

from router.library import AnchorAllocator, github_slug

# (heading text as GitHub renders it, anchor GitHub gives it)
VECTORS = [
    ("Service Down / 503 Errors", "service-down--503-errors"),
    ("1. Latency Breach (p95 > 800ms)", "1-latency-breach-p95--800ms"),
    ("Runbook 1: Service Down / 503 Errors", "runbook-1-service-down--503-errors"),
    ("High Memory Usage / OOM Kills", "high-memory-usage--oom-kills"),
    ("5. Deployment Rollback", "5-deployment-rollback"),
    ("Common Causes & Fixes", "common-causes--fixes"),
    ("CPU saturation / HPA at max", "cpu-saturation--hpa-at-max"),
    (
        "Pool size \u00d7 replicas exceeds max_connections",
        "pool-size--replicas-exceeds-max_connections",
    ),
    ("CrashLoopBackOff (application error)", "crashloopbackoff-application-error"),
    ("What's new?", "whats-new"),
    ("Hello, World!", "hello-world"),
    ("snake_case_name", "snake_case_name"),
    ("Über Café", "über-café"),
    ("🚨 Critical", "-critical"),
    ("a  b", "a--b"),
    ("Step 1: Check HPA Status", "step-1-check-hpa-status"),
    ("If CPU-bound:", "if-cpu-bound"),
]


@pytest.mark.parametrize(("text", "anchor"), VECTORS)
def test_github_slug(text: str, anchor: str) -> None:
    assert github_slug(text) == anchor


def test_duplicates_get_numbered_suffixes_in_order() -> None:
    allocator = AnchorAllocator()
    got = [allocator.allocate(t) for t in ["Symptoms", "Alert", "Symptoms", "Symptoms", "Alert"]]
    assert got == ["symptoms", "alert", "symptoms-1", "symptoms-2", "alert-1"]


def test_suffix_never_collides_with_a_real_heading() -> None:
    allocator = AnchorAllocator()
    got = [allocator.allocate(t) for t in ["a", "a", "a-1"]]
    assert len(set(got)) == 3
    assert got[:2] == ["a", "a-1"]

"""Start-up's objects are frozen out of the collector's generations."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from router import heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_settle_freezes_what_start_up_built_and_collects_young_objects_less_often(
    restored_gc: None,
) -> None:
    built = [{"section": n} for n in range(1_000)]  # stands for the runbook index
    gc.set_threshold(700, 10, 10)
    heap.settle()
    assert gc.get_freeze_count() >= len(built)
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, 10, 10)
    assert not any(item is built[0] for item in gc.get_objects(generation=2))


def test_settle_keeps_a_larger_threshold_someone_chose(restored_gc: None) -> None:
    gc.set_threshold(50_000, 10, 10)
    heap.settle()
    assert gc.get_threshold()[0] == 50_000

"""Shared fixtures: the fixture runbooks, loaded once per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.library import RunbookLibrary

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def library() -> RunbookLibrary:
    return RunbookLibrary.load(
        [FIXTURES], base_url="https://git.example.com/ops/blob/main/runbooks"
    )


@pytest.fixture
def write(tmp_path: Path):
    """Write a runbook file under ``tmp_path`` and return its path."""

    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return _write

from __future__ import annotations

from pathlib import Path

import pytest

from router.library import RunbookLibrary
from router.library.discovery import read_text
from router.yamlfile import ConfigError


def test_invalid_front_matter_yaml_names_file_and_line(write, tmp_path: Path) -> None:
    path = write("bad.md", "---\ntitle: ok\nalerts: [A, B\nowner: x\n---\n# Bad\n")
    write("good.md", "# Good\n\n## Slow requests\n")
    library = RunbookLibrary.load([tmp_path])
    (problem,) = library.problems  # reported with the others; both files are still indexed
    assert problem.path == str(path.resolve())
    assert problem.line == 4
    assert "invalid front matter YAML" in problem.message
    assert sorted(f.path for f in library.files()) == ["bad.md", "good.md"]
    assert library.get("bad.md#bad") is not None  # without its front matter


def test_front_matter_of_the_wrong_type(write, tmp_path: Path) -> None:
    write("bad.md", "---\ntitle: ok\nalerts:\n  - A\n  - {name: B}\n---\n# Bad\n")
    (problem,) = RunbookLibrary.load([tmp_path]).problems
    assert problem.line == 5
    assert "alerts[1]" in problem.message


def test_front_matter_that_is_not_a_mapping(write, tmp_path: Path) -> None:
    write("bad.md", "---\n- a\n- b\n---\n# Bad\n")
    (problem,) = RunbookLibrary.load([tmp_path]).problems
    assert "must be a YAML mapping" in problem.message and problem.line == 2


def test_front_matter_alert_lines(write, tmp_path: Path) -> None:
    write("a.md", "---\nalerts:\n  - Dup\n---\n# A\n")
    write("b.md", "---\ntitle: B\nalerts:\n  - Other\n  - Dup\n---\n# B\n")
    problems = RunbookLibrary.load([tmp_path]).problems
    assert [(Path(p.path).name, p.line) for p in problems] == [("b.md", 5)]
    assert "front matter declaration" in problems[0].message


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "bin.md").write_bytes(b"# Title\n\nline two\n\xff\xfe bad\n")
    (problem,) = RunbookLibrary.load([tmp_path]).problems
    assert problem.line == 4
    assert "not valid UTF-8" in problem.message


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist") as caught:
        RunbookLibrary.load([tmp_path / "nope"])
    assert caught.value.path.endswith("nope")


def test_unreadable_file(tmp_path: Path) -> None:
    # A directory named like a runbook cannot be read as one.
    odd = tmp_path / "odd.md"
    odd.mkdir()
    (odd / "real.md").write_text("# Real\n")
    library = RunbookLibrary.load([tmp_path])
    assert [f.path for f in library.files()] == ["odd.md/real.md"]
    with pytest.raises(ConfigError, match="cannot read runbook"):
        read_text(tmp_path / "missing.md")


def test_same_relative_path_under_two_roots(write, tmp_path: Path) -> None:
    write("one/a.md", "# One\n")
    write("two/a.md", "# Two\n")
    library = RunbookLibrary.load([tmp_path / "one", tmp_path / "two"])
    assert library.get("a.md").title == "One"  # type: ignore[union-attr]
    assert len(library.problems) == 1
    assert "already indexed" in library.problems[0].message

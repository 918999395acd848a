"""Finding and reading the markdown files of a runbook library."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from router.yamlfile import ConfigError

MARKDOWN_SUFFIXES = (".md", ".markdown")


@dataclass(frozen=True)
class RunbookSource:
    """A file to index: where it is, and its path relative to the root it was found under."""

    source: Path
    path: str


def discover(paths: list[Path]) -> list[RunbookSource]:
    """Every runbook under ``paths``: folders recursively (sorted), files as given."""
    found: list[RunbookSource] = []
    for root in paths:
        if root.is_dir():
            found.extend(_folder(root))
        elif root.is_file():
            found.append(RunbookSource(root.resolve(), root.name))
        else:
            raise ConfigError(root, None, "runbook path does not exist")
    return found


def _folder(root: Path) -> list[RunbookSource]:
    sources = [
        RunbookSource(file.resolve(), file.relative_to(root).as_posix())
        for file in root.rglob("*")
        if file.suffix.lower() in MARKDOWN_SUFFIXES
        and file.is_file()
        and not any(part.startswith(".") for part in file.relative_to(root).parts)
    ]
    return sorted(sources, key=lambda s: s.path)


def read_text(source: Path) -> str:
    """The file's text (UTF-8, BOM dropped); :class:`ConfigError` with a line if it can't be read."""
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ConfigError(source, None, f"cannot read runbook: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(source, line, f"runbook is not valid UTF-8: {exc.reason}") from None

"""The README's examples work as written: the Alertmanager configuration, the synopsis."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from router.cli import _parser

README = Path(__file__).resolve().parent.parent / "README.md"


def code_blocks(heading: str) -> list[str]:
    """The fenced code blocks of the README section under ``heading`` (to the next ``##``)."""
    text = README.read_text()
    section = text[text.index(f"\n{heading}\n") :]
    section = section[: section.find("\n## ", 1) if "\n## " in section[1:] else len(section)]
    return re.findall(r"^```\w*\n(.*?)^```", section, re.MULTILINE | re.DOTALL)


def test_the_alertmanager_configuration_passes_amtool(tmp_path: Path) -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool not installed (Debian package prometheus-alertmanager)")
    config = tmp_path / "alertmanager.yml"
    config.write_text(code_blocks("## Connecting Alertmanager")[0])
    done = subprocess.run([amtool, "check-config", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Found:\n - global config\n - route" in done.stdout
    assert "1 receivers" in done.stdout


def test_the_synopsis_shows_every_option_of_every_verb() -> None:
    synopsis = code_blocks("## Command line")[0]
    verbs = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, parser in verbs.items():
        line = next(
            (row for row in synopsis.splitlines() if row.split()[1:2] == [name]),
            None,
        )
        assert line is not None, f"the synopsis lacks {name}"
        for action in parser._actions:
            option = max(action.option_strings, key=len, default=None)
            if option and option != "--help" and action.help != argparse.SUPPRESS:
                assert option in line, f"the synopsis of {name} lacks {option}"

"""Loading playbooks: the shipped ones, overrides, and every error with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.config import BUILTIN_PLAYBOOKS, BUILTIN_RUNBOOKS
from router.diagnose import templating
from router.diagnose.catalog import KNOWN_KINDS
from router.diagnose.playbooks import TEMPLATE_VARIABLES, load_playbooks
from router.diagnose.verdicts import RunbookPointers
from router.library import RunbookLibrary
from router.triage import BUILTIN_CATEGORIES, UNCLASSIFIED
from router.yamlfile import ConfigError

SHIPPED = load_playbooks([BUILTIN_PLAYBOOKS])


def test_one_playbook_per_category_and_a_generic_one() -> None:
    expected = {c for c in BUILTIN_CATEGORIES if c != UNCLASSIFIED} | {"generic"}
    assert set(SHIPPED.names()) == expected


@pytest.mark.parametrize("name", SHIPPED.names())
def test_shipped_playbooks_use_known_kinds_and_their_own_check_ids(name: str) -> None:
    playbook = SHIPPED.get(name)
    assert playbook is not None and playbook.verdicts
    ids = {check.spec.id for check in playbook.checks}
    for check in playbook.checks:
        assert check.spec.kind in KNOWN_KINDS[check.spec.provider]
    for rule in playbook.verdicts:
        used = templating.names_in(rule.spec.when, expression=True)
        used |= templating.names_in(rule.spec.say)
        assert used <= ids | TEMPLATE_VARIABLES, rule.spec.id
        assert used & ids, f"{rule.spec.id} reads no fact"


@pytest.mark.parametrize("name", SHIPPED.names())
def test_shipped_runbook_pointers_resolve_in_the_example_runbooks(name: str) -> None:
    library = RunbookLibrary.load([BUILTIN_RUNBOOKS])
    best = library.best_for_category(name)
    pointers = RunbookPointers(library, library.excerpt(best) if best else None, name)
    for rule in SHIPPED.get(name).verdicts:  # type: ignore[union-attr]
        if rule.spec.runbook is not None:
            assert pointers.resolve(rule.spec.runbook) is not None, rule.spec.id


def write(folder: Path, text: str, name: str = "book.yaml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_later_files_override_same_named_playbooks(tmp_path: Path) -> None:
    write(tmp_path, "name: crashloop\ndescription: ours\nchecks: []\n", "a.yaml")
    write(tmp_path, "name: extra\nchecks: []\n", "b.yml")
    write(tmp_path, "not: a playbook", "notes.txt")  # ignored: not YAML by name
    loaded = load_playbooks([BUILTIN_PLAYBOOKS, tmp_path])
    assert loaded.get("crashloop").description == "ours"  # type: ignore[union-attr]
    assert loaded.get("latency") is not None and loaded.get("extra") is not None
    assert loaded.get("nope") is None and loaded.get(None) is None


def test_a_provider_can_bring_its_own_kinds(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nchecks:\n  - {id: a, provider: nagios, kind: status}\n")
    loaded = load_playbooks([path], {**KNOWN_KINDS, "nagios": frozenset({"status"})})
    assert loaded.names() == ["x"]


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such playbook"):
        load_playbooks([tmp_path / "absent"])


CHECK = "name: x\nchecks:\n  - id: a\n    provider: http\n    kind: probe\n"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("name: x\nchecks:\n  - id: a\n    provider: nagios\n    kind: q\n", 4, "unknown provider"),
        (
            "name: x\nchecks:\n  - id: a\n    provider: prometheus\n    kind: scrape\n",
            5,
            "prometheus has no check 'scrape'",
        ),
        (CHECK + "  - {id: a, provider: http, kind: probe}\n", 6, "duplicate check id 'a'"),
        (
            "name: x\nchecks: []\nverdicts:\n  - id: v\n    when: 'pods.oom_killed'\n    say: x\n",
            5,
            "unknown check id(s) or variable(s): pods",
        ),
        (
            CHECK + "verdicts:\n  - id: v\n    when: 'a.ok'\n    say: '{{ b.x }}'\n",
            9,
            "verdicts[0].say reads unknown check id(s) or variable(s): b",
        ),
        (CHECK + "    params: {url: '{{ x'}\n", 6, "template syntax error"),
        (CHECK + "    params: {url: '{{ lables.host }}'}\n", 6, "variable(s): lables"),
        (
            CHECK + "verdicts:\n  - id: v\n    when: 'a.ok and'\n    say: x\n",
            8,
            "verdicts[0].when: condition syntax error",
        ),
        (CHECK + "verdicts:\n  - {id: v, when: a.ok, say: '{% if %}'}\n", 7, "syntax error"),
        (
            CHECK + "verdicts:\n  - {id: v, when: a.ok, say: x}\n  - {id: v, when: a.ok, say: y}\n",
            8,
            "duplicate verdict id 'v'",
        ),
        (CHECK + "    requires: [url]\n", 6, "requires 'url', which is not a param"),
        ("name: x\nchecks:\n  - {id: labels, provider: http, kind: probe}\n", 3, "reserved"),
        (CHECK + "    retries: 3\n", 6, "Extra inputs are not permitted"),
        (CHECK + "    timeout: -1\n", 6, "greater than 0"),
        ("name: x\nchecks:\n  - id: a\n    provider: [http\n", 5, "invalid YAML"),
        (CHECK + "    params: {url: \"{{ ''.__class__ }}\"}\n", 6, "unsafe attribute '__class__'"),
        (
            CHECK + "    params: {url: '{{ labels.__class__.__mro__ }}'}\n",
            6,
            "unsafe attribute",
        ),
        (
            CHECK + "verdicts:\n  - {id: v, when: \"a['__class__']\", say: x}\n",
            7,
            "unsafe attribute '__class__'",
        ),
        (
            CHECK + "verdicts:\n  - {id: v, when: 'a.value >= 0.9', say: x}\n",
            7,
            "verdicts[0].when fails when a check has no data: UndefinedError",
        ),
        (
            CHECK + "verdicts:\n  - {id: v, when: 'not a.failing', say: x}\n",
            7,
            "verdicts[0].when holds when no check has data: a false alarm",
        ),
        (
            CHECK + "verdicts:\n  - {id: v, when: a.ok, say: x, explained_by: [w]}\n",
            7,
            "explained_by names no other verdict rule: 'w'",
        ),
        (CHECK + "verdicts:\n  - {id: v, when: a.ok, say: x, role: culprit}\n", 7, "'cause'"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_playbooks([path])
    assert (info.value.path, info.value.line) == (str(path), line)
    assert message in info.value.message

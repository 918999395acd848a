"""Imports point down only: each layer of ``router/`` imports nothing from the layers above it.

Every import is read with ``ast`` (those inside functions too), so a lazy import that
reaches upward is caught as well. A module's layer is its first name under ``router``
(``router.store.jobs`` is ``store``, ``router.worker`` is ``worker``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROUTER = Path(__file__).resolve().parent.parent / "router"

# The wiring and the processes that run it: only the command line starts them.
_RUNNERS = {"service", "processes", "cli", "__main__"}
# What a layer must not import: the layers above it.
FORBIDDEN: dict[str, set[str]] = {
    "store": {
        "classify",
        "library",
        "diagnose",
        "render",
        "integrations",
        "web",
        "worker",
        "pipeline",
        "retriage",
        "leased",
        "metrics",
        "coverage",
        *_RUNNERS,
    },
    "render": {"diagnose", "store", "integrations", "web", "worker", "retriage", *_RUNNERS},
    "library": {"diagnose", "store", "integrations", "web", "worker", "retriage", *_RUNNERS},
    "classify": {"diagnose", "store", "integrations", "web", "worker", "retriage", *_RUNNERS},
    "diagnose": {"store", "integrations", "web", "worker", "retriage", *_RUNNERS},
    "integrations": {"worker", *_RUNNERS},
    "retriage": {"integrations", "web", "worker", *_RUNNERS},
    "worker": {"integrations", "web", "retriage", *_RUNNERS},
    "web": {"worker", *_RUNNERS},
    "pipeline": {"classify", "library", "diagnose", "integrations", "store", "web", "worker"},
    "delivery": {"store", "pipeline", "integrations", "web", "worker", *_RUNNERS},
    "triage": {"store", "pipeline", "integrations", "web", "worker", *_RUNNERS},
    "alerts": {"store", "pipeline", "integrations", "web", "worker", *_RUNNERS},
    "units": {"diagnose", "render", "integrations", "web", "worker", *_RUNNERS},
}
# Who may import the wiring: the command line, and ``python -m router``.
SERVICE_IMPORTERS = {"cli", "__main__", "processes", "service"}
# The integrations' HTTP endpoints sit beside the web app, which mounts them: they may use
# the web shell's leaf helpers (the body reader, draining, the error answers), nothing else
# of ``web``; the rest of an integration (its sinks, clients, rendering) uses none of it.
WEB_HELPERS = {"router.web.body", "router.web.drain", "router.web.errors"}
ENDPOINTS = {"router.integrations.slack.endpoints", "router.integrations.pagerduty.webhook"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROUTER.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "router"


def imports(path: Path) -> Iterator[str]:
    """The ``router.*`` modules a file imports (for ``from a import b``: ``a``)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        yield from (name for name in names if name.startswith("router."))


MODULES = sorted((module_name(p), p) for p in ROUTER.rglob("*.py"))


def test_every_import_is_read() -> None:
    assert any(layer(m) == "store" for m, _ in MODULES)
    assert "router.worker" in set(imports(ROUTER / "service.py"))
    # relative imports would escape the check: there are none
    for _, path in MODULES:
        tree = ast.parse(path.read_text())
        assert not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree)), path


@pytest.mark.parametrize("below", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_above_it(below: str) -> None:
    upward = [
        f"{module} imports {target}"
        for module, path in MODULES
        if layer(module) == below
        for target in imports(path)
        if layer(target) in FORBIDDEN[below]
    ]
    assert not upward


def test_only_the_command_line_imports_the_service() -> None:
    importers = [
        module
        for module, path in MODULES
        if layer(module) not in SERVICE_IMPORTERS
        and any(layer(target) == "service" for target in imports(path))
    ]
    assert not importers


def test_integrations_use_only_the_web_shells_helpers_and_only_in_their_endpoints() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, path in MODULES
        if layer(module) == "integrations"
        for target in imports(path)
        if layer(target) == "web" and (module not in ENDPOINTS or target not in WEB_HELPERS)
    ]
    assert not wrong

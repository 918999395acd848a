"""The container image, without a Docker daemon: its build context, its pins, and a start.

The build context is assembled as ``docker build`` would, from the repository's files
filtered by ``.dockerignore`` (gitwildmatch semantics, as ``pathspec`` implements them),
installed into a fresh virtualenv the way the Dockerfile installs it (editable, from the
context), and then ``check`` and ``serve`` run from there, far from the repository.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pathspec
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.procs import RouterProcess

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.image


def repository_files() -> list[str]:
    """What a fresh clone holds: the tracked files (and untracked ones git does not ignore)."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("needs git and a git checkout to know the repository's files")
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    return [name for name in listing.stdout.decode().split("\0") if (REPO / name).is_file()]


def build_context(files: list[str]) -> list[str]:
    """The files ``docker build`` sends: those ``.dockerignore`` does not exclude."""
    ignore = pathspec.PathSpec.from_lines(
        "gitignore", (REPO / ".dockerignore").read_text().splitlines()
    )
    return sorted(name for name in files if not ignore.match_file(name))


def copied_from_context() -> list[str]:
    """The sources of the Dockerfile's ``COPY`` instructions that read the build context."""
    sources: list[str] = []
    for line in (REPO / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    return sources


def lock_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for number, line in enumerate((REPO / "requirements.lock").read_text().splitlines(), 1):
        if line.strip() and not line.startswith("#"):
            match = re.fullmatch(r"([A-Za-z0-9._-]+)==(\S+)", line.strip())
            assert match, f"requirements.lock:{number}: not a name==version pin: {line!r}"
            name = canonicalize_name(match[1])
            assert name not in pins, f"requirements.lock:{number}: {name} pinned twice"
            pins[name] = match[2]
    return pins


def test_the_build_context_holds_what_the_image_needs() -> None:
    context = build_context(repository_files())
    for directory in ("router", "rules", "runbooks", "playbooks", "templates"):
        assert any(name.startswith(f"{directory}/") for name in context), directory
    for source in copied_from_context():
        if source != ".":
            assert source in context, f"the Dockerfile copies {source}, .dockerignore drops it"
    assert "LICENSE" in context
    assert not any(name.startswith(("tests/", "deploy/", ".ci/")) for name in context)


def test_the_lock_pins_every_runtime_dependency_within_pyproject() -> None:
    pins = lock_pins()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for text in project["dependencies"]:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is in pyproject.toml but not in requirements.lock"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, pyproject.toml wants {requirement}"
        )
    assert canonicalize_name(project["name"]) not in pins


def test_the_lock_is_closed_under_the_dependencies_of_what_it_pins() -> None:
    """Whatever a pinned package needs is pinned too (as far as this venv's metadata tells)."""
    pins = lock_pins()
    extras = {"uvicorn": {"standard"}, "sqlalchemy": {"asyncio"}}
    missing: set[str] = set()
    for name in pins:
        try:
            requires = importlib.metadata.distribution(name).requires or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for text in requires:
            requirement = Requirement(text)
            wanted = extras.get(name, set()) | {""}
            needed = requirement.marker is None or any(
                requirement.marker.evaluate({"extra": extra}) for extra in wanted
            )
            if needed and canonicalize_name(requirement.name) not in pins:
                missing.add(f"{requirement.name} (needed by {name})")
    assert not missing, f"requirements.lock lacks: {sorted(missing)}"


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The build context installed as the Dockerfile does, into a fresh virtualenv.

    The dependencies come from this test run's own environment (a ``.pth`` file); the
    project itself is installed from the copied context (pip's cache holds setuptools).
    """
    root = tmp_path_factory.mktemp("image")
    app = root / "app"
    for name in build_context(repository_files()):
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, app / name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    subprocess.run(
        [*pip, "install", "--quiet", "--no-deps", "-e", str(app)],
        check=True,
        capture_output=True,
    )
    return root


def test_the_installed_image_passes_check_from_its_own_files(image: Path) -> None:
    python = str(image / "venv" / "bin" / "python")
    where = subprocess.run(
        [python, "-c", "import router; print(router.__file__)"],
        cwd=image,
        capture_output=True,
        text=True,
    )
    assert where.stdout.strip() == str(image / "app" / "router" / "__init__.py")
    done = subprocess.run(
        [str(image / "venv" / "bin" / "runbook-router"), "check"],
        cwd=image,
        env=RouterProcess(image, {}).env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert re.match(r"ok: \d+ rules, \d+ runbook sections, [1-9]\d* playbooks", done.stdout)


def test_the_installed_image_serves(image: Path) -> None:
    router = RouterProcess(image, {}, command=[str(image / "venv" / "bin" / "runbook-router")])
    router.start(timeout=60)
    assert router.terminate() == 0
    assert "runbook-router listening" in router.log_path.read_text()

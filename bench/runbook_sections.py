"""Measure the runbook finder on runbook-section cases, in process (fast).

Usage: ``.venv/bin/python bench/runbook_sections.py [EVAL_DIR] [--only TEXT] [--explain]``

``EVAL_DIR`` holds ``runbook_cases.yaml`` and ``runbooks/`` (default ``../shared/eval``;
``bench/heldout_runbooks`` is the project's own held-out set); ``score_runbooks.py`` comes
from ``--scorer`` (default ``../shared/eval/score_runbooks.py``). Each case is scored exactly as ``score_runbooks.py`` scores
it (its own payload builder and matcher are imported from there), but every library
is loaded once and the router runs in this process, so the whole set takes about a
second instead of about two minutes. ``score_runbooks.py`` stays the reference.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections import defaultdict
from pathlib import Path
from types import ModuleType

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from router.alerts import WebhookPayload  # noqa: E402
from router.classify import EvidenceClassifier, load_rules  # noqa: E402
from router.library import LibraryFinder, RunbookLibrary  # noqa: E402
from router.library.query import alert_query  # noqa: E402

DEFAULT_EVAL = REPO_ROOT / ".." / "shared" / "eval"


def _scorer(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("score_runbooks", path)
    if spec is None or spec.loader is None or not path.exists():
        raise SystemExit(f"error: no scorer at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval_dir", nargs="?", type=Path, default=DEFAULT_EVAL)
    parser.add_argument("--scorer", type=Path, default=DEFAULT_EVAL / "score_runbooks.py")
    parser.add_argument("--only", help="only cases whose library contains this text")
    parser.add_argument("--explain", action="store_true", help="top candidates for each miss")
    parser.add_argument("--scores", action="store_true", help="score parts of the top three")
    args = parser.parse_args()
    scorer = _scorer(args.scorer)
    cases = yaml.safe_load((args.eval_dir / "runbook_cases.yaml").read_text(encoding="utf-8"))
    cases = [c for c in cases if not args.only or args.only in c["library"]]
    libraries: dict[str, LibraryFinder] = {}
    rules = load_rules([])
    right, per_library = 0, defaultdict(lambda: [0, 0])
    for case in cases:
        name = case["library"]
        if name not in libraries:
            library = RunbookLibrary.load([(args.eval_dir / "runbooks" / name).resolve()])
            libraries[name] = LibraryFinder(library)
        finder = libraries[name]
        alert = WebhookPayload.model_validate(scorer.payload(case)).alerts[0]
        classification = EvidenceClassifier(rules, finder.library).classify(alert)
        excerpt = finder.find(alert, classification)
        got = scorer.ref_of(excerpt.link.model_dump() if excerpt else None)
        ok = scorer.matches(got, case["accept"])
        right += ok
        per_library[name.split("/")[0]][0] += ok
        per_library[name.split("/")[0]][1] += 1
        verdict = "ok  " if ok else "MISS"
        print(f"{verdict} {alert.alertname} [{classification.category}] -> {got}")
        if not ok:
            print(f"       wanted {case['accept']}")
        if args.scores:
            query = alert_query(alert, classification.category)
            ranked = finder.library.rank(query, classification.category)
            for c in ranked[:3]:
                good = scorer.matches(c.section.ref, case["accept"])
                print(
                    f"       {'+' if good else '-'} rel {c.relevance:5.2f} head {c.headline:4.2f}"
                    f" aff {c.affinity:5.2f} named {c.named:.2f} {c.contradicted and 'X'}"
                    f" prior {c.prior:+.1f} = {c.score:5.2f}  {c.section.ref[-60:]}"
                )
        if args.explain and not ok:
            for line in finder.explain(alert, classification):
                print(f"       {line}")
    print()
    for name, (good, total) in sorted(per_library.items()):
        print(f"  {good}/{total}  {name}")
    print(f"runbook sections right: {right}/{len(cases)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

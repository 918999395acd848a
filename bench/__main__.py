"""``python -m bench`` (``make bench``): every benchmark, one after the other.

``python -m bench --quick`` runs each in its short mode; other arguments go to ``ingest.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent.parent / "shared" / "eval" / "alert_rules_corpus.yaml"


def run(*argv: str) -> None:
    print(f"\n== {' '.join(argv)}", flush=True)
    subprocess.run([sys.executable, *argv], check=True, cwd=HERE.parent)


if __name__ == "__main__":
    args = sys.argv[1:]
    quick = ["--quick"] if "--quick" in args else []
    if quick:
        args = [a for a in args if a != "--quick"] or ["--seconds", "2"]
    run("bench/ingest.py", *args)
    run("bench/end_to_end.py", *quick)
    run("bench/storm.py", *quick)
    run("bench/triage_cpu.py", *(["--alerts", "200"] if quick else []))
    run("bench/worker_cpu.py", *(["--alerts", "200"] if quick else []))
    run("bench/cost_growth.py", *quick)
    run("bench/label_flood.py", *quick)
    if (CORPUS.parent / "score_runbooks.py").exists():
        run("bench/runbook_sections.py")
        run("bench/runbook_sections.py", str(HERE / "heldout_runbooks"))
    for corpus in (HERE / "heldout_alerts.yaml", CORPUS):
        if corpus.exists():
            run("bench/classifier_accuracy.py", str(corpus), "--quiet")

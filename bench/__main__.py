"""``python -m bench`` (``make bench``): every benchmark, one after the other."""

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
    run("bench/ingest.py", *sys.argv[1:])
    for corpus in (HERE / "heldout_alerts.yaml", CORPUS):
        if corpus.exists():
            run("bench/classifier_accuracy.py", str(corpus), "--quiet")

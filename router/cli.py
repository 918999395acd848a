"""``runbook-router``: the command line.

Every verb loads the same configuration as the service (``--config`` or
``ROUTER_CONFIG``, then ``ROUTER_*`` variables). Problems in files are printed
as ``file:line: what is wrong`` with a non-zero exit, never as a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from router.alerts import WebhookPayload
from router.config import Settings, load_settings
from router.jsonbody import BadJSON, parse_json
from router.yamlfile import ConfigError

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

DESCRIPTION = """\
Routes Prometheus Alertmanager alerts to the matching runbook section, adds live
diagnostics, and delivers the result to Slack, PagerDuty or the console.

verbs:
  serve      run the webhook service (POST /alertmanager, /healthz, /readyz, /metrics)
  check      validate the configuration, rules and runbooks; print file:line for each problem
  classify   print the category and runbook of each alert in a webhook payload (JSON lines)
  runbooks   list every indexed runbook section with the alerts and category linked to it
  triage     classify, find the runbook and run diagnostics for a payload; posts nothing
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.run(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `runbook-router runbooks | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="runbook-router",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(title="verbs", metavar="VERB")

    def verb(name: str, run: Callable[[argparse.Namespace], int], text: str):
        sub = verbs.add_parser(name, help=text, description=text)
        sub.add_argument("--config", type=Path, help="YAML configuration file (or ROUTER_CONFIG)")
        sub.set_defaults(run=run)
        return sub

    serve = verb("serve", _serve, "Run the webhook service.")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")
    verb("check", _check, "Validate the configuration, rules and runbooks.")
    classify = verb("classify", _classify, "Classify each alert of a webhook payload.")
    classify.add_argument("payload", help="Alertmanager webhook JSON file, or - for stdin")
    runbooks = verb("runbooks", _runbooks, "List the indexed runbook sections.")
    runbooks.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    triage = verb("triage", _triage, "Triage each alert of a payload without posting anything.")
    triage.add_argument("payload", help="Alertmanager webhook JSON file, or - for stdin")
    triage.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def _serve(args: argparse.Namespace) -> int:
    from router.service import serve

    asyncio.run(serve(_settings(args), host=args.host, port=args.port))
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from router.service import check

    settings = _settings(args)
    problems, summary = check(settings)
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    print(summary if not problems else f"{len(problems)} problem(s) found")
    return EXIT_PROBLEMS if problems else EXIT_OK


def _classify(args: argparse.Namespace) -> int:
    from router.service import load_components

    components = load_components(_settings(args))
    payload = _read_payload(args.payload)
    if payload is None:
        return EXIT_PROBLEMS
    for alert in payload.alerts:
        classification = components.classifier.classify(alert)
        excerpt = components.finder.find(alert, classification)
        runbook = excerpt.link.model_dump() if excerpt else None
        record = {
            "fingerprint": alert.fingerprint,
            "alertname": alert.alertname,
            "status": alert.status,
            "category": classification.category,
            "matched_by": classification.matched_by,
            "rule": classification.rule,
            "reasons": classification.reasons,
            "runbook": runbook,
        }
        print(json.dumps(record, ensure_ascii=False))
    return EXIT_OK


def _runbooks(args: argparse.Namespace) -> int:
    from router.service import load_components

    library = load_components(_settings(args)).library
    rows = [
        {
            "ref": section.ref,
            "title": section.title,
            "category": section.category,
            "alerts": list(section.alerts),
        }
        for section in library.sections()
    ]
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return EXIT_OK
    print("SECTION\tTITLE\tCATEGORY\tALERTS")
    for row in rows:
        alerts = ",".join(row["alerts"]) or "-"
        print(f"{row['ref']}\t{row['title']}\t{row['category'] or '-'}\t{alerts}")
    return EXIT_OK


def _triage(args: argparse.Namespace) -> int:
    from router.service import triage_payload

    settings = _settings(args)
    payload = _read_payload(args.payload)
    if payload is None:
        return EXIT_PROBLEMS
    for line in asyncio.run(triage_payload(settings, payload, as_json=args.json)):
        print(line)
    return EXIT_OK


def _read_payload(source: str) -> WebhookPayload | None:
    """Parse a webhook payload file (or stdin), printing a clear error instead of raising."""
    name = "<stdin>" if source == "-" else source
    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as exc:
        print(f"error: {name}: cannot read ({exc.strerror or exc})", file=sys.stderr)
        return None
    try:
        return WebhookPayload.model_validate(parse_json(raw))
    except BadJSON as exc:
        where = exc.detail
        at = f"line {where['line']}, column {where['column']}: " if "line" in where else ""
        print(f"error: {name}: {at}invalid JSON: {exc}", file=sys.stderr)
    except ValidationError as exc:
        print(f"error: {name}: {_describe(exc)}", file=sys.stderr)
    return None


def _describe(exc: ValidationError) -> str:
    fields = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}"
        for e in exc.errors()[:5]
    )
    return f"not an Alertmanager webhook payload: {fields}"


if __name__ == "__main__":
    raise SystemExit(main())

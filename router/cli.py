"""``runbook-router``: the command line.

Every verb loads the same configuration as the service (``--config`` or
``ROUTER_CONFIG``, then ``ROUTER_*`` variables). Problems in files are printed
as ``file:line: what is wrong`` with a non-zero exit, never as a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from router import __version__
from router.alerts import Alert, WebhookPayload
from router.config import Settings, load_settings, unknown_variables
from router.jsonbody import BadJSON, parse_json
from router.yamlfile import ConfigError

if TYPE_CHECKING:
    from router.library import LibraryFinder
    from router.triage import Classification, RunbookExcerpt

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2

DESCRIPTION = """\
Routes Prometheus Alertmanager alerts to the matching runbook section, adds live
diagnostics, and delivers the result to Slack, PagerDuty or the console.
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
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
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
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    verbs = parser.add_subparsers(title="verbs", metavar="VERB", help="see VERB --help")

    def verb(name: str, run: Callable[[argparse.Namespace], int], text: str):
        sub = verbs.add_parser(name, help=text, description=text)
        sub.add_argument("--config", type=Path, help="YAML configuration file (or ROUTER_CONFIG)")
        sub.set_defaults(run=run)
        return sub

    serve = verb(
        "serve",
        _serve,
        "Run the webhook service (POST /alertmanager, /healthz, /readyz, /metrics).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on (8080)")
    serve.add_argument(
        "--workers",
        type=_worker_count,
        default=None,
        metavar="N",
        help="triage and delivery processes beside the web process (one per core beyond the "
        "first, at least one); 0 runs them inside the web process",
    )
    work = verb(
        "work",
        _work,
        "Run triage and delivery only, no web app: workers scaled apart from `serve`.",
    )
    work.add_argument("--supervised", type=int, metavar="PID", help=argparse.SUPPRESS)
    verb("check", _check, "Validate the configuration, rules and runbooks: file:line per problem.")
    classify = verb(
        "classify", _classify, "Print each alert's category and runbook section (JSON lines)."
    )
    classify.add_argument("payload", help="Alertmanager webhook JSON file, or - for stdin")
    classify.add_argument(
        "--explain",
        action="store_true",
        help="print why, in words: the category's reasons and the top three runbook sections",
    )
    runbooks = verb(
        "runbooks", _runbooks, "List every indexed runbook section with its alerts and category."
    )
    runbooks.add_argument("--json", action="store_true", help="print JSON lines instead of a table")
    triage = verb(
        "triage", _triage, "Classify, find the runbook and run diagnostics; posts nothing."
    )
    triage.add_argument("payload", help="Alertmanager webhook JSON file, or - for stdin")
    triage.add_argument("--json", action="store_true", help="print JSON lines instead of text")
    _coverage_arguments(verb("coverage", _coverage, "Report the runbook coverage of alert rules."))
    return parser


def _coverage_arguments(coverage: argparse.ArgumentParser) -> None:
    from router.coverage.formats import FORMATS

    coverage.add_argument(
        "rule_files",
        nargs="*",
        type=Path,
        help="Prometheus rule files or PrometheusRule manifests",
    )
    coverage.add_argument(
        "--prometheus",
        nargs="?",
        const="",
        metavar="URL",
        help="read the rules a Prometheus has loaded (default URL: prometheus.url; same auth)",
    )
    coverage.add_argument("--format", choices=sorted(FORMATS), default="table")
    coverage.add_argument(
        "--fail-under",
        type=float,
        metavar="PCT",
        help="exit 1 when fewer than PCT %% of the rules have a runbook section",
    )


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config)


def _serve(args: argparse.Namespace) -> int:
    from router.processes import default_worker_processes, metrics_shared_by_processes

    workers = default_worker_processes() if args.workers is None else args.workers
    shared = metrics_shared_by_processes() if workers else contextlib.nullcontext()
    with shared:
        from router.service import serve

        run = serve(_settings(args), host=args.host, port=args.port, worker_processes=workers)
        asyncio.run(run)
    return EXIT_OK


def _worker_count(text: str) -> int:
    if not text.isdigit() or int(text) > 64:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to 64, not {text!r}")
    return int(text)


def _work(args: argparse.Namespace) -> int:
    from router.service import work

    asyncio.run(work(_settings(args), supervisor=args.supervised))
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from router.service import check

    settings = _settings(args)
    for warning in unknown_variables():
        print(f"warning: {warning}", file=sys.stderr)
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
        if args.explain:
            print(_explanation(alert, classification, excerpt, components.finder))
            continue
        runbook = {**excerpt.link.model_dump(), "why": excerpt.why} if excerpt else None
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


def _explanation(
    alert: Alert,
    classification: Classification,
    excerpt: RunbookExcerpt | None,
    finder: LibraryFinder,
) -> str:
    """``classify --explain``: the decision, then the evidence behind it."""
    where = "none"
    if excerpt is not None:
        link = excerpt.link
        where = f"{link.path}#{link.anchor}" if link.anchor else str(link.path or link.url)
    lines = [
        f"{alert.alertname or '(no alertname)'} ({alert.fingerprint})",
        f"  category: {classification.category} (by {classification.matched_by})",
        *(f"    {reason}" for reason in classification.reasons),
        f"  runbook: {where}" + (f" — {excerpt.why}" if excerpt and excerpt.why else ""),
        "  top candidates:",
        *(f"    {line}" for line in finder.explain(alert, classification)),
    ]
    return "\n".join(lines)


def _runbooks(args: argparse.Namespace) -> int:
    from router.library.structure import kind
    from router.service import load_components

    library = load_components(_settings(args)).library
    rows = [
        {
            "ref": section.ref,
            "title": section.title,
            "kind": kind(section),
            "category": section.category,
            "alerts": list(section.alerts),
            "indexed": library.indexed(section),
        }
        for section in library.sections()
    ]
    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return EXIT_OK
    print("SECTION\tTITLE\tCATEGORY\tALERTS\tKIND\tINDEXED UNDER")
    for row in rows:
        alerts = ",".join(row["alerts"]) or "-"
        category = row["category"] or "-"
        print(
            f"{row['ref']}\t{row['title']}\t{category}\t{alerts}\t{row['kind']}\t{_headline(row)}"
        )
    return EXIT_OK


def _headline(row: dict) -> str:
    """The strongest index terms of a section, for the table: title, alert names, parts."""
    indexed = row["indexed"]
    if not indexed:
        return "(not an answer)"
    strong = indexed["title"] + indexed["declared"] + indexed["subtitles"]
    words = list(dict.fromkeys(strong))
    return " ".join(words[:12]) + (" …" if len(words) > 12 else "")


def _triage(args: argparse.Namespace) -> int:
    from router.service import triage_payload

    settings = _settings(args)
    payload = _read_payload(args.payload)
    if payload is None:
        return EXIT_PROBLEMS
    for line in asyncio.run(triage_payload(settings, payload, as_json=args.json)):
        print(line)
    return EXIT_OK


def _coverage(args: argparse.Namespace) -> int:
    from router.coverage import build_report, rules_from_files, rules_from_prometheus
    from router.coverage.formats import FORMATS
    from router.coverage.sources import DEFAULT_PROMETHEUS
    from router.service import load_components

    settings = _settings(args)
    if args.prometheus is None and not args.rule_files:
        print("error: coverage needs rule files or --prometheus [URL]", file=sys.stderr)
        return EXIT_USAGE
    if args.fail_under is not None and not 0 <= args.fail_under <= 100:
        print("error: --fail-under takes a percentage from 0 to 100", file=sys.stderr)
        return EXIT_USAGE
    prometheus = settings.prometheus
    if args.prometheus:
        prometheus = prometheus.model_copy(update={"url": args.prometheus})
    if args.prometheus is not None and not prometheus.url:
        print("error: --prometheus needs a URL, or prometheus.url set", file=sys.stderr)
        return EXIT_USAGE
    rules = rules_from_files(args.rule_files)
    if args.prometheus is not None:
        rules += rules_from_prometheus(prometheus)
    components = load_components(settings)
    report = build_report(
        rules, components.classifier, components.finder, prometheus.url or DEFAULT_PROMETHEUS
    )
    print(FORMATS[args.format](report))
    failed = args.fail_under is not None and report.percent < args.fail_under
    return EXIT_PROBLEMS if failed else EXIT_OK


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

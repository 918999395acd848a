"""The PromQL parser: real-style expressions parse to the expected structure."""

from __future__ import annotations

import pytest

from router.classify.exprfacts import facts_from_ast
from router.classify.matchers import Matcher
from router.classify.promql import (
    Aggregation,
    BinaryExpr,
    Call,
    MatrixSelector,
    NumberLiteral,
    Paren,
    PromQLError,
    StringLiteral,
    Subquery,
    Unary,
    VectorSelector,
    parse,
    walk,
)


def sel(name: str, *matchers: Matcher, offset: str | None = None) -> VectorSelector:
    return VectorSelector(name, tuple(matchers), offset)


def rate(name: str, window: str = "5m", *matchers: Matcher) -> Call:
    return Call("rate", (MatrixSelector(sel(name, *matchers), window),))


CASES = [
    ("up", sel("up")),
    ('up{job="api"}', sel("up", Matcher("job", "=", "api"))),
    (
        "http_requests_total{code=~'5..', method!=\"GET\", path!~`/health.*`}",
        sel(
            "http_requests_total",
            Matcher("code", "=~", "5.."),
            Matcher("method", "!=", "GET"),
            Matcher("path", "!~", "/health.*"),
        ),
    ),
    ("rate(x[5m])", rate("x")),
    ("x offset 1h", sel("x", offset="1h")),
    ("rate(x[5m] offset -30s)", Call("rate", (MatrixSelector(sel("x", offset="-30s"), "5m"),))),
    ("x @ 1609746000", VectorSelector("x", (), None, "1609746000")),
    ("x @ end()", VectorSelector("x", (), None, "end()")),
    ("max_over_time(x[1h:5m])", Call("max_over_time", (Subquery(sel("x"), "1h", "5m"),))),
    ("min_over_time(x[1h30m:])", Call("min_over_time", (Subquery(sel("x"), "1h30m", None),))),
    ('{__name__="up"}', VectorSelector("up", (Matcher("__name__", "=", "up"),))),
    (
        "sum by (job) (rate(x[5m]))",
        Aggregation("sum", rate("x"), None, ("job",), False),
    ),
    (
        "sum(rate(x[5m])) without (instance, pod)",
        Aggregation("sum", rate("x"), None, ("instance", "pod"), True),
    ),
    ("topk(3, x)", Aggregation("topk", sel("x"), NumberLiteral(3.0))),
    (
        "quantile by (le) (0.9, x)",
        Aggregation("quantile", sel("x"), NumberLiteral(0.9), ("le",)),
    ),
    (
        'label_replace(up, "dst", "$1", "src", "(.*)")',
        Call(
            "label_replace",
            (
                sel("up"),
                StringLiteral("dst"),
                StringLiteral("$1"),
                StringLiteral("src"),
                StringLiteral("(.*)"),
            ),
        ),
    ),
    ("absent(up)", Call("absent", (sel("up"),))),
    ("time()", Call("time", ())),
    ("clamp_min(x, 0)", Call("clamp_min", (sel("x"), NumberLiteral(0.0)))),
    ("-x", Unary("-", sel("x"))),
    ("-1", NumberLiteral(-1.0)),
    ("0x1F", NumberLiteral(31.0)),
    ("1e3", NumberLiteral(1000.0)),
    ("(x)", Paren(sel("x"))),
    ("a > bool 1", BinaryExpr(">", sel("a"), NumberLiteral(1.0), return_bool=True)),
    ("a # a comment\n > 1", BinaryExpr(">", sel("a"), NumberLiteral(1.0))),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_parses_to_expected_tree(text: str, expected: object) -> None:
    assert parse(text) == expected


def test_precedence_multiplication_before_comparison_before_and_before_or() -> None:
    tree = parse("a + b * c > 1 and d or e")
    assert isinstance(tree, BinaryExpr) and tree.op == "or"
    land = tree.lhs
    assert isinstance(land, BinaryExpr) and land.op == "and"
    cmp = land.lhs
    assert isinstance(cmp, BinaryExpr) and cmp.op == ">"
    plus = cmp.lhs
    assert isinstance(plus, BinaryExpr) and plus.op == "+"
    assert plus.rhs == BinaryExpr("*", sel("b"), sel("c"))


def test_power_is_right_associative_and_binds_tightest() -> None:
    assert parse("2 * 3 ^ 2 ^ 2") == BinaryExpr(
        "*",
        NumberLiteral(2.0),
        BinaryExpr(
            "^", NumberLiteral(3.0), BinaryExpr("^", NumberLiteral(2.0), NumberLiteral(2.0))
        ),
    )


def test_subtraction_is_left_associative() -> None:
    assert parse("a - b - c") == BinaryExpr("-", BinaryExpr("-", sel("a"), sel("b")), sel("c"))


def test_vector_matching_modifiers() -> None:
    tree = parse("a / on(job, instance) group_left(team) b")
    assert isinstance(tree, BinaryExpr) and tree.matching is not None
    assert tree.matching.on and tree.matching.labels == ("job", "instance")
    assert tree.matching.group == "group_left" and tree.matching.include == ("team",)
    ignoring = parse("a * ignoring(reason) group_right b")
    assert isinstance(ignoring, BinaryExpr) and ignoring.matching is not None
    assert not ignoring.matching.on and ignoring.matching.group == "group_right"


def test_a_real_kube_prometheus_latency_rule_parses_fully() -> None:
    text = (
        "histogram_quantile(0.99, sum by (cluster, instance, le) (rate("
        'kubelet_pod_worker_duration_seconds_bucket{job="kubelet", metrics_path="/metrics"}[5m])))'
        ' * on(cluster, instance) group_left(node) kubelet_node_name{job="kubelet"} > 60'
    )
    names = [n.name for n in walk(parse(text)) if isinstance(n, VectorSelector)]
    assert names == ["kubelet_pod_worker_duration_seconds_bucket", "kubelet_node_name"]


def test_facts_orient_each_metric_by_the_direction_that_fires() -> None:
    facts = facts_from_ast(parse("(pg_settings_max_connections - pg_stat_activity_count) < 10"))
    direction = {use.name: use.direction for use in facts.uses}
    assert direction == {"pg_settings_max_connections": "<", "pg_stat_activity_count": ">"}
    ratio = facts_from_ast(parse("used / limit > 0.9"))
    assert [(u.name, u.role, u.direction) for u in ratio.uses] == [
        ("used", "numerator", ">"),
        ("limit", "denominator", "<"),
    ]
    flipped = facts_from_ast(parse("5 > x"))
    assert flipped.uses[0].direction == "<" and flipped.uses[0].threshold == 5


def test_facts_compute_constant_thresholds_and_functions() -> None:
    facts = facts_from_ast(parse("sum(rate(x[5m])) > (14.4 * (1 - 0.999))"))
    (use,) = facts.uses
    assert use.functions == ("rate", "sum")
    assert use.threshold == pytest.approx(0.0144)


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("rate(x[5m]", "expected ',' or ')'", 11),
        ('x{a="b}', "unterminated string", 5),
        ("sum by (a", "expected ',' or ')'", 10),
        ("x >", "unexpected 'end of input'", 4),
        ('x{a~"b"}', "unexpected character '~'", 4),
        ('x{a=~"("}', "invalid regular expression", 6),
        ("x{a=b}", "expected a quoted label value", 5),
        ("rate(x)[5m]", "needs a vector selector", 8),
        ("x y", "unexpected 'y' after the expression", 3),
        ("x[abc]", "expected a duration", 3),
        ("{}", "needs a metric name or a label matcher", 1),
    ],
)
def test_errors_name_the_problem_and_column(text: str, message: str, column: int) -> None:
    with pytest.raises(PromQLError) as caught:
        parse(text)
    assert message in caught.value.message
    assert caught.value.column == column

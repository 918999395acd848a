"""Alertmanager matcher syntax and semantics, case by case."""

from __future__ import annotations

import pytest

from router.classify.matchers import Matcher, MatcherError, parse_matcher, parse_matchers


@pytest.mark.parametrize(
    ("text", "name", "op", "value"),
    [
        ("alertname = Foo", "alertname", "=", "Foo"),
        ('alertname="Foo"', "alertname", "=", "Foo"),
        ('severity =~ "warning|critical"', "severity", "=~", "warning|critical"),
        ("team!=payments", "team", "!=", "payments"),
        ('env !~ "dev|test"', "env", "!~", "dev|test"),
        ('msg="say \\"hi\\""', "msg", "=", 'say "hi"'),
        ('path="C:\\\\tmp"', "path", "=", "C:\\tmp"),
        ('text="a\\nb"', "text", "=", "a\nb"),
        ('re=~"\\d+"', "re", "=~", "\\d+"),  # a spurious escape stays literal
        ('"service.name"="checkout"', "service.name", "=", "checkout"),
        ("label=", "label", "=", ""),
        ('label=""', "label", "=", ""),
        ("  _private_9 =~ .*  ", "_private_9", "=~", ".*"),
        ('summary="a, b {c}"', "summary", "=", "a, b {c}"),
    ],
)
def test_parse_one_matcher(text: str, name: str, op: str, value: str) -> None:
    assert parse_matcher(text) == Matcher(name, op, value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("matcher", "labels", "expected"),
    [
        ("alertname=Foo", {"alertname": "Foo"}, True),
        ("alertname=Foo", {"alertname": "FooBar"}, False),
        ("alertname!=Foo", {"alertname": "Bar"}, True),
        ("alertname!=Foo", {"alertname": "Foo"}, False),
        ('severity=~"warning|critical"', {"severity": "critical"}, True),
        ('severity=~"warning|critical"', {"severity": "info"}, False),
        # fully anchored: a regex must match the whole value
        ('severity=~"warn"', {"severity": "warning"}, False),
        ('severity=~"crit|warn"', {"severity": "xcrit"}, False),
        ('severity=~"a|b"', {"severity": "ab"}, False),
        ('severity!~"warn"', {"severity": "warning"}, True),
        ('severity!~"warn.*"', {"severity": "warning"}, False),
        # a missing label is the empty string, for every operator
        ('team=""', {}, True),
        ('team=""', {"team": "x"}, False),
        ('team!=""', {}, False),
        ('team!=""', {"team": "x"}, True),
        ('team=~".*"', {}, True),
        ('team=~".+"', {}, False),
        ('team!~".+"', {}, True),
        ("team=payments", {}, False),
        ("team!=payments", {}, True),
        ('team=~"pay.*"', {}, False),
        ('team!~"pay.*"', {}, True),
        ('code=~"5.."', {"code": "503"}, True),
        ('code=~"5.."', {"code": "5030"}, False),
        ('"service.name"="checkout"', {"service.name": "checkout"}, True),
        ('name=~"(?i)checkout"', {"name": "CheckOut"}, True),
    ],
)
def test_matcher_semantics(matcher: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(matcher).matches(labels) is expected


def test_regex_is_anchored_with_alternation_groups() -> None:
    matcher = Matcher("x", "=~", "a|b")
    assert matcher.matches_value("a")
    assert not matcher.matches_value("ba")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{a="b", c=~"d|e"}', [Matcher("a", "=", "b"), Matcher("c", "=~", "d|e")]),
        ('{ a = "b" , }', [Matcher("a", "=", "b")]),
        ("{}", []),
        ('a="b",c!=d', [Matcher("a", "=", "b"), Matcher("c", "!=", "d")]),
        ('{summary="x,y}", a!~z}', [Matcher("summary", "=", "x,y}"), Matcher("a", "!~", "z")]),
    ],
)
def test_parse_matcher_list(text: str, expected: list[Matcher]) -> None:
    assert parse_matchers(text) == expected


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("alertname == Foo", "unexpected '=' after the matcher value", 12),
        ("alertname ~= Foo", "expected an operator", 11),
        ("alertname Foo", "expected an operator", 11),
        ('alertname="Foo', "unterminated quoted string", 11),
        ('severity=~"(warning"', "invalid regular expression", 11),
        ('9lives="x"', "expected a label name", 1),
        ('"" = "x"', "empty label name", 1),
        ("= Foo", "expected a label name", 1),
        ('a=b"c', "unexpected double quote", 4),
    ],
)
def test_invalid_matcher_says_what_and_where(text: str, message: str, column: int) -> None:
    with pytest.raises(MatcherError) as caught:
        parse_matcher(text)
    assert message in str(caught.value)
    assert caught.value.column == column
    assert f"column {column}" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{a="b"', "expected ',' or '}'"),
        ('{a="b" c="d"}', "expected ',' or '}'"),
        ('a="b" c="d"', "expected ',' between matchers"),
        ('{a="b"} x', "unexpected text after '}'"),
    ],
)
def test_invalid_matcher_list(text: str, message: str) -> None:
    with pytest.raises(MatcherError, match=message):
        parse_matchers(text)


def test_str_round_trips_through_the_parser() -> None:
    original = Matcher("msg", "=~", 'say "hi"\\n\nnext')
    assert parse_matcher(str(original)) == original

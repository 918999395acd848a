"""Label values cannot change the PromQL the playbooks send: each is a string literal.

Every query of every shipped playbook is rendered with hostile labels and parsed by the
project's own PromQL parser; each matcher must hold exactly the label's value (or, in
``=~``, a regex that matches exactly that value).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from router.alerts import Alert
from router.classify.promql import Call, VectorSelector, parse, walk
from router.config import BUILTIN_PLAYBOOKS, PrometheusSettings
from router.diagnose import templating
from router.diagnose.base import Check, ProviderError
from router.diagnose.planning import plan, template_variables
from router.diagnose.playbooks import load_playbooks
from router.diagnose.prometheus import PrometheusProvider
from router.triage import Classification, TriageResult
from tests.diagnose.test_prometheus import Recorder, context

PLAYBOOKS = load_playbooks([BUILTIN_PLAYBOOKS])
NOW = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)
HOSTILE = [
    'x"} or vector(1337) or up{a="',
    "back\\slash\\",
    "new\nline\r\ttab",
    '"}',
    "a.b+c*(d)|[e]{1}^$?",
    "'single' `back`",
]


def queries(category: str, labels: dict[str, str]) -> list[str]:
    alert = Alert(status="firing", labels={"alertname": "T", **labels}, startsAt=NOW)
    result = TriageResult(alert=alert, classification=Classification(category=category))
    playbook = PLAYBOOKS.get(category)
    assert playbook is not None
    checks = plan(playbook, template_variables(playbook, result, NOW), {"prometheus"}).checks
    return [c.params["query"] for c in checks if "query" in c.params]


def selectors(query: str) -> list[VectorSelector]:
    return [node for node in walk(parse(query)) if isinstance(node, VectorSelector)]


@pytest.mark.parametrize("category", ["latency", "error_rate", "crashloop"])
@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_label_values_stay_inside_their_matchers(category: str, value: str) -> None:
    labels = {"namespace": value, "pod": value, "service": value}
    sent = queries(category, labels)
    assert sent, f"the {category} playbook sends no query"
    for query in sent:
        assert not [n for n in walk(parse(query)) if isinstance(n, Call) and n.func == "vector"]
        seen = 0
        for selector in selectors(query):  # parses: the query is valid PromQL
            for matcher in selector.matchers:
                if matcher.name in labels:
                    seen += 1
                    assert matcher.matches_value(value), (query, matcher)
                    if matcher.op == "=":
                        assert matcher.value == value
        assert seen, query


def test_the_regex_filter_keeps_a_pod_name_literal() -> None:
    (query,) = [q for q in queries("crashloop", {"namespace": "shop", "pod": "api.1"})]
    pods = [m for s in selectors(query) for m in s.matchers if m.name == "pod"]
    assert pods and all(m.matches_value("api.1") and not m.matches_value("apix1") for m in pods)


def test_a_rendered_variable_is_not_escaped_twice() -> None:
    selector = templating.compile_param('service="{{ labels.service }}"')
    variables = {"labels": {"service": 'a"b'}}
    rendered = templating.render_param(selector, variables)
    query = templating.compile_param("up{ {{ params.selector }} }")
    text = templating.render_param(query, {"params": {"selector": rendered}})
    assert [m.value for s in selectors(text) for m in s.matchers] == ['a"b']


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_round_trips_as_a_string_literal(value: str) -> None:
    (selector,) = selectors(f'up{{a="{templating.promql_string(value)}"}}')
    assert selector.matchers[0].value == value


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"])))
def test_any_text_round_trips_as_a_literal_regex(value: str) -> None:
    quoted = templating.promql_string(templating.regex_quote(value))
    (selector,) = selectors(f'up{{a=~"{quoted}"}}')
    assert selector.matchers[0].matches_value(value)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    made = Recorder()
    yield made
    made.close()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("up" + " " * 70_000, "the query is 70,002 bytes, over 65,536"),
        (
            'up{a="' + "{" * 40_000 + '"}',
            "the query cannot be sent: URL component 'query' too long",
        ),
    ],
)
async def test_a_query_too_long_to_send_is_refused_without_a_request(
    recorder: Recorder, query: str, message: str
) -> None:
    provider = PrometheusProvider(PrometheusSettings(url=recorder.url))
    try:
        with pytest.raises(ProviderError, match=message):
            await provider.run(Check("q", "prometheus", "query", "", {"query": query}), context())
    finally:
        await provider.close()
    assert recorder.headers == []

"""A small PromQL parser: enough of the grammar for real alerting expressions.

``parse(text)`` returns an AST (``router.classify.promql_ast``); errors raise
:class:`PromQLError` with a column. Operator precedence, lowest first: ``or``;
``and``/``unless``; comparisons; ``+ -``; ``* / % atan2``; ``^`` (right-associative).
"""

from __future__ import annotations

import re

from router.classify.matchers import Matcher
from router.classify.promql_ast import (
    Aggregation,
    BinaryExpr,
    Call,
    Expr,
    MatrixSelector,
    NumberLiteral,
    Paren,
    StringLiteral,
    Subquery,
    Unary,
    VectorMatching,
    VectorSelector,
    children,
    walk,
)
from router.classify.promql_lexer import KEYWORDS, PromQLError, Token, tokenize

__all__ = [
    "AGGREGATIONS",
    "COMPARISONS",
    "Aggregation",
    "BinaryExpr",
    "Call",
    "Expr",
    "MatrixSelector",
    "NumberLiteral",
    "Paren",
    "PromQLError",
    "StringLiteral",
    "Subquery",
    "Unary",
    "VectorMatching",
    "VectorSelector",
    "children",
    "parse",
    "walk",
]

AGGREGATIONS = frozenset(
    {"sum", "avg", "count", "min", "max", "stddev", "stdvar", "topk", "bottomk", "quantile"}
    | {"count_values", "group", "limitk", "limit_ratio"}
)
COMPARISONS = frozenset({"==", "!=", ">", "<", ">=", "<="})
_PRECEDENCE = {
    "or": 1,
    "and": 2,
    "unless": 2,
    **dict.fromkeys(COMPARISONS, 3),
    "+": 4,
    "-": 4,
    "*": 5,
    "/": 5,
    "%": 5,
    "atan2": 5,
    "^": 6,
}


def parse(text: str) -> Expr:
    """Parse a PromQL expression; raises :class:`PromQLError` on invalid input."""
    parser = _Parser(tokenize(text))
    expr = parser.expression()
    if parser.peek().kind != "eof":
        parser.fail(f"unexpected {parser.peek().text!r} after the expression")
    return expr


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0

    # -- cursor ---------------------------------------------------------------
    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def next(self) -> Token:
        token = self.peek()
        self.index += 1
        return token

    def fail(self, message: str, token: Token | None = None) -> None:
        raise PromQLError((token or self.peek()).pos + 1, message)

    def expect_op(self, op: str) -> Token:
        if not self.peek().is_op(op):
            found = self.peek().text or "end of input"
            self.fail(f"expected {op!r}, found {found!r}")
        return self.next()

    def _separator(self, closing: str) -> None:
        """Accept ``,`` before another item, or stay on ``closing``."""
        if self.peek().is_op(","):
            self.next()
        elif not self.peek().is_op(closing):
            self.fail(f"expected ',' or {closing!r}, found {self.peek().text or 'end of input'!r}")

    # -- binary operators -----------------------------------------------------
    def expression(self, min_precedence: int = 1) -> Expr:
        lhs = self.unary()
        while (op := self._binary_op()) is not None and _PRECEDENCE[op] >= min_precedence:
            self.next()
            return_bool = self._accept_word("bool")
            matching = self._vector_matching()
            right_assoc = op == "^"
            rhs = self.expression(_PRECEDENCE[op] + (0 if right_assoc else 1))
            lhs = BinaryExpr(op, lhs, rhs, return_bool, matching)
        return lhs

    def _binary_op(self) -> str | None:
        token = self.peek()
        if token.kind == "op" and token.text in _PRECEDENCE:
            return token.text
        if token.kind == "ident" and token.text.lower() in ("and", "or", "unless", "atan2"):
            return token.text.lower()
        return None

    def _accept_word(self, word: str) -> bool:
        if self.peek().is_word(word):
            self.next()
            return True
        return False

    def _vector_matching(self) -> VectorMatching | None:
        if not self.peek().is_word("on", "ignoring"):
            return None
        on = self.next().text.lower() == "on"
        labels = self.label_list()
        group, include = None, ()
        if self.peek().is_word("group_left", "group_right"):
            group = self.next().text.lower()
            include = self.label_list() if self.peek().is_op("(") else ()
        return VectorMatching(on, labels, group, include)

    def label_list(self) -> tuple[str, ...]:
        self.expect_op("(")
        labels: list[str] = []
        while not self.peek().is_op(")"):
            token = self.next()
            if token.kind not in ("ident", "string"):
                self.fail(f"expected a label name, found {token.text!r}", token)
            labels.append(token.value if token.kind == "string" else token.text)
            self._separator(")")
        self.next()
        return tuple(labels)

    # -- unary, postfix and primary -------------------------------------------
    def unary(self) -> Expr:
        if self.peek().is_op("-", "+"):
            op = self.next().text
            operand = self.unary()
            if op == "-" and isinstance(operand, NumberLiteral):
                return NumberLiteral(-operand.value)
            return operand if op == "+" else Unary(op, operand)
        return self.postfix(self.primary())

    def postfix(self, expr: Expr) -> Expr:
        while True:
            if self.peek().is_op("["):
                expr = self._range(expr)
            elif self.peek().is_word("offset"):
                self.next()
                sign = self.next().text if self.peek().is_op("-") else ""
                expr = _with_selector(expr, offset=sign + self._duration())
            elif self.peek().is_op("@"):
                self.next()
                expr = _with_selector(expr, at=self._at_value())
            else:
                return expr

    def _range(self, expr: Expr) -> Expr:
        bracket = self.next()
        length = self._duration()
        if self.peek().is_op(":"):
            self.next()
            step = None if self.peek().is_op("]") else self._duration()
            self.expect_op("]")
            return Subquery(expr, length, step)
        self.expect_op("]")
        if not isinstance(expr, VectorSelector):
            self.fail("a range [..] needs a vector selector (use a subquery [range:step])", bracket)
        assert isinstance(expr, VectorSelector)
        return MatrixSelector(expr, length)

    def _duration(self) -> str:
        token = self.next()
        if token.kind not in ("duration", "number"):
            self.fail(f"expected a duration, found {token.text or 'end of input'!r}", token)
        return token.text

    def _at_value(self) -> str:
        token = self.next()
        if token.kind == "ident" and token.text in ("start", "end"):
            self.expect_op("(")
            self.expect_op(")")
            return f"{token.text}()"
        if token.kind != "number":
            self.fail("expected a timestamp, start() or end() after '@'", token)
        return token.text

    def primary(self) -> Expr:
        token = self.peek()
        if token.kind == "number":
            self.next()
            return NumberLiteral(
                float(int(token.text, 16) if token.text[:2] in ("0x", "0X") else token.text)
            )
        if token.kind == "string":
            self.next()
            return StringLiteral(token.value)
        if token.is_op("("):
            self.next()
            inner = self.expression()
            self.expect_op(")")
            return Paren(inner)
        if token.is_op("{"):
            return self.selector(None)
        if token.kind == "ident" and token.text.lower() not in KEYWORDS - {"atan2"}:
            return self.identifier()
        self.fail(f"unexpected {token.text or 'end of input'!r}")
        raise AssertionError("unreachable")

    def identifier(self) -> Expr:
        name = self.next().text
        if name.lower() in AGGREGATIONS and (
            self.peek().is_op("(") or self.peek().is_word("by", "without")
        ):
            return self.aggregation(name.lower())
        if self.peek().is_op("("):
            return Call(name, self.arguments())
        return self.selector(name)

    def arguments(self) -> tuple[Expr, ...]:
        self.expect_op("(")
        args: list[Expr] = []
        while not self.peek().is_op(")"):
            args.append(self.expression())
            self._separator(")")
        self.next()
        return tuple(args)

    def aggregation(self, op: str) -> Aggregation:
        grouping, without = self._grouping()
        args = self.arguments()
        if not args:
            self.fail(f"{op}() needs an argument")
        if not grouping:
            grouping, without = self._grouping()
        param, expr = (args[0], args[-1]) if len(args) > 1 else (None, args[0])
        return Aggregation(op, expr, param, grouping, without)

    def _grouping(self) -> tuple[tuple[str, ...], bool]:
        if self.peek().is_word("by", "without"):
            without = self.next().text.lower() == "without"
            return self.label_list(), without
        return (), False

    def selector(self, name: str | None) -> VectorSelector:
        start = self.peek()
        matchers: list[Matcher] = []
        if self.peek().is_op("{"):
            self.next()
            while not self.peek().is_op("}"):
                matchers.append(self.label_matcher())
                self._separator("}")
            self.next()
        if name is None:
            name = next((m.value for m in matchers if m.name == "__name__" and m.op == "="), None)
            if name is None and not matchers:
                self.fail("a vector selector needs a metric name or a label matcher", start)
        return VectorSelector(name, tuple(matchers))

    def label_matcher(self) -> Matcher:
        token = self.next()
        if token.kind == "string" and self.peek().is_op(",", "}"):
            return Matcher("__name__", "=", token.value)  # Prometheus 3: {"metric.name"}
        if token.kind not in ("ident", "string"):
            self.fail(f"expected a label name, found {token.text or 'end of input'!r}", token)
        label = token.value if token.kind == "string" else token.text
        op_token = self.next()
        if not op_token.is_op("=", "!=", "=~", "!~"):
            self.fail(f"expected a label operator, found {op_token.text!r}", op_token)
        value = self.next()
        if value.kind != "string":
            self.fail(f"expected a quoted label value, found {value.text!r}", value)
        try:
            return Matcher(label, op_token.text, value.value)  # type: ignore[arg-type]
        except re.error as exc:
            self.fail(f"invalid regular expression {value.value!r}: {exc.msg}", value)
        raise AssertionError("unreachable")


def _with_selector(expr: Expr, **changes: str) -> Expr:
    """Apply ``offset``/``@`` to the selector (or subquery) they follow."""
    match expr:
        case VectorSelector():
            return _replace(expr, **changes)
        case MatrixSelector(vector=vector, range=length):
            return MatrixSelector(_replace(vector, **changes), length)
    return expr


def _replace(selector: VectorSelector, **changes: str) -> VectorSelector:
    return VectorSelector(
        selector.name,
        selector.matchers,
        changes.get("offset", selector.offset),
        changes.get("at", selector.at),
    )

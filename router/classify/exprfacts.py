"""What an alert expression says about each metric it reads, from the parsed AST.

Every vector selector becomes a :class:`SelectorUse` that records the functions and
aggregations around it, whether it is the numerator or denominator of a ratio, and
its *direction*: ``">"`` when a larger value of this metric makes the alert fire
(``x > 5``, ``5 < x``, ``x / limit > 0.8``), ``"<"`` when a smaller one does
(``x < 5``, ``limit - x < 10``, ``1 / x > 2``), ``"=="``/``"!="`` for equality tests.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from dataclasses import dataclass, replace
from typing import Literal

from router.classify.matchers import Matcher
from router.classify.promql import (
    COMPARISONS,
    Aggregation,
    BinaryExpr,
    Call,
    Expr,
    NumberLiteral,
    Paren,
    Unary,
    VectorSelector,
    children,
)
from router.classify.promql_lexer import KEYWORDS, PromQLError, Token, tokenize

Role = Literal["numerator", "denominator", "alone"]

_FLIP = {">": "<", "<": ">", ">=": "<=", "<=": ">=", "==": "==", "!=": "!="}
_WORD_SPLIT = re.compile(r"[_:]+")
_VALUE_SPLIT = re.compile(r"[^a-z0-9]+")
# Labels whose value says *what* is measured (not *who*): name="max_connections".
_WHAT_LABELS = frozenset(
    {"name", "type", "kind", "state", "setting", "variable", "resource", "resource_name"}
    | {"conn_type", "setting_name", "error", "errmsg"}
)


@dataclass(frozen=True)
class SelectorUse:
    """One metric read by the expression, with the context it is read in."""

    name: str
    matchers: tuple[Matcher, ...] = ()
    functions: tuple[str, ...] = ()  # enclosing functions/aggregations, innermost first
    role: Role = "alone"
    direction: str | None = None  # ">", "<", ">=", "<=", "==", "!=" (see module doc)
    threshold: float | None = None  # the constant it is compared with, if any

    @property
    def words(self) -> frozenset[str]:
        return frozenset(w for w in _WORD_SPLIT.split(self.name.lower()) if w)

    @property
    def vocabulary(self) -> frozenset[str]:
        """Words of the name and of equality matcher values (``name="max_connections"``)."""
        values = (m.value.lower() for m in self.matchers if m.op == "=" and m.name in _WHAT_LABELS)
        return self.words | {w for v in values for w in _VALUE_SPLIT.split(v) if w}

    @property
    def rises(self) -> bool:
        """A larger value makes the alert fire."""
        return self.direction in (">", ">=")

    @property
    def falls(self) -> bool:
        """A smaller value makes the alert fire."""
        return self.direction in ("<", "<=")


@dataclass(frozen=True)
class ExprFacts:
    """Every metric use in one expression, plus the functions it calls."""

    uses: tuple[SelectorUse, ...]
    functions: frozenset[str]
    parse_error: str | None = None


def facts_from_ast(expr: Expr) -> ExprFacts:
    uses = tuple(_collect(expr, SelectorUse(name="")))
    functions = frozenset(f for use in uses for f in use.functions)
    return ExprFacts(uses, functions)


def _collect(node: Expr, ctx: SelectorUse) -> list[SelectorUse]:
    match node:
        case VectorSelector(name=name, matchers=matchers):
            return [replace(ctx, name=name or "", matchers=matchers)]
        case Call(func=func) | Aggregation(op=func):
            inner = replace(ctx, functions=(func.lower(), *ctx.functions))
            return [use for child in children(node) for use in _collect(child, inner)]
        case Unary(op="-", expr=operand):
            return _collect(operand, _flipped(ctx))
        case BinaryExpr():
            return _binary(node, ctx)
    return [use for child in children(node) for use in _collect(child, ctx)]


def _binary(node: BinaryExpr, ctx: SelectorUse) -> list[SelectorUse]:
    lhs_ctx, rhs_ctx = ctx, ctx
    if node.op in COMPARISONS:
        lhs_ctx = replace(ctx, direction=node.op, threshold=constant(node.rhs))
        rhs_ctx = replace(ctx, direction=_FLIP[node.op], threshold=constant(node.lhs))
    elif node.op == "/":
        lhs_ctx = replace(ctx, role="numerator")
        rhs_ctx = replace(_flipped(ctx), role="denominator")
    elif node.op == "-":
        rhs_ctx = _flipped(ctx)
    return _collect(node.lhs, lhs_ctx) + _collect(node.rhs, rhs_ctx)


def _flipped(ctx: SelectorUse) -> SelectorUse:
    return replace(ctx, direction=_FLIP.get(ctx.direction or "", ctx.direction))


def constant(node: Expr) -> float | None:
    """The value of a constant sub-expression such as ``(14.4 * (1 - 0.999))``."""
    match node:
        case NumberLiteral(value=value):
            return value
        case Paren(expr=inner):
            return constant(inner)
        case Unary(op="-", expr=inner):
            value = constant(inner)
            return None if value is None else -value
        case Call(func="vector" | "scalar", args=(arg,)):
            return constant(arg)
        case BinaryExpr(op=op, lhs=lhs, rhs=rhs) if op in "+-*/":
            return _arithmetic(op, constant(lhs), constant(rhs))
    return None


def _arithmetic(op: str, lhs: float | None, rhs: float | None) -> float | None:
    if lhs is None or rhs is None:
        return None
    if op == "+":
        return lhs + rhs
    if op == "-":
        return lhs - rhs
    if op == "*":
        return lhs * rhs
    return lhs / rhs if rhs else None


def facts_from_tokens(text: str, error: PromQLError) -> ExprFacts:
    """A rough view for expressions the parser rejects: metrics, matchers, first comparison."""
    tokens = tokenize(text, lenient=True)
    functions = frozenset(
        tok.text.lower()
        for tok, nxt in itertools.pairwise(tokens)
        if tok.kind == "ident" and nxt.is_op("(")
    )
    direction = next((t.text for t in tokens if t.kind == "op" and t.text in COMPARISONS), None)
    uses = [
        SelectorUse(
            tok.text, _token_matchers(tokens, i + 1), tuple(sorted(functions)), "alone", direction
        )
        for i, tok in enumerate(tokens)
        if _is_metric_token(tokens, i)
    ]
    return ExprFacts(tuple(uses), functions, parse_error=str(error))


def _is_metric_token(tokens: list[Token], index: int) -> bool:
    tok = tokens[index]
    if tok.kind != "ident" or tok.text.lower() in KEYWORDS:
        return False
    following = tokens[index + 1] if index + 1 < len(tokens) else None
    preceding = tokens[index - 1] if index else None
    if following is not None and (following.is_op("(") or following.is_op("=", "!=", "=~", "!~")):
        return False
    return not (preceding is not None and preceding.is_word("by", "without", "on", "ignoring"))


def _token_matchers(tokens: list[Token], start: int) -> tuple[Matcher, ...]:
    if start >= len(tokens) or not tokens[start].is_op("{"):
        return ()
    found: list[Matcher] = []
    index = start + 1
    while index + 2 < len(tokens) and not tokens[index].is_op("}"):
        name, op, value = tokens[index : index + 3]
        if name.kind == "ident" and op.is_op("=", "!=", "=~", "!~") and value.kind == "string":
            with contextlib.suppress(re.error):
                found.append(Matcher(name.text, op.text, value.value))  # type: ignore[arg-type]
            index += 3
        else:
            index += 1
    return tuple(found)

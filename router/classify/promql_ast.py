"""The PromQL syntax tree: frozen dataclasses, plus ``children`` and ``walk``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from router.classify.matchers import Matcher


@dataclass(frozen=True)
class NumberLiteral:
    value: float


@dataclass(frozen=True)
class StringLiteral:
    value: str


@dataclass(frozen=True)
class VectorSelector:
    name: str | None
    matchers: tuple[Matcher, ...] = ()
    offset: str | None = None
    at: str | None = None


@dataclass(frozen=True)
class MatrixSelector:
    vector: VectorSelector
    range: str


@dataclass(frozen=True)
class Subquery:
    expr: Expr
    range: str
    step: str | None = None


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class Aggregation:
    op: str
    expr: Expr
    param: Expr | None = None
    grouping: tuple[str, ...] = ()
    without: bool = False


@dataclass(frozen=True)
class VectorMatching:
    on: bool = False
    labels: tuple[str, ...] = ()
    group: str | None = None  # "group_left" | "group_right"
    include: tuple[str, ...] = ()


@dataclass(frozen=True)
class BinaryExpr:
    op: str
    lhs: Expr
    rhs: Expr
    return_bool: bool = False
    matching: VectorMatching | None = field(default=None)


@dataclass(frozen=True)
class Unary:
    op: str
    expr: Expr


@dataclass(frozen=True)
class Paren:
    expr: Expr


Expr = (
    NumberLiteral
    | StringLiteral
    | VectorSelector
    | MatrixSelector
    | Subquery
    | Call
    | Aggregation
    | BinaryExpr
    | Unary
    | Paren
)


def children(node: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of a node, left to right."""
    match node:
        case MatrixSelector(vector=vector):
            return (vector,)
        case Subquery(expr=expr) | Unary(expr=expr) | Paren(expr=expr):
            return (expr,)
        case Call(args=args):
            return args
        case Aggregation(expr=expr, param=param):
            return (expr,) if param is None else (param, expr)
        case BinaryExpr(lhs=lhs, rhs=rhs):
            return (lhs, rhs)
    return ()


def walk(node: Expr) -> Iterator[Expr]:
    """Every node of the tree, parents before children."""
    yield node
    for child in children(node):
        yield from walk(child)

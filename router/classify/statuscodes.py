"""Status-code families: which label values mean a server failure, a client error, a success.

The family is read from the label's name: HTTP status codes (``code``, ``status``,
``response_code_class``, ``http_response_status_code``, Envoy's class ``5``), gRPC codes
by name or number (``grpc_code``, ``rpc_grpc_status_code``), DNS response codes
(``rcode``) and Micrometer's ``outcome``. A matcher selects a kind when it accepts some
of that kind's values and none of the values it is contrasted with, so ``code=~"5.."``,
``code!~"[1-4].."`` and ``grpc_code=~"Internal|Unavailable"`` all select server failures
and ``response_code!~"5.."`` selects successes. Each spelling of the codes is judged on
its own: ``!~"5.."`` rejects every three-digit 5xx, whatever it does to Envoy's class ``5``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from router.classify.matchers import Matcher

# CloudWatch-style counters name the class: ``httpcode_target_5_xx_count``, ``5xxerror``.
SERVER_ERROR_NAME = re.compile(r"(?:^|[_:])5_?xx", re.IGNORECASE)


@dataclass(frozen=True)
class Codes:
    """One spelling of a family's codes: ``503``, ``5xx``, ``Unavailable``, ``14``…"""

    server_errors: tuple[str, ...]
    client_errors: tuple[str, ...]
    successes: tuple[str, ...]


@dataclass(frozen=True)
class CodeFamily:
    """A label's codes in each spelling; a matcher is judged within one spelling at a time."""

    name: str
    spellings: tuple[Codes, ...]


def _grpc(spell: Callable[[str, int], str]) -> Codes:
    def each(*codes: tuple[str, int]) -> tuple[str, ...]:
        return tuple(spell(name, number) for name, number in codes)

    return Codes(
        each(("Unknown", 2), ("DeadlineExceeded", 4), ("Internal", 13), ("Unavailable", 14),
             ("DataLoss", 15)),
        each(("Canceled", 1), ("InvalidArgument", 3), ("NotFound", 5), ("AlreadyExists", 6),
             ("PermissionDenied", 7), ("FailedPrecondition", 9), ("OutOfRange", 11),
             ("Unauthenticated", 16)),
        each(("OK", 0)),
    )  # fmt: skip


def _upper_snake(name: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", name).upper()


HTTP = CodeFamily(
    "HTTP",
    (
        Codes(("500", "502", "503", "504"), ("400", "401", "403", "404", "429"), ("200", "204")),
        Codes(("5xx", "5XX"), ("4xx", "4XX"), ("2xx", "2XX")),
        Codes(("5",), ("4",), ("2",)),  # Envoy's response code class
    ),
)
GRPC = CodeFamily(
    "gRPC",
    (
        _grpc(lambda name, _: name),
        _grpc(lambda name, _: _upper_snake(name)),
        _grpc(lambda _, number: str(number)),
    ),
)
GRPC_OR_HTTP = CodeFamily("gRPC or HTTP", GRPC.spellings + HTTP.spellings)
DNS = CodeFamily("DNS", (Codes(("SERVFAIL",), ("NXDOMAIN", "REFUSED", "FORMERR"), ("NOERROR",)),))
MICROMETER = CodeFamily("Micrometer", (Codes(("SERVER_ERROR",), ("CLIENT_ERROR",), ("SUCCESS",)),))


def family_of(label: str, rpc: bool = False) -> CodeFamily | None:
    """The code family a label holds, or ``None`` for other labels.

    From the label's name; on an RPC metric (``rpc``) a plain ``statusCode`` label holds
    gRPC codes, or HTTP ones through a gateway, so it is judged by both.
    """
    name = label.lower()
    if "grpc" in name:
        return GRPC
    if name == "outcome":
        return MICROMETER
    if name == "rcode":
        return DNS
    if "code" not in name and "status" not in name:
        return None
    return GRPC_OR_HTTP if rpc else HTTP


def selects(matcher: Matcher, wanted: tuple[str, ...], others: tuple[str, ...]) -> bool:
    """The matcher accepts some ``wanted`` values and none of ``others``."""
    return any(matcher.matches_value(v) for v in wanted) and not any(
        matcher.matches_value(v) for v in others
    )


def _selects_in_a_spelling(
    matcher: Matcher, rpc: bool, pick: Callable[[Codes], tuple[tuple, tuple]]
) -> bool:
    family = family_of(matcher.name, rpc)
    spellings = family.spellings if family else ()
    return any(selects(matcher, *pick(codes)) for codes in spellings)


def selects_server_errors(matcher: Matcher, rpc: bool = False) -> bool:
    return _selects_in_a_spelling(matcher, rpc, lambda c: (c.server_errors, c.successes))


def selects_client_errors(matcher: Matcher, rpc: bool = False) -> bool:
    return _selects_in_a_spelling(
        matcher, rpc, lambda c: (c.client_errors, c.server_errors + c.successes)
    )


def selects_successes(matcher: Matcher, rpc: bool = False) -> bool:
    return _selects_in_a_spelling(matcher, rpc, lambda c: (c.successes, c.server_errors))


def names_server_errors(metric: str) -> bool:
    """The metric's name counts 5xx responses (``aws_elb_httpcode_backend_5_xx_sum``)."""
    return SERVER_ERROR_NAME.search(metric) is not None

"""Sandboxed Jinja2 for playbooks: parameters, verdict conditions and verdict texts.

Playbooks are configuration that users write, so templates run in Jinja's
immutable sandbox. A missing value is *chainable undefined*: ``pods.oom_killed``
is simply false when the ``pods`` check was skipped or failed, never an error.
"""

from __future__ import annotations

from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

_ENV = ImmutableSandboxedEnvironment(undefined=ChainableUndefined, autoescape=False)


class TemplateError(ValueError):
    """A template or condition that does not compile, or failed while rendering."""


def compile_template(source: str) -> Any:
    try:
        return _ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"template syntax error: {exc.message}") from None


def compile_condition(source: str) -> Any:
    try:
        return _ENV.compile_expression(source, undefined_to_none=False)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"condition syntax error: {exc.message}") from None


def names_in(source: str, *, expression: bool = False) -> set[str]:
    """The top-level variable names a template or condition reads."""
    text = "{{ " + source + " }}" if expression else source
    try:
        return meta.find_undeclared_variables(_ENV.parse(text))
    except TemplateSyntaxError:
        return set()


def render(template: Any, variables: dict[str, Any]) -> str:
    try:
        return template.render(variables).strip()
    except Exception as exc:  # the sandbox raises SecurityError for unsafe access
        raise TemplateError(f"{type(exc).__name__}: {exc}") from None


def evaluate(condition: Any, variables: dict[str, Any]) -> bool:
    try:
        value = condition(**variables)
    except Exception as exc:
        raise TemplateError(f"{type(exc).__name__}: {exc}") from None
    return bool(value) and not isinstance(value, ChainableUndefined)

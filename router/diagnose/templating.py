"""Sandboxed Jinja2 for playbooks: parameters, verdict conditions and verdict texts.

Playbooks are configuration that users write, so templates run in Jinja's
immutable sandbox, and templates that reach for private attributes
(``{{ ''.__class__ }}``) are refused when the playbook loads. A missing value is
*chainable undefined*: ``pods.oom_killed`` is simply false when the ``pods``
check was skipped or failed, never an error.

Check parameters and ``vars`` are where label values meet PromQL, so there every
``{{ … }}`` is escaped as the body of a PromQL string literal (:func:`promql_string`)
unless it is an already rendered parameter or variable: ``namespace="{{ labels.namespace }}"``
cannot be closed by a label value. Inside ``=~`` a value is also regex-quoted with
``| regex`` (:func:`regex_quote`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jinja2 import ChainableUndefined, TemplateSyntaxError, Undefined, meta, nodes
from jinja2.environment import Template
from jinja2.sandbox import ImmutableSandboxedEnvironment


class _Environment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, where a mapping's attributes are its keys, never its methods.

    ``query.values`` is the fact, and undefined when the check published none (a
    provider that was down), not the dict method.
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(undefined=ChainableUndefined, autoescape=False, **options)
        self.filters["regex"] = regex_quote

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping) and isinstance(attribute, str):
            if attribute in obj:
                return obj[attribute]
            return self.undefined(obj=obj, name=attribute)
        if type(obj) is ChainableUndefined and not attribute.startswith("_"):
            # What the sandbox answers too (a public name of an undefined is the undefined
            # itself, and safe), without its checks: a skipped check's facts are read often.
            return obj
        return super().getattr(obj, attribute)


_PROMQL_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})
_REGEX_SPECIALS = frozenset("\\.+*?()|[]{}^$")  # Go's regexp.QuoteMeta


class PromQLText(str):
    """A rendered parameter or variable: already escaped, so interpolated as it is."""


def promql_string(value: str) -> str:
    """``value`` as the body of a double-quoted PromQL string literal."""
    return value.translate(_PROMQL_ESCAPES)


def regex_quote(value: Any) -> Any:
    """``value`` matched literally by a PromQL (RE2) regex; undefined stays undefined."""
    if isinstance(value, Undefined):
        return value
    return "".join("\\" + c if c in _REGEX_SPECIALS else c for c in str(value))


def _escaped(value: Any) -> Any:
    """Every parameter interpolation: escaped unless already rendered (or undefined)."""
    if isinstance(value, PromQLText | Undefined):
        return value
    return PromQLText(promql_string(str(value)))


_ENV = _Environment()
_PARAMS_ENV = _Environment(finalize=_escaped)


class TemplateError(ValueError):
    """A template or condition that does not compile, or failed while rendering."""

    def __init__(self, message: str, lineno: int | None = None) -> None:
        super().__init__(message)
        self.lineno = lineno  # 1-based line inside the template, for syntax errors


def compile_template(source: str) -> Template:
    """Compile a ``{{ … }}`` template; raises :class:`TemplateError` for bad or unsafe ones."""
    _check_safe(_parse(source))
    return _ENV.from_string(source)


def compile_param(source: str) -> Template:
    """Compile a check parameter or playbook variable: every value is escaped for PromQL."""
    _check_safe(_parse(source))
    return _PARAMS_ENV.from_string(source)


def compile_condition(source: str) -> Any:
    """Compile a bare expression (a verdict's ``when``), returning a callable over variables."""
    _check_safe(_parse("{{ " + source + " }}", what="condition"))
    return _ENV.compile_expression(source, undefined_to_none=False)


def names_in(source: str, *, expression: bool = False) -> set[str]:
    """The top-level variable names a template or condition reads."""
    text = "{{ " + source + " }}" if expression else source
    try:
        return set(meta.find_undeclared_variables(_ENV.parse(text)))
    except TemplateSyntaxError:
        return set()


def attributes_of(source: str, variable: str) -> list[str]:
    """The attributes of ``variable`` a template reads: ``labels.pod`` → ``["pod"]``."""
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError:
        return []
    found: list[str] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = _attribute_name(node)
        is_variable = isinstance(node.node, nodes.Name) and node.node.name == variable
        if is_variable and name and name not in found:
            found.append(name)
    return found


def render(template: Template, variables: dict[str, Any]) -> str:
    """Render to text, stripped; any failure (including a sandbox refusal) is a TemplateError."""
    try:
        return template.render(variables).strip()
    except Exception as exc:  # the sandbox raises SecurityError for unsafe access
        raise TemplateError(f"{type(exc).__name__}: {exc}") from None


def render_param(template: Template, variables: dict[str, Any]) -> PromQLText:
    """Render a parameter (see :func:`compile_param`); later ones interpolate it as it is."""
    return PromQLText(render(template, variables))


def evaluate(condition: Any, variables: dict[str, Any]) -> bool:
    """Whether a compiled condition holds; undefined values are false."""
    try:
        value = condition(**variables)
    except Exception as exc:
        raise TemplateError(f"{type(exc).__name__}: {exc}") from None
    return bool(value) and not isinstance(value, ChainableUndefined)


def _parse(source: str, what: str = "template") -> nodes.Template:
    try:
        return _ENV.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{what} syntax error: {exc.message}", exc.lineno) from None


def _check_safe(tree: nodes.Template) -> None:
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = _attribute_name(node)
        if name and name.startswith("_"):
            raise TemplateError(f"unsafe attribute {name!r}: private attributes are not allowed")


def _attribute_name(node: nodes.Getattr | nodes.Getitem) -> str | None:
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None

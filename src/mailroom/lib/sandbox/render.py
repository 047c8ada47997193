"""Compiling (vetted, cached) and rendering within a budget: the sandbox's entry points."""

from __future__ import annotations

import time
from collections.abc import Generator, Iterator, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.environment import Template

from mailroom.lib import formatting
from mailroom.lib.sandbox.budget import _DEFAULT_LIMITS, _STATE, Limits, _State, _tick
from mailroom.lib.sandbox.environment import _ENVIRONMENTS, UndefinedField
from mailroom.lib.sandbox.errors import TemplateError, _CompileProblem, _Refused

__all__ = ["CompiledTemplate", "compile_template", "render_string"]


_REFUSED_TAGS = {nodes.Extends: "{% extends %}", nodes.Include: "{% include %}",
                 nodes.Import: "{% import %}", nodes.FromImport: "{% from ... import %}",
                 nodes.EvalContextModifier: "{% autoescape %}"}


def _vet(ast: nodes.Template, html: bool) -> None:
    """Refuse what the sandbox does not offer; wrap every loop iterable in a counter."""
    for node in ast.find_all(nodes.Node):
        for kind, tag in _REFUSED_TAGS.items():
            if isinstance(node, kind):
                raise _CompileProblem(f"{tag} is not available in email templates", node.lineno)
        if isinstance(node, nodes.Name) and node.name in {"self", "varargs", "kwargs"}:
            raise _CompileProblem(f"'{node.name}' is not available in email templates",
                                  node.lineno)
        if isinstance(node, nodes.Filter) and node.name == "safe" and node.node is not None:
            if not html:
                raise _CompileProblem("'|safe' only applies to HTML; this part is plain text",
                                      node.lineno)
            if not (isinstance(node.node, nodes.Const) and isinstance(node.node.value, str)):
                raise _CompileProblem("'|safe' only applies to HTML written in the template; "
                                      "values from records are always escaped", node.lineno)
    for loop in list(ast.find_all(nodes.For)):  # count every iteration against the budget
        loop.iter = nodes.Call(nodes.EnvironmentAttribute("mr_iter"), [loop.iter], [], None,
                               None, lineno=loop.iter.lineno)


@lru_cache(maxsize=512)
def _compile(source: str, html: bool) -> Template:
    environment = _ENVIRONMENTS[html]
    try:
        ast = environment.parse(source)
        _vet(ast, html)
        code = environment.compile(ast)
    except TemplateSyntaxError as exc:
        raise _CompileProblem(exc.message or str(exc), exc.lineno) from None
    except _CompileProblem:
        raise
    except RecursionError:
        raise _CompileProblem("the template is nested too deeply", None) from None
    except Exception as exc:  # Python's own compiler limits, e.g. >20 nested blocks
        raise _CompileProblem(_message(exc), None) from None
    return environment.template_class.from_code(environment, code,
                                                environment.make_globals(None))


def compile_template(source: str, *, name: str = "template", field: str = "body",
                     html: bool = True) -> CompiledTemplate:
    """Parse and compile once (cached on ``(source, html)``); syntax errors name the line."""
    try:
        template = _compile(source, html)
    except _CompileProblem as exc:
        raise TemplateError(exc.message, template=name, field=field, line=exc.line) from None
    return CompiledTemplate(template, name=name, field=field, html=html, source=source)


def _message(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "macros or loops call themselves too deeply"
    if isinstance(exc, MemoryError):
        return "the template needs too much memory"
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _line(exc: BaseException) -> int | None:
    line, tb = None, exc.__traceback__
    while tb is not None:
        template = tb.tb_frame.f_globals.get("__jinja_template__")
        if template is not None:
            line = template.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return line


def _undefined_message(exc: UndefinedField, source: str, line: int | None) -> str:
    """"'object.partner.nam' is undefined": the whole dotted path, found on the error's line
    (the runtime only knows the missing name and the type it was looked up on)."""
    if not exc.name or not line:
        return _message(exc)
    try:
        ast = _ENVIRONMENTS[False].parse(source)
    except TemplateSyntaxError:
        return _message(exc)
    for node in ast.find_all((nodes.Getattr, nodes.Name)):
        found = node.attr if isinstance(node, nodes.Getattr) else getattr(node, "name", None)
        if found == exc.name and node.lineno == line:
            path = _dotted(node)
            if path:
                return f"'{path}' is undefined"
    return _message(exc)


def _dotted(node: nodes.Node) -> str | None:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        inner = _dotted(node.node)
        return f"{inner}.{node.attr}" if inner else None
    return None


class CompiledTemplate:
    """A compiled template; render it as often as needed, from any thread."""

    __slots__ = ("_source", "_template", "field", "html", "name")

    def __init__(self, template: Template, *, name: str, field: str, html: bool,
                 source: str = "") -> None:
        self._template, self.name, self.field, self.html = template, name, field, html
        self._source = source

    def render(self, context: Mapping[str, Any], *, locale: str = "en_US",
               timezone: str = "UTC", limits: Limits = _DEFAULT_LIMITS) -> str:
        """Render within ``limits``; any failure is a :class:`TemplateError`.

        ``timezone`` must be a valid IANA name (``ValueError`` otherwise: a caller bug, not a
        template problem); an unknown ``locale`` falls back to en_US.
        """
        formatting.time_zone(timezone)  # a ValueError now rather than in the middle
        state = _State(limits, time.monotonic() + limits.max_seconds,
                       formatting.normalize_locale(locale), timezone)
        token = _STATE.set(state)
        chunks: Iterator[str] | None = None
        try:
            chunks = self._template.root_render_func(self._template.new_context(dict(context)))
            blocks: list[str] = []
            out, total = [], 0
            for chunk in chunks:
                total += len(chunk)
                if total > limits.max_output:
                    raise _Refused(f"the output is longer than {limits.max_output:,} characters")
                out.append(chunk)
                if len(out) >= 256:  # join small pieces as we go, as _Buffer does
                    blocks.append("".join(out))
                    out.clear()
                _tick()
            return "".join([*blocks, *out])
        except UndefinedField as exc:
            line = _line(exc)
            raise TemplateError(_undefined_message(exc, self._source, line),
                                template=self.name, field=self.field, line=line) from exc
        except Exception as exc:
            raise TemplateError(_message(exc), template=self.name, field=self.field,
                                line=_line(exc)) from exc
        finally:
            if isinstance(chunks, Generator):  # Jinja's render functions are generators
                chunks.close()
            _STATE.reset(token)


def render_string(source: str, context: Mapping[str, Any], *, name: str = "template",
                  field: str = "body", html: bool = True, locale: str = "en_US",
                  timezone: str = "UTC", limits: Limits = _DEFAULT_LIMITS) -> str:
    """Compile (cached) and render in one call."""
    return compile_template(source, name=name, field=field, html=html).render(
        context, locale=locale, timezone=timezone, limits=limits)

"""Every dotted path a template reads, checked against what its context will hold.

Saving a template calls :func:`unknown_paths` so that ``{{ object.partner.nam }}`` is refused
with the nearest valid names ("did you mean object.partner.name?") instead of failing when
the mail is sent. The template is read from Jinja's AST (never with regular expressions):
names the template binds itself (``{% set %}``, macro arguments, ``with``) are not checked;
a ``{% for line in object.lines %}`` loop variable is checked against the list's items.

A *schema* describes the context, a mapping of names to:

- ``None``: a value (text, number, date) without fields of its own;
- a mapping: an object with these fields (nested schemas);
- :class:`ListOf`: a list (a to-many relation); loop over it to read its items' fields;
- :data:`ANYTHING`: data the caller passes as it likes (``ctx``): not checked.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError, nodes

from mailroom.lib.sandbox.environment import _ENVIRONMENTS, _GLOBALS
from mailroom.lib.sandbox.errors import TemplateError

__all__ = ["ANYTHING", "ListOf", "UnknownPath", "unknown_paths"]


class _Anything:
    def __repr__(self) -> str:
        return "ANYTHING"


ANYTHING: Any = _Anything()


@dataclass(frozen=True)
class ListOf:
    item: Any


@dataclass(frozen=True)
class UnknownPath:
    path: str  # as written, up to the first unknown part: "object.partner.nam"
    line: int
    suggestions: tuple[str, ...]  # nearest valid paths, best first
    hint: str = ""  # why, when a name alone does not say it ("… is a list: loop over it")


# filters that keep a list's items (a loop over ``object.lines|sort(...)`` still has lines)
_KEEP_ITEMS = frozenset({"sort", "reverse", "select", "reject", "selectattr", "rejectattr",
                         "unique", "list"})
_JINJA_NAMES = frozenset({"loop", "caller", "super", "varargs", "kwargs", *_GLOBALS})
_MISSING = object()


def _chain(node: nodes.Node) -> tuple[nodes.Name, list[str | int]] | None:
    """``object.lines[0].name`` -> (Name object, ["lines", 0, "name"]); else None."""
    parts: list[str | int] = []
    while True:
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) and \
                isinstance(node.arg.value, str | int) and not isinstance(node.arg.value, bool):
            parts.append(node.arg.value)
            node = node.node
        elif isinstance(node, nodes.Name) and node.ctx == "load":
            return node, parts[::-1]
        else:
            return None


def _spell(name: str, parts: list[str | int]) -> str:
    return name + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _flatten(prefix: str, schema: Any, depth: int = 0) -> Iterator[str]:
    if isinstance(schema, Mapping) and depth < 8:
        for key, value in schema.items():
            path = f"{prefix}.{key}" if prefix else key
            yield path
            yield from _flatten(path, value, depth + 1)


class _Checker:
    def __init__(self, schema: Mapping[str, Any], unchecked: set[str]) -> None:
        self.schema, self.unchecked = schema, unchecked
        self.found: dict[str, UnknownPath] = {}

    def resolve(self, node: nodes.Node, scope: Mapping[str, Any]) -> Any:
        """The schema ``node`` reads (ANYTHING when not checkable); reports unknown paths."""
        chain = _chain(node)
        if chain is None:
            return ANYTHING
        name_node, parts = chain
        name = name_node.name
        if name in scope:
            current = scope[name]
        elif name in self.unchecked:
            return ANYTHING
        else:
            current = self.schema.get(name, _MISSING)
            if current is _MISSING:
                self.report(name_node, _spell(name, parts), {**self.schema, **scope}, name,
                            scope, top=True)
                return ANYTHING
        for i, part in enumerate(parts):
            if current is ANYTHING:
                return ANYTHING
            where = _spell(name, parts[:i])
            if isinstance(current, ListOf):
                if isinstance(part, int):
                    current = current.item
                    continue
                self.report(name_node, _spell(name, parts[:i + 1]), {}, str(part), scope,
                            hint=f"{where} is a list: loop over it, as in "
                                 f"{{% for item in {where} %}}{{{{ item.{part} }}}}"
                                 "{% endfor %}")
                return ANYTHING
            siblings = current if isinstance(current, Mapping) else {}
            found = siblings.get(part, _MISSING) if isinstance(part, str) else _MISSING
            if found is _MISSING:
                self.report(name_node, _spell(name, parts[:i + 1]), siblings, str(part),
                            scope, prefix=where,
                            hint="" if siblings else f"{where} is a value without fields")
                return ANYTHING
            current = found
        return current

    def report(self, node: nodes.Node, path: str, siblings: Mapping[str, Any], part: str,
               scope: Mapping[str, Any], *, prefix: str = "", hint: str = "",
               top: bool = False) -> None:
        if path in self.found:
            return
        names = [str(k) for k in siblings]
        near = [] if top else difflib.get_close_matches(part, names, n=3)
        if not near:  # nothing close among the siblings: compare whole paths
            everything = [*_flatten("", self.schema), *(p for name, item in scope.items()
                                                        for p in [name, *_flatten(name, item)])]
            near = difflib.get_close_matches(
                path, [p for p in everything if not path.startswith((p + ".", p + "["))], n=3,
                cutoff=0.75)
        else:
            near = [f"{prefix}.{s}" if prefix else s for s in near]
        if not near:  # still nothing: the object's nearest fields all the same
            near = [f"{prefix}.{s}" if prefix else s
                    for s in difflib.get_close_matches(part, names, n=3, cutoff=0)]
        self.found[path] = UnknownPath(path, node.lineno, tuple(near), hint)

    def visit(self, node: nodes.Node, scope: Mapping[str, Any]) -> None:
        if isinstance(node, nodes.For):
            self.visit(node.iter, scope)
            inner = dict(scope)
            if isinstance(node.target, nodes.Name) and node.target.name not in self.unchecked:
                inner[node.target.name] = self.items(node.iter, scope)
            for child in [*node.body, *([node.test] if node.test else [])]:
                self.visit(child, inner)
            for child in node.else_:
                self.visit(child, scope)
            return
        if _chain(node) is not None:
            self.resolve(node, scope)
            return
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            self.visit(node.node.node, scope)  # a method: the sandbox checks its name
            arguments: list[nodes.Node | None] = [*node.args, *node.kwargs, node.dyn_args,
                                                   node.dyn_kwargs]
            for argument in arguments:
                if argument is not None:
                    self.visit(argument, scope)
            return
        for child in node.iter_child_nodes():
            self.visit(child, scope)

    def items(self, node: nodes.Node, scope: Mapping[str, Any]) -> Any:
        """What a loop over ``node`` yields: the list's items, else ANYTHING."""
        while isinstance(node, nodes.Filter) and node.name in _KEEP_ITEMS and node.node:
            node = node.node
        if _chain(node) is None:
            return ANYTHING
        checker = _Checker(self.schema, self.unchecked)  # already reported by visit(iter)
        found = checker.resolve(node, scope)
        return found.item if isinstance(found, ListOf) else ANYTHING


def unknown_paths(source: str, schema: Mapping[str, Any]) -> list[UnknownPath]:
    """The paths ``source`` reads that ``schema`` does not have, in order of appearance.

    A syntax error raises :class:`TemplateError` (callers compile the template first).
    """
    try:
        ast = _ENVIRONMENTS[True].parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateError(exc.message or str(exc), line=exc.lineno) from None
    loop_targets = {id(f.target) for f in ast.find_all(nodes.For)
                    if isinstance(f.target, nodes.Name)}
    unchecked = {n.name for n in ast.find_all(nodes.Name)
                 if n.ctx != "load" and id(n) not in loop_targets}
    unchecked |= {m.name for m in ast.find_all(nodes.Macro)} | _JINJA_NAMES
    checker = _Checker(schema, unchecked)
    checker.visit(ast, {})
    return sorted(checker.found.values(), key=lambda u: u.line)

"""Reading a template's source for the editor: the fields it uses, and whether a user
without the Template Editor role may save it."""

from __future__ import annotations

from jinja2 import TemplateSyntaxError, nodes

from mailroom.lib.sandbox.environment import _ENVIRONMENTS, _GLOBALS
from mailroom.lib.sandbox.errors import TemplateError, _CompileProblem

__all__ = ["check_simple", "placeholders"]


def _path(node: nodes.Node) -> str | None:
    """``object.partner.name`` for a chain of attribute lookups on a name, else None."""
    if isinstance(node, nodes.Name) and node.ctx == "load":
        return node.name
    if isinstance(node, nodes.Getattr):
        inner = _path(node.node)
        return f"{inner}.{node.attr}" if inner else None
    return None


def _parse(source: str) -> nodes.Template:
    try:
        return _ENVIRONMENTS[True].parse(source)
    except TemplateSyntaxError as exc:
        raise _CompileProblem(exc.message or str(exc), exc.lineno) from None


def placeholders(source: str) -> list[str]:
    """Dotted paths the template reads from its context, in order of first use.

    Names the template binds itself (loop variables, ``{% set %}``, macro arguments) are
    left out. A syntax error raises :class:`TemplateError`.
    """
    try:
        ast = _parse(source)
    except _CompileProblem as exc:
        raise TemplateError(exc.message, line=exc.line) from None
    bound = {n.name for n in ast.find_all(nodes.Name) if n.ctx != "load"} | {
        "loop", "caller", "super", *_GLOBALS}
    found: dict[str, None] = {}

    def visit(node: nodes.Node) -> None:
        path = _path(node)
        if path is not None:
            if path.split(".", 1)[0] not in bound:
                found.setdefault(path)
            return
        if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            node = nodes.Call(node.node.node, node.args, node.kwargs, node.dyn_args,
                              node.dyn_kwargs)  # a method on a field: the field is the path
        for child in node.iter_child_nodes():
            visit(child)

    visit(ast)
    return list(found)


_FORMAT_FILTERS = frozenset({"money", "number", "percent", "date", "datetime", "time"})
_TAG_NAMES: dict[type[nodes.Node], str] = {
    nodes.Assign: "set", nodes.AssignBlock: "set", nodes.CallBlock: "call",
    nodes.FilterBlock: "filter", nodes.FromImport: "from",
    nodes.ScopedEvalContextModifier: "autoescape", nodes.ExprStmt: "do"}


def check_simple(source: str, allowed: set[str] | None = None) -> list[str]:
    """Problems that stop a user without the Template Editor role from saving ``source``.

    Allowed: literal text/HTML, ``{{ dotted.path }}`` and the formatting filters with
    literal or dotted-path arguments (``{{ object.amount_total|money(object.currency) }}``).
    With ``allowed``, each path must lie on one of the allowed paths. Empty list = fine.
    """
    try:
        ast = _parse(source)
    except _CompileProblem as exc:
        return [f"Line {exc.line}: {exc.message}"]
    problems: dict[str, None] = {}

    def refuse(node: nodes.Node, what: str) -> None:
        problems.setdefault(f"Line {node.lineno}: only simple placeholders like "
                            f"{{{{ object.partner.name }}}} are allowed; ask a Template Editor "
                            f"for {what}.")

    def check_path(node: nodes.Node) -> bool:
        path = _path(node)
        if path is None:
            return False
        if allowed is not None and not any(
                path == a or a.startswith(path + ".") or path.startswith(a + ".")
                for a in allowed):
            problems.setdefault(f"Line {node.lineno}: '{path}' is not a field you can use "
                                "in this template.")
        return True

    def check(node: nodes.Expr) -> None:
        if check_path(node):
            return
        if isinstance(node, nodes.Filter) and node.name in _FORMAT_FILTERS and node.node:
            check(node.node)
            for arg in [*node.args, *(kw.value for kw in node.kwargs)]:
                if not (isinstance(arg, nodes.Const) or check_path(arg)):
                    refuse(arg, "filter arguments other than text, numbers or fields")
            if node.dyn_args or node.dyn_kwargs:
                refuse(node, "'*' arguments")
        elif isinstance(node, nodes.Filter):
            refuse(node, f"the filter '|{node.name}'")
        elif isinstance(node, nodes.Call):
            refuse(node, f"calls such as '{_path(node.node) or '...'}()'")
        elif isinstance(node, nodes.Getitem | nodes.Slice):
            refuse(node, "subscripts such as 'x[0]'")
        elif isinstance(node, nodes.BinExpr | nodes.UnaryExpr):
            refuse(node, f"operators such as '{node.operator.strip()}'")
        elif isinstance(node, nodes.Concat | nodes.Compare | nodes.CondExpr):
            refuse(node, "operators such as '~', '==' or 'if ... else'")
        elif isinstance(node, nodes.Test):
            refuse(node, f"tests such as 'is {node.name}'")
        else:
            refuse(node, "literal values such as {{ 'text' }} or lists")

    for statement in ast.body:
        if not isinstance(statement, nodes.Output):
            tag = _TAG_NAMES.get(type(statement), type(statement).__name__.lower())
            refuse(statement, f"'{{% {tag} %}}'")
            continue
        for child in statement.nodes:
            if not isinstance(child, nodes.TemplateData):
                check(child)
    return list(problems)

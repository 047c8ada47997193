"""The sandbox that renders user-written email templates (Jinja2, no Django).

Template Editors write Jinja; everybody else may only use ``{{ dotted.path }}`` placeholders
(:func:`check_simple`). Both run here, on a plain-data context (dicts, lists, text, numbers,
dates; never ORM objects), so a template can only read what the caller chose to hand over.

Why the extra layers on top of Jinja's ``ImmutableSandboxedEnvironment``: the Jinja sandbox
stops attribute escapes (``__class__``) and mutation (``list.append``) but not resource abuse
(``'a' * 10**8``, ``range`` loops with empty bodies, ``"%999999999s"|format``, recursion), and
one stuck render would stall a worker sending to 10,000 recipients. So each render carries a
budget (:class:`Limits`) kept in a ``ContextVar`` (renders run concurrently in threads):

- wall time: checked at every output, filter, call and operator, every 32 loop iterations
  and every 1,024 items a filter works through;
- loop iterations, all loops together: every ``for`` iterable is wrapped in a counter when
  the template is compiled (recursive ``loop()`` calls too);
- output: counted as it is produced, including text captured by ``{% set %}``, macros,
  ``{% call %}`` and ``{% filter %}``, so it cannot be amplified out of sight;
- each string or list an expression builds (``*``, ``+``, ``%``, ``~``, literals, filters)
  is checked against ``max_string`` *before* it is built. Lists the template makes remember
  their "weight" (values reachable through them, shared ones counted each time), so
  ``[x, x]`` nested twenty deep is refused instead of printed; big integers likewise;
- everything built is also charged to a total of 3 x ``max_output``, so a template cannot
  keep thousands of pieces alive, each within ``max_string`` (one per ``{% set %}`` line);
- printing a list or an error message never builds more than ``max_string`` characters.

Decisions:

- Attributes of plain data can be read; methods can be called only from a short allowlist of
  harmless, size-preserving ones: text (``upper``, ``lower``, ``title``, ``strip``,
  ``split``, ``startswith``, ``find``, ``count``, ``is...``), dict ``keys/values/items/get``,
  list ``count``, date ``isoformat/weekday``, ``loop.cycle/changed``. Refused: ``replace``,
  ``center``, ``zfill``, ``join`` (use the size-checked filters), ``format``/``format_map``
  (they reach attributes; ``|format`` is the checked printf) and ``list.index`` (its error
  quotes the value). Nothing else in the context can be called.
- A dict key wins over a dict method of the same name: ``object.items`` is the field.
- Missing names and attributes print as ``""``; using them further (``{{ a.b.c }}``) is an
  error naming the line. ``None`` prints as ``""`` too ("None" in a mail is never wanted).
- ``|safe`` exists only in HTML fields and only on literal HTML written in the template;
  values from records are always escaped. ``{% autoescape %}``, ``include``/``import``/
  ``extends``, ``self``, ``varargs``/``kwargs``, ``lipsum``, ``cycler`` and ``joiner`` are
  not available. ``trim_blocks``/``lstrip_blocks`` are on, so tags leave no blank lines.
- Not covered: memory in proportion to the *context* the caller passes (sorting 100,000
  context rows makes 100,000 sort keys); the caller decides how big the context is.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import types
import uuid
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from jinja2 import TemplateSyntaxError, nodes, pass_context
from jinja2 import filters as jf
from jinja2.compiler import CodeGenerator, Frame
from jinja2.environment import Template
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import Context, LoopContext, Macro, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, missing
from markupsafe import Markup, escape

from mailroom.lib import formatting
from mailroom.lib import formatting as fmt

__all__ = ["CompiledTemplate", "Limits", "TemplateError", "check_simple", "compile_template",
           "placeholders", "render_string"]


class TemplateError(Exception):
    """A render or syntax error, in words a user understands, pointing at the template part."""

    def __init__(self, message: str, *, template: str = "template", field: str = "body",
                 line: int | None = None) -> None:
        self.template, self.field, self.line, self.message = template, field, line, message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f", line {self.line}" if self.line else ""
        return f"Template '{self.template}', {self.field}{where}: {self.message}"


@dataclass(frozen=True)
class Limits:
    max_output: int = 1_000_000      # characters of output
    max_seconds: float = 1.0         # wall time per render
    max_string: int = 100_000        # longest string/list an expression may build
    max_iterations: int = 100_000    # loop iterations per render, all loops together


_DEFAULT_LIMITS = Limits()
_MAX_INT_BITS = 1 << 16
_SCALARS = (str, int, float, Decimal, dt.date, dt.time, dt.timedelta, uuid.UUID, type(None),
            Undefined)


class _Refused(Exception):
    """A limit or rule of the sandbox; the message is shown to the user as is."""


@dataclass(slots=True)
class _State:
    limits: Limits
    deadline: float
    locale: str
    timezone: str
    iterations: int = 0
    buffered: int = 0
    built: int = 0


_STATE: ContextVar[_State] = ContextVar("mailroom_template_render")


def _tick() -> _State:
    state = _STATE.get()
    if time.monotonic() > state.deadline:
        raise _Refused(f"the template took longer than {state.limits.max_seconds:g} s to render")
    return state


def _too_long(limit: int) -> _Refused:
    return _Refused(f"a text or list would be longer than {limit:,}")


def _charge(size: int) -> None:
    """Charge what an operation built to the render's total (3 x max_output).

    Each single string or list is bounded by ``max_string``; this bounds how many of them a
    template can keep alive at once (one per ``{% set %}`` line or loop iteration).
    """
    state = _STATE.get()
    state.built += size
    if state.built > 3 * state.limits.max_output:
        raise _Refused(f"the template builds more than {3 * state.limits.max_output:,} "
                       "characters of text and lists in total")


def _cost(item: Any) -> int:
    """What a value made by a method or filter may have allocated besides its reference."""
    if isinstance(item, str):
        return 0 if len(item) == 1 and item < "\u0100" else 50 + len(item)  # 1 char: cached
    if isinstance(item, Undefined):
        return 120  # the object and its message
    return 28 if isinstance(item, int) and not -5 <= item <= 256 else 0


def _built(result: Any, fresh: bool = False) -> Any:
    """Charge ``result``: text by length, a list 8 per item, plus its items if ``fresh``."""
    if isinstance(result, str):
        _charge(len(result))
    elif isinstance(result, list | tuple):
        _charge(8 * len(result) + (sum(map(_cost, result)) if fresh else 0))
    elif isinstance(result, int):
        _charge(result.bit_length() // 8)
    return result


# --- sizes -------------------------------------------------------------------------------

class _List(list):  # type: ignore[type-arg]
    """A list built by the template; ``_w`` is its weight (see the module docstring)."""

    __slots__ = ("_w",)


class _Dict(dict):  # type: ignore[type-arg]
    __slots__ = ("_w",)


class _Tuple(tuple):  # type: ignore[type-arg]
    _w: int


def _weight(value: Any) -> int:
    """Values reachable through ``value``, shared ones counted each time they are reachable.

    Context lists and dicts count as one: they are the caller's data, already in memory,
    and cannot hold anything the template built. Plain tuples are walked because iterating
    ``d.items()`` yields them around template-built values.
    """
    if isinstance(value, _SCALARS):
        return 1
    if isinstance(value, _List | _Dict | _Tuple):
        return value._w
    if isinstance(value, tuple):
        return 1 + sum(map(_weight, value))
    if isinstance(value, KeysView | ValuesView | ItemsView):
        return _weight(getattr(value, "mapping", None))
    if isinstance(value, list | dict | set | frozenset | range):
        return 1
    raise _Refused("lists, dictionaries and namespaces can only hold plain values, "
                   f"not {_type_name(value)} objects")


def _tag(cls: type, items: Any, weight: int | None = None) -> Any:
    limit = _tick().limits.max_string
    if weight is None:
        if isinstance(items, dict):
            weight = 1 + sum(_weight(k) + _weight(v) for k, v in items.items())
        else:
            weight = 1 + sum(map(_weight, items))
    if weight > limit + 1:
        raise _too_long(limit)
    result = cls(items)
    result._w = weight
    return _built(result)


def _inner(items: Any) -> int:
    """The weight of a sequence's elements (what copying them into a new list costs)."""
    if isinstance(items, _List | _Tuple):
        return items._w - 1
    return sum(map(_weight, items))


def _materialize(values: Iterable[Any]) -> _List:
    """A filter's lazy result as a size-checked list; its items count as freshly made."""
    limit = _tick().limits.max_string
    if hasattr(values, "__len__") and len(values) > limit:  # type: ignore[arg-type]
        raise _too_long(limit)
    items, weight, cost = _List(), 1, 0
    for item in values:  # map/select/unique do their work lazily, here
        items.append(item)
        weight += _weight(item)
        cost += 8 + _cost(item)
        if weight > limit + 1:
            raise _too_long(limit)
        if not len(items) & 1023:
            _tick()
            _charge(cost)
            cost = 0
    _charge(cost)
    items._w = weight
    return items


def _ticking(values: Iterable[Any]) -> Iterator[Any]:
    """Feeds a filter that loops internally (select, min, sort, unique), checking the clock
    and charging each item twice its cost: the filter keeps it in a list, set or sort key."""
    cost = 0
    for i, item in enumerate(values):
        cost += 16 + 2 * _cost(item)
        if not i & 1023:
            _tick()
            _charge(cost)
            cost = 0
        yield item
    _charge(cost)


def _type_name(value: Any) -> str:
    """The type as users know it: the sandbox's own list/dict/namespace classes hidden."""
    if isinstance(value, Namespace):
        return "namespace"
    for base in (list, dict, tuple):
        if isinstance(value, base):
            return base.__name__
    return type(value).__name__


def _text(value: Any, limit: int | None = None) -> str:
    """``str(value)`` that never builds more than ``limit`` characters for containers."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, _SCALARS):
        return str(value)
    limit = _tick().limits.max_string if limit is None else limit
    parts: list[str] = []
    budget = limit

    def emit(text: str) -> None:
        nonlocal budget
        budget -= len(text)
        if budget < 0:
            raise _too_long(limit)
        parts.append(text)

    def walk(item: Any, depth: int) -> None:
        if depth > 50:
            raise _Refused("values are nested too deeply to print")
        if isinstance(item, Namespace):
            emit("<Namespace ")
            walk(object.__getattribute__(item, "_Namespace__attrs"), depth + 1)
            return emit(">")
        if isinstance(item, Mapping):
            pairs: Iterable[Any] = item.items()
            emit("{")
            for i, (key, val) in enumerate(pairs):
                emit(", " if i else "")
                walk(key, depth + 1)
                emit(": ")
                walk(val, depth + 1)
            return emit("}")
        if isinstance(item, list | tuple | set | frozenset | KeysView | ValuesView | ItemsView):
            brackets = "[]" if isinstance(item, list) else "()" if isinstance(item, tuple) else "{}"
            emit(brackets[0])
            for i, val in enumerate(item):
                emit(", " if i else "")
                walk(val, depth + 1)
            return emit(("," if isinstance(item, tuple) and len(item) == 1 else "") + brackets[1])
        emit(repr(item) if isinstance(item, str) or not isinstance(item, _SCALARS)
             else str(item))

    walk(value, 0)
    return "".join(parts)


def _printf(fmt: str, args: Any) -> str:
    """``fmt % args`` after checking that widths and arguments fit in ``max_string``."""
    limit = _tick().limits.max_string
    total = len(fmt)
    keyed = isinstance(args, Mapping)
    values = list(args) if isinstance(args, tuple) else [] if keyed else [args]
    for match in _PRINTF.finditer(fmt):
        if match["conv"] == "%":
            continue
        if match["conv"] == "(":
            raise _Refused("format keys can only be simple names, as in '%(name)s'")
        if "*" in (match["width"] or "") + (match["prec"] or ""):
            raise _Refused("'*' widths are not allowed in format strings")
        for digits in (match["width"], match["prec"]):
            total += (int(digits) if len(digits) < 8 else limit) if digits else 0
        if keyed and match["key"] is not None and match["key"] in args:
            values.append(args[match["key"]])
    for value in values:
        if not isinstance(value, _SCALARS):
            raise _Refused("format only accepts text, numbers and dates")
        total += len(value) if isinstance(value, str) else 60
    if total > limit:
        raise _too_long(limit)
    return fmt % args


# Possessive and with plain keys only, so a hostile "%(%(%(..." is parsed in linear time.
_PRINTF = re.compile(r"%(?:\((?P<key>[^()%]*+)\))?[-#0 +]*+(?P<width>\*|\d++)?"
                     r"(?:\.(?P<prec>\*|\d*+))?[hlL]?(?P<conv>.)", re.S)


# --- code generation and environment -----------------------------------------------------

class _CodeGenerator(CodeGenerator):
    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.mr_buffer()")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.mr_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("), context.eval_ctx.autoescape)")

    def _wrapped(self, kind: str, node: Any, frame: Frame, visit: Any) -> None:
        self.write(f"environment.mr_{kind}(")
        visit(node, frame)
        self.write(")")

    def visit_List(self, node: nodes.List, frame: Frame) -> None:
        self._wrapped("list", node, frame, super().visit_List)

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self._wrapped("dict", node, frame, super().visit_Dict)

    def visit_Tuple(self, node: nodes.Tuple, frame: Frame) -> None:
        if node.ctx != "load":
            return super().visit_Tuple(node, frame)
        self._wrapped("tuple", node, frame, super().visit_Tuple)


class _Buffer(list):  # type: ignore[type-arg]
    """Text being produced, counted as it grows. Every 256 small pieces are joined into one
    string: 100,000 pieces of "42" would otherwise cost 5 MB of string objects."""

    __slots__ = ("_joined",)

    def __init__(self) -> None:
        super().__init__()
        self._joined = 0  # items before this index are already joined blocks

    def _count(self, size: int) -> None:
        state = _tick()
        state.buffered += size
        if state.buffered > state.limits.max_output:
            raise _Refused(f"the template builds more than {state.limits.max_output:,} "
                           "characters of text in variables, macros or blocks")

    def append(self, item: str) -> None:
        self._count(len(item))
        list.append(self, item)
        if len(self) - self._joined >= 256:
            self.join_tail()

    def extend(self, items: Iterable[str]) -> None:
        items = tuple(items)
        self._count(sum(map(len, items)))
        list.extend(self, items)
        if len(self) - self._joined >= 256:
            self.join_tail()

    def join_tail(self) -> None:
        tail = "".join(self[self._joined:])
        del self[self._joined:]
        list.append(self, tail)
        self._joined = len(self)


class _Counted:
    """A ``for`` iterable, counted against the render's iterations; keeps ``len`` so that
    ``loop.length`` needs no copy of the items."""

    __slots__ = ("_items", "_length", "_state")

    def __init__(self, iterable: Any) -> None:
        self._state = _tick()
        self._length = len(iterable) if hasattr(iterable, "__len__") else None
        self._items = iter(iterable)

    def __iter__(self) -> _Counted:
        return self

    def __len__(self) -> int:
        if self._length is None:
            raise TypeError("no length")
        return self._length

    def __next__(self) -> Any:
        item = next(self._items)
        state = self._state
        state.iterations += 1
        if state.iterations > state.limits.max_iterations:
            raise _Refused(f"loops ran more than {state.limits.max_iterations:,} times in total")
        if not state.iterations & 31:
            _tick()
        return item


class _Undefined(Undefined):
    """Like Jinja's Undefined, but keeps only a short message, never the object itself."""

    __slots__ = ()

    def __init__(self, hint: str | None = None, obj: Any = missing, name: Any = None,
                 exc: type[Exception] = UndefinedError) -> None:
        if hint is None:
            # Only text and numbers are shown: a repr of a big list would be built in full.
            shown = repr(name)[:80] if isinstance(name, str | int) else f"a {_type_name(name)}"
            if obj is missing:
                hint = f"{shown} is undefined"
            elif isinstance(name, str):
                hint = f"'{_type_name(obj)} object' has no attribute {shown}"
            else:
                hint = f"{_type_name(obj)} object has no element {shown}"
        super().__init__(hint, missing, None, exc)


class _CheckedNamespace(Namespace):
    """``namespace()``: the one mutable object; it may only hold plain, size-checked values."""

    def __setitem__(self, name: str, value: Any) -> None:
        limit = _tick().limits.max_string
        if _weight(value) > limit:
            raise _too_long(limit)
        Namespace.__setitem__(self, name, value)


def _range(*args: int) -> range:
    result = range(*args)
    limit = _tick().limits.max_iterations
    if len(result) > limit:
        raise _Refused(f"range() is limited to {limit:,} numbers")
    return result


def _dict(*args: Any, **kwargs: Any) -> _Dict:
    return _tag(_Dict, dict(*args, **kwargs))  # type: ignore[no-any-return]


def _namespace(*args: Any, **kwargs: Any) -> Namespace:
    result = _CheckedNamespace()
    for key, value in dict(*args, **kwargs).items():
        result[key] = value
    return result


_GLOBALS = {"range": _range, "dict": _dict, "namespace": _namespace}
_TEXT_METHODS = frozenset(
    "upper lower title capitalize casefold swapcase strip lstrip rstrip startswith endswith "
    "split rsplit splitlines partition rpartition find rfind count isalpha isdigit isnumeric "
    "isdecimal isalnum isspace isupper islower istitle removeprefix removesuffix striptags "
    "unescape".split())
_METHODS: tuple[tuple[type | tuple[type, ...], frozenset[str]], ...] = (
    (str, _TEXT_METHODS),
    (Mapping, frozenset({"keys", "values", "items", "get"})),
    ((list, tuple), frozenset({"count"})),  # not index: its error message is a full repr
    ((dt.date, dt.time), frozenset({"isoformat", "weekday", "isoweekday", "date", "time"})),
    (LoopContext, frozenset({"cycle", "changed"})),
)


def _method_allowed(owner: Any, name: str) -> bool:
    for kinds, names in _METHODS:
        if isinstance(owner, kinds):
            return name in names
    return False


class _Environment(ImmutableSandboxedEnvironment):
    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, html: bool) -> None:
        super().__init__(autoescape=html, undefined=_Undefined, finalize=_finalize,
                         optimized=False, cache_size=0, auto_reload=False,
                         trim_blocks=True, lstrip_blocks=True)
        self.globals.clear()
        self.globals.update(_GLOBALS)
        self.filters = _filters(html)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        return not callable(value) or _method_allowed(obj, attr)

    def is_safe_callable(self, obj: Any) -> bool:
        if isinstance(obj, Macro | LoopContext | Undefined) or obj is self.mr_iter or any(
                obj is f for f in _GLOBALS.values()):
            return True
        owner = getattr(obj, "__self__", None)
        return isinstance(obj, types.BuiltinMethodType | types.MethodType) and \
            owner is not None and _method_allowed(owner, obj.__name__)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise SecurityError(f"'{attribute}' of '{_type_name(obj)}' objects is not available")

    def wrap_str_format(self, value: Any) -> None:
        return None  # str.format/format_map are not on the method allowlist

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        result = super().getitem(obj, argument)
        if isinstance(argument, slice) and isinstance(result, list | tuple):
            return _tag(_List if isinstance(result, list) else _Tuple, result)
        return result

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        if not __self.is_safe_callable(__obj):
            raise _Refused(f"'{_type_name(__obj)}' objects can't be called in templates")
        if isinstance(__obj, LoopContext) and args:
            args = (__self.mr_iter(args[0]), *args[1:])
        return _built(__context.call(__obj, *args, **kwargs), fresh=True)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        limit = _tick().limits.max_string
        sequences = (str, list, tuple)
        if operator == "*":
            if isinstance(left, int) and isinstance(right, sequences):
                left, right = right, left
            if isinstance(left, sequences) and isinstance(right, int):
                count = max(right, 0)
                if len(left) * count > limit:
                    raise _too_long(limit)
                if isinstance(left, list):
                    weight = 1 + _inner(left) * count
                    if weight > limit + 1:
                        raise _too_long(limit)
                    result = _List(left)
                    result *= count
                    result._w = weight
                    return _built(result)
                if isinstance(left, tuple):
                    return _tag(_Tuple, left * count, 1 + _inner(left) * count)
            elif isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > _MAX_INT_BITS:
                    raise _Refused("that number is too large")
        elif operator == "+" and isinstance(left, sequences) and isinstance(right, sequences):
            if len(left) + len(right) > limit:
                raise _too_long(limit)
            if not isinstance(left, str):
                joined = left + right
                return _tag(_List if isinstance(joined, list) else _Tuple, joined,
                            1 + _inner(left) + _inner(right))
        elif operator == "**" and isinstance(left, int) and isinstance(right, int):
            if right > 0 and abs(left) > 1 and left.bit_length() * right > _MAX_INT_BITS:
                raise _Refused("that number is too large")
        elif operator == "%" and isinstance(left, str):
            return _built(_printf(left, right))
        return _built(self.binop_table[operator](left, right))

    @staticmethod
    def mr_buffer() -> _Buffer:
        return _Buffer()

    @staticmethod
    def mr_iter(iterable: Any) -> _Counted:
        return _Counted(iterable)

    @staticmethod
    def mr_concat(parts: tuple[Any, ...], autoescape: bool) -> str:
        limit = _tick().limits.max_string
        texts, total = [], 0
        for part in parts:
            text = _text(part, limit - total)
            total += len(text)
            if total > limit:
                raise _too_long(limit)
            texts.append(text)
        if autoescape and any(hasattr(text, "__html__") for text in texts):
            return _built(Markup("").join(texts))
        return _built("".join(texts))

    @staticmethod
    def mr_list(items: list[Any]) -> _List:
        return _tag(_List, items)  # type: ignore[no-any-return]

    @staticmethod
    def mr_tuple(items: tuple[Any, ...]) -> _Tuple:
        return _tag(_Tuple, items)  # type: ignore[no-any-return]

    @staticmethod
    def mr_dict(items: dict[Any, Any]) -> _Dict:
        return _tag(_Dict, items)  # type: ignore[no-any-return]


# --- filters -----------------------------------------------------------------------------

@pass_context
def _finalize(context: Context, value: Any) -> Any:
    _tick()
    return value if isinstance(value, str) else _text(value)


def _text_filter(func: Any) -> Any:
    """A built-in text filter whose input is first turned into bounded text."""

    @pass_context
    def run(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        return _built(func(_text(value, _tick().limits.max_string), *args, **kwargs))

    return run


def _value_filter(func: Any, pass_arg: str = "", listing: bool = False, loops: bool = False,
                  names: int = 0) -> Any:
    """A built-in filter on any value; ``listing`` ones return a size-checked list and, like
    ``loops`` ones, get their input through a clock-checking iterator. The first ``names``
    arguments name a filter, test or attribute: Jinja puts them in its error messages."""

    @pass_context
    def run(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
        limit = _tick().limits.max_string
        if not all(isinstance(name, str) for name in args[:names]):
            raise _Refused("filter, test and attribute names must be text")
        if listing and hasattr(value, "__len__") and len(value) > limit:
            raise _too_long(limit)
        if func is jf.do_reverse and isinstance(value, str):
            return _built(value[::-1])
        if listing or loops:
            value = _ticking(value)
        first = {"env": (context.environment,), "ctx": (context,)}.get(pass_arg, ())
        result = func(*first, value, *args, **kwargs)
        return _materialize(result) if listing and not isinstance(result, str) else result

    return run


def _sort(environment: Any, value: Iterable[Any], reverse: bool = False,
          case_sensitive: bool = False, attribute: Any = None) -> _List:
    """Jinja's sort, in place on one checked copy, the clock checked while keys are made."""
    several = isinstance(attribute, str) and "," in attribute
    getter = (jf.make_multi_attrgetter if several else jf.make_attrgetter)(
        environment, attribute, postprocess=None if case_sensitive else jf.ignore_case)
    calls = cost = 0

    def key(item: Any) -> Any:  # sort keys are new objects (lower-cased text, lists)
        nonlocal calls, cost
        calls += 1
        result = getter(item)
        cost += 16 + (50 + len(result) if isinstance(result, str) else 56)
        if not calls & 1023:
            _tick()
            _charge(cost)
            cost = 0
        return result

    items = _materialize(value)
    items.sort(key=key, reverse=reverse)
    return items


def _checked(size: Any) -> Any:
    """A text filter that is refused when ``size(text, *args)`` exceeds ``max_string``."""

    def wrap(func: Any) -> Any:
        @pass_context
        def run(context: Context, value: Any, *args: Any, **kwargs: Any) -> Any:
            limit = _tick().limits.max_string
            text = _text(value, limit)
            if size(text, *args, **kwargs) > limit:
                raise _too_long(limit)
            return _built(func(context, text, *args, **kwargs))

        return run

    return wrap


def _width(value: Any) -> int:
    return len(value) if isinstance(value, str) else int(value)


@_checked(lambda s, width=80: _width(width))
def _center(context: Context, text: str, width: int = 80) -> str:
    return jf.do_center(text, width)


@_checked(lambda s, width=4, *a, **k: len(s) + (s.count("\n") + 1) * _width(width))
def _indent(context: Context, text: str, *args: Any, **kwargs: Any) -> str:
    return jf.do_indent(text, *args, **kwargs)


@_checked(lambda s, width=79, long=True, wrapstring=None, *a, **k:
          len(s) + (len(s) // max(int(width), 1) + s.count("\n") + 1) * len(wrapstring or "\n"))
def _wordwrap(context: Context, text: str, *args: Any, **kwargs: Any) -> str:
    return jf.do_wordwrap(context.environment, text, *args, **kwargs)


@_checked(lambda s, length=255, killwords=False, end="...", *a, **k:
          min(len(s), int(length)) + len(end))
def _truncate(context: Context, text: str, *args: Any, **kwargs: Any) -> str:
    return jf.do_truncate(context.environment, text, *args, **kwargs)


@_checked(lambda s, old, new, count=None:
          len(s) + (len(s) + 1 if old == "" else s.count(_text(old))) * len(_text(new)))
def _replace(context: Context, text: str, old: Any, new: Any, count: int | None = None) -> str:
    return jf.do_replace(context.eval_ctx, text, _text(old), _text(new), count)


@pass_context
def _format(context: Context, value: Any, *args: Any, **kwargs: Any) -> str:
    if args and kwargs:
        raise _Refused("format takes either positional or keyword arguments, not both")
    return _built(_printf(_text(value), kwargs or args))


@pass_context
def _join(context: Context, value: Iterable[Any], d: str = "", attribute: Any = None) -> str:
    limit = _tick().limits.max_string
    if attribute is not None:
        value = map(jf.make_attrgetter(context.environment, attribute), value)
    texts, total, sep = [], 0, _text(d)
    for item in _ticking(value):
        texts.append(_text(item, limit))
        total += len(texts[-1]) + len(sep)
        if total > limit:
            raise _too_long(limit)
    if context.eval_ctx.autoescape and any(hasattr(t, "__html__") for t in texts):
        return _built(Markup(escape(sep)).join(texts))
    return _built(sep.join(texts))


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise _Refused("sum only adds numbers")
    return value


@pass_context
def _sum(context: Context, value: Iterable[Any], attribute: Any = None, start: Any = 0) -> Any:
    if attribute is not None:
        value = map(jf.make_attrgetter(context.environment, attribute), value)
    total = _number(start)
    for item in value:
        _tick()
        total = _built(total + _number(item))
    return total


@pass_context
def _round(context: Context, value: Any, precision: int = 0, method: str = "common") -> Any:
    if not -100 <= int(precision) <= 100:
        raise _Refused("round() precision must be between -100 and 100")
    return jf.do_round(value, int(precision), method)


def _locale_filter(func: Any) -> Any:
    """Formatting helpers read the render's locale and time zone from the render state."""

    @pass_context
    def run(context: Context, value: Any, *args: Any, **kwargs: Any) -> str:
        state = _tick()
        return "" if isinstance(value, Undefined) else func(value, state, *args, **kwargs)

    return run


def _filters(html: bool) -> dict[str, Any]:
    escape_filter = _text_filter(escape)
    result = {
        "default": jf.do_default, "d": jf.do_default,
        "e": escape_filter, "escape": escape_filter, "string": _text_filter(lambda s: s),
        "upper": _text_filter(jf.do_upper), "lower": _text_filter(jf.do_lower),
        "title": _text_filter(jf.do_title), "capitalize": _text_filter(jf.do_capitalize),
        "trim": _text_filter(jf.do_trim), "striptags": _text_filter(jf.do_striptags),
        "wordcount": _text_filter(jf.do_wordcount), "urlencode": _text_filter(jf.do_urlencode),
        "length": _value_filter(len), "count": _value_filter(len),
        "first": _value_filter(jf.sync_do_first, "env"),
        "last": _value_filter(jf.do_last, "env"),
        "min": _value_filter(jf.do_min, "env", loops=True),
        "max": _value_filter(jf.do_max, "env", loops=True),
        "int": _value_filter(jf.do_int), "float": _value_filter(jf.do_float),
        "abs": _value_filter(abs), "round": _round, "sum": _sum, "join": _join,
        "list": _value_filter(lambda value: value, listing=True),
        "sort": _value_filter(_sort, "env"),
        "unique": _value_filter(jf.sync_do_unique, "env", listing=True),
        "reverse": _value_filter(jf.do_reverse, listing=True),
        "map": _value_filter(jf.sync_do_map, "ctx", listing=True, names=1),
        "select": _value_filter(jf.sync_do_select, "ctx", listing=True, names=1),
        "reject": _value_filter(jf.sync_do_reject, "ctx", listing=True, names=1),
        "selectattr": _value_filter(jf.sync_do_selectattr, "ctx", listing=True, names=2),
        "rejectattr": _value_filter(jf.sync_do_rejectattr, "ctx", listing=True, names=2),
        "replace": _replace, "truncate": _truncate, "center": _center, "indent": _indent,
        "wordwrap": _wordwrap, "format": _format,
        "money": _locale_filter(
            lambda v, st, currency="": fmt.format_money(v, currency, st.locale)),
        "number": _locale_filter(
            lambda v, st, digits=None: fmt.format_number(v, st.locale, digits)),
        "percent": _locale_filter(
            lambda v, st, digits=None: fmt.format_percent(v, st.locale, digits)),
        "date": _locale_filter(lambda v, st, format="medium": fmt.format_date(
            v, st.locale, format, timezone=st.timezone)),
        "datetime": _locale_filter(lambda v, st, format="medium": fmt.format_datetime(
            v, st.locale, st.timezone, format)),
        "time": _locale_filter(lambda v, st, format="medium": fmt.format_time(
            v, st.locale, st.timezone, format)),
    }
    if html:
        result["safe"] = jf.do_mark_safe
    return result


_ENVIRONMENTS = {True: _Environment(html=True), False: _Environment(html=False)}


# --- compiling and rendering ------------------------------------------------------------

class _CompileProblem(Exception):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message, self.line = message, line


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
    return CompiledTemplate(template, name=name, field=field, html=html)


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


class CompiledTemplate:
    """A compiled template; render it as often as needed, from any thread."""

    __slots__ = ("_template", "field", "html", "name")

    def __init__(self, template: Template, *, name: str, field: str, html: bool) -> None:
        self._template, self.name, self.field, self.html = template, name, field, html

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
        except Exception as exc:
            raise TemplateError(_message(exc), template=self.name, field=self.field,
                                line=_line(exc)) from exc
        finally:
            if chunks is not None:
                chunks.close()  # type: ignore[attr-defined]
            _STATE.reset(token)


def render_string(source: str, context: Mapping[str, Any], *, name: str = "template",
                  field: str = "body", html: bool = True, locale: str = "en_US",
                  timezone: str = "UTC", limits: Limits = _DEFAULT_LIMITS) -> str:
    """Compile (cached) and render in one call."""
    return compile_template(source, name=name, field=field, html=html).render(
        context, locale=locale, timezone=timezone, limits=limits)


# --- inspecting sources for the editor UI ------------------------------------------------

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
_TAG_NAMES = {nodes.Assign: "set", nodes.AssignBlock: "set", nodes.CallBlock: "call",
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

"""The Jinja environment: generated code that counts, allowed methods, the render's globals.

Code generation routes every output buffer, ``~`` concatenation, list, dict and tuple literal
and every ``for`` iterable through the ``mr_*`` hooks below, so all of them are charged to the
render's budget; the environment decides which attributes and callables a template reaches.
"""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any, cast

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError, TemplateRuntimeError, UndefinedError
from jinja2.runtime import Context, LoopContext, Macro, StrictUndefined, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, missing
from markupsafe import Markup

from mailroom.lib.sandbox.budget import (
    _MAX_INT_BITS,
    _built,
    _Dict,
    _inner,
    _List,
    _printf,
    _tag,
    _text,
    _tick,
    _too_long,
    _Tuple,
    _type_name,
    _weight,
)
from mailroom.lib.sandbox.errors import _Refused
from mailroom.lib.sandbox.filters import _filters, _finalize


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


class _Buffer(list[str]):
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


class UndefinedField(UndefinedError):
    """A name or attribute the context does not have; ``name`` is the missing part."""

    def __init__(self, message: str, name: str | None) -> None:
        super().__init__(message)
        self.name = name


class _Undefined(StrictUndefined):
    """Jinja's StrictUndefined (printing, testing or comparing a missing field is an error;
    ``is defined`` and ``|default`` still work), keeping only a short message and the
    missing name, never the object itself."""

    __slots__ = ()

    def __init__(self, hint: str | None = None, obj: Any = missing, name: Any = None,
                 exc: type[TemplateRuntimeError] = UndefinedError) -> None:
        if hint is None:
            # Only text and numbers are shown: a repr of a big list would be built in full.
            shown = repr(name)[:80] if isinstance(name, str | int) else f"a {_type_name(name)}"
            if obj is missing:
                hint = f"{shown} is undefined"
            elif isinstance(name, str):
                hint = f"'{_type_name(obj)} object' has no attribute {shown}"
            else:
                hint = f"{_type_name(obj)} object has no element {shown}"
        short = name if isinstance(name, str) and len(name) <= 80 else None
        # Jinja raises ``self._undefined_exception(message)``: the partial adds the name
        raising = partial(UndefinedField, name=short)
        super().__init__(hint, missing, short, cast(type[TemplateRuntimeError], raising))


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
    return _tag(_Dict, dict(*args, **kwargs))


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
        if obj is None:  # an empty relation (no customer): its fields are empty too
            return None
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
            # other mixes (text + list, list + tuple) fail below as they do in Python
            if isinstance(left, list) and isinstance(right, list):
                return _tag(_List, left + right, 1 + _inner(left) + _inner(right))
            if isinstance(left, tuple) and isinstance(right, tuple):
                return _tag(_Tuple, left + right, 1 + _inner(left) + _inner(right))
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
        return _tag(_List, items)

    @staticmethod
    def mr_tuple(items: tuple[Any, ...]) -> _Tuple:
        return _tag(_Tuple, items)

    @staticmethod
    def mr_dict(items: dict[Any, Any]) -> _Dict:
        return _tag(_Dict, items)


_ENVIRONMENTS = {True: _Environment(html=True), False: _Environment(html=False)}

"""The budget of one render (see the package docstring): time, iterations and what is built.

The render's :class:`_State` lives in a ``ContextVar`` (renders run concurrently in threads).
Every operation that can make something big asks here first: ``_tick`` checks the clock,
``_charge``/``_built`` count what was built, the ``_List``/``_Dict``/``_Tuple`` types carry
the weight of what the template made, and ``_text``/``_printf`` print within ``max_string``.
"""

from __future__ import annotations

import datetime as dt
import re
import time
import uuid
from collections.abc import ItemsView, Iterable, Iterator, KeysView, Mapping, Sized, ValuesView
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from jinja2.runtime import Undefined
from jinja2.utils import Namespace

from mailroom.lib.sandbox.errors import _Refused

__all__ = ["Limits"]


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

class _List(list[Any]):
    """A list built by the template; ``_w`` is its weight (see the package docstring)."""

    __slots__ = ("_w",)
    _w: int


class _Dict(dict[Any, Any]):
    __slots__ = ("_w",)
    _w: int


class _Tuple(tuple[Any, ...]):
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
    if isinstance(values, Sized) and len(values) > limit:
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

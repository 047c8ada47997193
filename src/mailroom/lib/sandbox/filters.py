"""The filters a template may use: Jinja's own, fed bounded input and size-checked, and the
locale formatters (money, number, percent, date, datetime, time) from ``lib.formatting``."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Literal

from jinja2 import filters as jf
from jinja2 import pass_context
from jinja2.runtime import Context, Undefined
from markupsafe import Markup, escape

from mailroom.lib import formatting as fmt
from mailroom.lib.sandbox.budget import (
    _built,
    _charge,
    _List,
    _materialize,
    _printf,
    _text,
    _tick,
    _ticking,
    _too_long,
)
from mailroom.lib.sandbox.errors import _Refused


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
def _round(context: Context, value: Any, precision: int = 0,
           method: Literal["common", "ceil", "floor"] = "common") -> Any:
    if not -100 <= int(precision) <= 100:
        raise _Refused("round() precision must be between -100 and 100")
    return jf.do_round(value, int(precision), method)


def _locale_filter(func: Any) -> Any:
    """Formatting helpers read the render's locale and time zone from the render state."""

    @pass_context
    def run(context: Context, value: Any, *args: Any, **kwargs: Any) -> str:
        state = _tick()
        if isinstance(value, Undefined):  # strict: a missing field is an error, not ""
            value._fail_with_undefined_error()
        return func(value, state, *args, **kwargs)

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

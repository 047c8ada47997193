"""A query built with the ORM once and run again with other values.

Django compiles a queryset anew every time it runs: for the router's small per-message reads
(does this record have a follower from the team?) the compiling cost ten times what the
database spent answering. `Prepared(build)` calls `build` with stand-in values once per
database and kind of values, keeps the SQL it compiles to and where each stand-in went, and
each `rows(*values)` binds the real values there and runs it, the ORM's converters applied
to the rows as the queryset would. A query the stand-ins cannot be found in (a lookup that
rewrites its value: iexact, contains, a list for `__in`) is run through the ORM every time,
so the answer is always the queryset's own. `build` must depend on its arguments only:
any other value in it (a date computed from now) is fixed at the first call.
tests/core/test_saving.py checks both paths against the queryset.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import connections, models

_INT_BASE = 7_340_032_000_000  # stand-ins no real id or count reaches


class Prepared:
    def __init__(self, build: Callable[..., models.QuerySet]) -> None:
        self.build = build
        self._plans: dict[tuple, tuple | None] = {}

    def rows(self, *values) -> list[tuple]:
        """The rows of `build(*values)` (a values_list queryset) as tuples."""
        kinds = tuple(type(value) for value in values)
        plan = None
        if all(kind in (int, str) for kind in kinds):
            if kinds not in self._plans:
                self._plans[kinds] = self._plan(kinds)
            plan = self._plans[kinds]
        if plan is None:  # the ORM, every time
            return [row if isinstance(row, tuple) else (row,) for row in self.build(*values)]
        using, sql, slots, compiler, converters = plan
        params = [fixed if slot < 0 else values[slot] if fixed is None else fixed(values[slot])
                  for slot, fixed in slots]
        with connections[using].cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        if converters:
            rows = compiler.apply_converters(rows, converters)
        return [tuple(row) for row in rows]

    def exists(self, *values) -> bool:
        return bool(self.rows(*values))

    def _plan(self, kinds: tuple):
        stand_ins = tuple(_INT_BASE + index if kind is int else f"\x1fStand-in %_\\ {index}\x1f"
                          for index, kind in enumerate(kinds))
        return _plan(self.build(*stand_ins), stand_ins)


def _plan(queryset: models.QuerySet, stand_ins: tuple):
    using = queryset.db
    compiler = queryset.query.get_compiler(using=using)
    try:
        sql, params = compiler.as_sql()
    except Exception:  # EmptyResultSet and the like: the ORM's own path says what it is
        return None
    slots, found = [], set()  # (index of the value, its wrapper) or (-1, a fixed param)
    for param in params:
        index = next((i for i, stand_in in enumerate(stand_ins)
                      if isinstance(param, type(stand_in)) and not isinstance(param, bool)
                      and param == stand_in), None)
        if index is not None:  # psycopg's Int8 and the like wrap a value to say its type
            slots.append((index, None if type(param) is type(stand_ins[index])
                          else type(param)))
            found.add(index)
        elif isinstance(param, str) and "\x1f" in param or (
                isinstance(param, int) and not isinstance(param, bool)
                and param >= _INT_BASE):
            return None  # a stand-in rewritten by its lookup: not a plain binding
        else:
            slots.append((-1, param))
    if found != set(range(len(stand_ins))):
        return None  # a value that did not reach the SQL as it was given
    fields = [column[0] for column in compiler.select[:compiler.col_count]]
    converters = compiler.get_converters(fields)
    return using, sql, slots, compiler, converters

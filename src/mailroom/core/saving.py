"""`Model.save()` for the hot paths, with the statement built once per model.

The router writes four to six rows per message. Django builds each INSERT and UPDATE anew:
it resolves the fields, quotes every column and compiles the query, which cost the router
more than a third of its time on a message, many times what the database spent on the
statement. These functions do what `save()` does for the plain cases and keep the SQL:

- `insert(obj)`: a new row. The `pre_save` signal, each field's `pre_save` (auto_now_add
  and the like), its `get_db_prep_save` (so JSON, time zones and encrypted fields are stored
  exactly as `save()` stores them), one INSERT returning the primary key, `post_save` with
  created=True, and the instance marked as saved.
- `insert_from_save(obj)`: the same, from inside a model's own save() once its rules ran
  (Numbered: the reference number taken); False when it is not a plain case.
- `update(obj, fields)`: `obj.save(update_fields=fields)` the same way, DatabaseError when
  no row was updated.
- `insert_many(objs, ignore_conflicts=…)`: `bulk_create` for many rows of one model in one
  executemany (the intake mover's 500 rows a turn; bulk_create assembled its SQL row by
  row, about half of the mover's time). Like bulk_create: no signals, the primary keys not
  read back.

Whatever is not a plain case goes to `obj.save()` itself: a model that overrides save() (its
rules run there), multi-table inheritance, order_with_respect_to, fields the database fills
(db_default, generated), an expression as a value, a primary key set by the caller. A
failure marks the enclosing atomic block for rollback, as `save()` does.
tests/core/test_saving.py proves the rows equal to those of `save()` on both databases.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import DatabaseError, connections, models, router, transaction
from django.db.models import signals
from django.db.models.constants import OnConflict

_INSERTS: dict[tuple, tuple | None] = {}
_UPDATES: dict[tuple[type, str, tuple[str, ...]], tuple[str, list] | None] = {}


def insert(obj: models.Model, *, using: str | None = None) -> models.Model:
    """Save the new `obj` as `obj.save()` would (see the module docstring)."""
    model = type(obj)
    using = using or router.db_for_write(model, instance=obj)
    if not _insert_row(obj, using, _insert_plan(model, using)):
        obj.save(using=using)
    return obj


def insert_from_save(obj: models.Model, *, using: str | None = None) -> bool:
    """For a model's own save(), once its own rules ran (a reference number taken): insert
    the new row as Model.save() would and say True; False when this is not a plain case,
    and the caller calls super().save() itself."""
    model = type(obj)
    using = using or router.db_for_write(model, instance=obj)
    return _insert_row(obj, using, _insert_plan(model, using, own_save=True))


def _insert_row(obj: models.Model, using: str, plan) -> bool:
    if plan is None or obj.pk is not None or not obj._state.adding:
        return False
    sql, fields, returning = plan
    obj._prepare_related_fields_for_save(operation_name="save")
    meta = obj._meta
    signals.pre_save.send(sender=meta.model, instance=obj, raw=False, using=using,
                          update_fields=None)
    connection = connections[using]
    values = _values(obj, fields, True, connection)
    if values is None:  # F(), Now(), a subquery: Django's job (its pre_save runs once more)
        return False
    with transaction.mark_for_rollback_on_error(using), connection.cursor() as cursor:
        cursor.execute(sql, values)
        pk = cursor.fetchone()[0] if returning else connection.ops.last_insert_id(
            cursor, meta.db_table, meta.pk.column)
    setattr(obj, meta.pk.attname, pk)
    obj._state.db = using
    obj._state.adding = False
    signals.post_save.send(sender=meta.model, instance=obj, created=True,
                           update_fields=None, raw=False, using=using)
    return True


def update(obj: models.Model, fields: Iterable[str], *, using: str | None = None
           ) -> models.Model:
    """`obj.save(update_fields=fields)`, as save() does it (see the module docstring)."""
    model = type(obj)
    names = tuple(fields)
    using = using or obj._state.db or router.db_for_write(model, instance=obj)
    plan = _update_plan(model, using, names)
    if plan is None or obj.pk is None:
        obj.save(using=using, update_fields=names)
        return obj
    sql, targets = plan
    meta = obj._meta
    update_fields = frozenset(names)
    signals.pre_save.send(sender=meta.model, instance=obj, raw=False, using=using,
                          update_fields=update_fields)
    connection = connections[using]
    values = _values(obj, targets, False, connection)
    if values is None:
        obj.save(using=using, update_fields=names)
        return obj
    values.append(meta.pk.get_db_prep_value(obj.pk, connection))
    with transaction.mark_for_rollback_on_error(using), connection.cursor() as cursor:
        cursor.execute(sql, values)
        updated = cursor.rowcount
    if updated < 1:
        raise DatabaseError("Save with update_fields did not affect any rows.")
    obj._state.db = using
    obj._state.adding = False
    signals.post_save.send(sender=meta.model, instance=obj, created=False,
                           update_fields=update_fields, raw=False, using=using)
    return obj


def insert_many(objs: list[models.Model], *, ignore_conflicts: bool = False,
                using: str | None = None) -> None:
    """`Model.objects.bulk_create(objs, ignore_conflicts=…)`, the statement built once."""
    if not objs:
        return
    model = type(objs[0])
    using = using or router.db_for_write(model)
    plan = _many_plan(model, using, ignore_conflicts)
    rows = None
    if plan is not None and all(type(o) is model and o.pk is None for o in objs):
        sql, fields = plan
        connection = connections[using]
        rows = []
        for obj in objs:
            obj._prepare_related_fields_for_save(operation_name="bulk_create")
            values = _values(obj, fields, True, connection)
            if values is None:
                rows = None
                break
            rows.append(values)
    if rows is None:  # an expression, a preset key, a model that is not plain: Django's job
        model._default_manager.using(using).bulk_create(objs, ignore_conflicts=ignore_conflicts)
        return
    with transaction.mark_for_rollback_on_error(using), \
            connections[using].cursor() as cursor:
        if len(rows) == 1:  # psycopg runs an executemany in a pipeline: a cost for one row
            cursor.execute(sql, rows[0])
        else:
            cursor.executemany(sql, rows)
    for obj in objs:
        obj._state.db = using
        obj._state.adding = False


def _many_plan(model: type[models.Model], using: str, ignore_conflicts: bool):
    key = (model, using, "many", ignore_conflicts)
    if key not in _INSERTS:
        meta = model._meta
        plan = None
        if _plain(model) and meta.auto_field is not None and meta.pk is meta.auto_field:
            connection = connections[using]
            quote = connection.ops.quote_name
            fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field]
            conflict = OnConflict.IGNORE if ignore_conflicts else None
            sql = (f"{connection.ops.insert_statement(on_conflict=conflict)} "
                   f"{quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
                   f"VALUES ({', '.join(['%s'] * len(fields))})")
            suffix = connection.ops.on_conflict_suffix_sql(fields, conflict, None, None)
            plan = (f"{sql} {suffix}".rstrip(), fields)
        _INSERTS[key] = plan
    return _INSERTS[key]


def _values(obj: models.Model, fields: list, add: bool, connection) -> list | None:
    """Each field's value as save() prepares it; None when one is an expression."""
    values = []
    for field in fields:
        value = field.pre_save(obj, add)
        if hasattr(value, "resolve_expression"):
            return None
        if hasattr(value, "prepare_database_save"):  # a row given for a foreign key
            value = value.prepare_database_save(field)
        values.append(field.get_db_prep_save(value, connection))
    return values


def _plain(model: type[models.Model], own_save: bool = False) -> bool:
    """A model whose rows save() writes with one statement; `own_save`: its own save() ran
    already (insert_from_save), only Django's part is left."""
    meta = model._meta
    return ((own_save or model.save is models.Model.save)
            and model.save_base is models.Model.save_base
            and not meta.parents and not meta.order_with_respect_to and not meta.proxy
            and not meta.auto_created
            and not any(getattr(f, "generated", False) or f.has_db_default()
                        for f in meta.local_concrete_fields))


def _insert_plan(model: type[models.Model], using: str, own_save: bool = False):
    key = (model, using, own_save)
    if key not in _INSERTS:
        meta = model._meta
        plan = None
        if _plain(model, own_save) and meta.auto_field is not None and meta.pk is meta.auto_field \
                and list(meta.db_returning_fields) == [meta.pk]:
            connection = connections[using]
            quote = connection.ops.quote_name
            fields = [f for f in meta.local_concrete_fields if f is not meta.auto_field]
            returning = connection.features.can_return_columns_from_insert
            sql = (f"INSERT INTO {quote(meta.db_table)} "
                   f"({', '.join(quote(f.column) for f in fields)}) "
                   f"VALUES ({', '.join(['%s'] * len(fields))})")
            if returning:
                sql += f" RETURNING {quote(meta.db_table)}.{quote(meta.pk.column)}"
            plan = (sql, fields, returning)
        _INSERTS[key] = plan
    return _INSERTS[key]


def _update_plan(model: type[models.Model], using: str, names: tuple[str, ...]):
    key = (model, using, names)
    if key not in _UPDATES:
        meta = model._meta
        plan = None
        by_name = {}
        for field in meta.local_concrete_fields:
            by_name[field.name] = by_name[field.attname] = field
        targets = [by_name.get(name) for name in names]
        if _plain(model) and names and all(f is not None and not f.primary_key
                                           for f in targets):
            quote = connections[using].ops.quote_name
            sets = ", ".join(f"{quote(f.column)} = %s" for f in targets)
            plan = (f"UPDATE {quote(meta.db_table)} SET {sets} "
                    f"WHERE {quote(meta.db_table)}.{quote(meta.pk.column)} = %s", targets)
        _UPDATES[key] = plan
    return _UPDATES[key]

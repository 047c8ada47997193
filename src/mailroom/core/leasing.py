"""One row leased to one worker: the claim every "one job at a time" worker step makes.

`claim_one(due, order, **changes)`: when `due()` (a queryset of rows free to take: due and
with no live lease) has a row, take the first in `order` — `SELECT … FOR UPDATE SKIP LOCKED`
on PostgreSQL, the immediate transaction on SQLite — and write `changes` (the lease owner,
its expiry, the state) with a conditional UPDATE that re-checks `due()`, so two workers
never both win a row; `then(id)` runs in the same transaction (a first start time, say).
Idle polls take no write lock. Returns the row's id, or None.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection, models, transaction


def claim_one(due: Callable[[], models.QuerySet], order: tuple[str, ...], *,
              then: Callable[[int], object] | None = None, **changes) -> int | None:
    if not due().exists():
        return None
    with transaction.atomic():
        candidates = due()
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        row_id = candidates.order_by(*order).values_list("id", flat=True).first()
        if row_id is None or not due().filter(pk=row_id).update(**changes):
            return None
        if then is not None:
            then(row_id)
    return row_id

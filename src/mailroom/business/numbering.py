"""Per-company reference numbers ("HD-00042", "S00012", "INV/2026/00001").

The number is taken when the row is first saved, whoever saves it (a service, the mail router,
the API), so no path can create a record without its reference. Numbering is serialized per
company by locking the company row (FOR NO KEY UPDATE, so rows that merely refer to the company
are not held up): two workers on PostgreSQL cannot take the same number, and SQLite's single
writer already serializes it. A unique constraint per model is the backstop.
"""

from __future__ import annotations

from django.db import models, router, transaction

from mailroom.core import contention, saving
from mailroom.core.models import Company
from mailroom.core.prepared import Prepared


class Numbered(models.Model):
    """Abstract: a `ref` formatted from a per-company (or per-company-and-year) counter."""

    number = models.PositiveIntegerField(null=True, blank=True, editable=False)
    ref = models.CharField("reference", max_length=32, blank=True, editable=False)

    ref_format = "{number:05d}"

    class Meta:
        abstract = True

    def numbering_scope(self) -> dict:
        """Rows sharing one counter. Models numbering per year narrow this further."""
        return {"company_id": self.company_id}

    def format_ref(self, number: int) -> str:
        return self.ref_format.format(number=number)

    def validate_constraints(self, exclude=None) -> None:
        if not self.ref:  # taken when saved, under the numbering lock: nothing to compare yet
            exclude = set(exclude or ()) | {"ref", "number"}
        super().validate_constraints(exclude=exclude)

    def save(self, *args, **kwargs) -> None:
        if self.ref or self.company_id is None:
            super().save(*args, **kwargs)
            return
        using = kwargs.get("using") or router.db_for_write(type(self), instance=self)
        # no savepoint when nested (save_record, the router): a failure rolls back with the
        # caller's, and the number is given back below
        with transaction.atomic(using=using, savepoint=False):
            # FOR NO KEY UPDATE (PostgreSQL): numberings of the company wait for each other,
            # but a row that only refers to the company (an inbound mail the gateway stores,
            # a chatter message) does not wait: FOR UPDATE also blocked the foreign-key check
            # of every insert naming the company until the numbering transaction ended
            _company_lock(using).rows(self.company_id)
            contention.note(using)  # held until the caller commits: a batching one soon
            last = _last_number(type(self), using, tuple(sorted(self.numbering_scope())))
            found = last.rows(*self._scope_values())
            self.number = (found[0][0] if found else 0) + 1
            self.ref = self.format_ref(self.number)
            try:
                plain = not args and set(kwargs) <= {"using"}
                if not (plain and saving.insert_from_save(self, using=using)):
                    super().save(*args, **kwargs)
            except BaseException:
                self.number, self.ref = None, ""  # a retry takes a fresh number
                raise

    def _scope_values(self) -> list:
        scope = self.numbering_scope()
        return [scope[name] for name in sorted(scope)]


# The numbering's two queries, compiled once per model, database and scope (a ticket made
# from every new sender's mail asked Django to build both each time): the company row
# locked, then the last number of the scope.
_LOCKS: dict[str, Prepared] = {}
_LASTS: dict[tuple, Prepared] = {}


def _company_lock(using: str) -> Prepared:
    if using not in _LOCKS:
        _LOCKS[using] = Prepared(lambda company: Company.objects.using(using)
                                 .select_for_update(no_key=True).filter(pk=company)
                                 .values_list("pk"))
    return _LOCKS[using]


def _last_number(model, using: str, names: tuple[str, ...]) -> Prepared:
    key = (model, using, names)
    if key not in _LASTS:
        _LASTS[key] = Prepared(lambda *values: model._default_manager.using(using)
                               .filter(**dict(zip(names, values, strict=True)),
                                       number__isnull=False)
                               .order_by("-number").values_list("number")[:1])
    return _LASTS[key]

"""Per-company reference numbers ("HD-00042", "S00012", "INV/2026/00001").

The number is taken when the row is first saved, whoever saves it (a service, the mail router,
the API), so no path can create a record without its reference. Numbering is serialized per
company by locking the company row (FOR NO KEY UPDATE, so rows that merely refer to the company
are not held up): two workers on PostgreSQL cannot take the same number, and SQLite's single
writer already serializes it. A unique constraint per model is the backstop.
"""

from __future__ import annotations

from django.db import models, router, transaction
from django.db.models import Max

from mailroom.core import contention
from mailroom.core.models import Company


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
            list(
                Company.objects.using(using).select_for_update(no_key=True)
                .filter(pk=self.company_id).values_list("pk", flat=True)
            )
            contention.note(using)  # held until the caller commits: a batching one soon
            last = (
                type(self)._default_manager.using(using)
                .filter(**self.numbering_scope()).aggregate(last=Max("number"))["last"]
            )
            self.number = (last or 0) + 1
            self.ref = self.format_ref(self.number)
            try:
                super().save(*args, **kwargs)
            except BaseException:
                self.number, self.ref = None, ""  # a retry takes a fresh number
                raise

"""Customer invoices, priced with the same lines, taxes and arithmetic as quotations."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from mailroom.business.company_checks import check_company
from mailroom.business.numbering import Numbered
from mailroom.business.sales.models import PricedDocument, PricedLine, Tax
from mailroom.business.timestamps import stamp, with_stamps
from mailroom.chatter.models import MailThread
from mailroom.core.scoping import CompanyOwned
from mailroom.lib import money

PAYMENT_TERM_DAYS = 30
ZERO = Decimal("0.00")


class Invoice(Numbered, PricedDocument, MailThread, CompanyOwned):
    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        POSTED = "posted", "Posted"
        CANCEL = "cancel", "Cancelled"

    class PaymentState(models.TextChoices):
        NOT_PAID = money.NOT_PAID, "Not paid"
        PARTIAL = money.PARTIAL, "Partially paid"
        PAID = money.PAID, "Paid"

    partner = models.ForeignKey("contacts.Partner", on_delete=models.PROTECT,
                                related_name="invoices", verbose_name="customer")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                             blank=True, related_name="+", verbose_name="salesperson")
    invoice_date = models.DateField(default=timezone.localdate)
    due_date = models.DateField(blank=True, help_text=f"Empty: {PAYMENT_TERM_DAYS} days after "
                                                      "the invoice date.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    payment_state = models.CharField("payment", max_length=10, choices=PaymentState.choices,
                                     default=PaymentState.NOT_PAID, editable=False)
    amount_paid = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO,
                                      editable=False)
    amount_residual = models.DecimalField("amount due", max_digits=14, decimal_places=2,
                                          default=ZERO, editable=False)
    quotation = models.ForeignKey("sales.Quotation", on_delete=models.SET_NULL, null=True,
                                  blank=True, related_name="invoices",
                                  verbose_name="sales order")
    note = models.TextField("terms and conditions", blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # set when the invoice's mail was delivered (not when it was queued)
    sent_at = models.DateTimeField("sent", null=True, blank=True, editable=False)
    # when the last payment settled it in full; cleared if it is no longer fully paid
    paid_at = models.DateTimeField("paid on", null=True, blank=True, editable=False)

    tracked_fields = ("state", "payment_state", "partner", "due_date", "amount_total")

    class Meta:
        ordering = ["-invoice_date", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["company", "ref"],
                                    name="invoicing_invoice_unique_ref"),
        ]
        indexes = [models.Index(fields=["company", "state", "payment_state"])]

    def __str__(self) -> str:
        return self.ref or "Draft invoice"

    def save(self, *args, **kwargs) -> None:
        paid = self.state == self.State.POSTED and self.payment_state == money.PAID
        changed = [f for f in ("paid_at",) if stamp(self, f, reached=paid)]
        super().save(*args, **with_stamps(kwargs, changed))

    def _year(self) -> int:
        return (self.invoice_date or timezone.localdate()).year

    def numbering_scope(self) -> dict:
        return {"company_id": self.company_id, "ref__startswith": f"INV/{self._year()}/"}

    def format_ref(self, number: int) -> str:
        return f"INV/{self._year()}/{number:05d}"

    def clean(self) -> None:
        self.take_company_currency()
        errors = {}
        if self.invoice_date and not self.due_date:
            self.due_date = self.invoice_date + timedelta(days=PAYMENT_TERM_DAYS)
        if self.invoice_date and self.due_date and self.due_date < self.invoice_date:
            errors["due_date"] = "The due date cannot be before the invoice date."
        check_company(self, related=("partner", "quotation"), extra=errors)

    @property
    def is_editable(self) -> bool:
        return self.state == self.State.DRAFT

    @property
    def is_overdue(self) -> bool:
        return (self.state == self.State.POSTED and self.payment_state != money.PAID
                and self.due_date is not None and self.due_date < timezone.localdate())


class InvoiceLine(PricedLine):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    taxes = models.ManyToManyField(Tax, blank=True, related_name="+")

    class Meta(PricedLine.Meta):
        pass

"""Sales: taxes, quotations and their lines.

The line and amount bases here are shared with invoicing, so a quotation and the invoice made
from it are priced by the same fields and the same arithmetic (`mailroom.lib.money`).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from mailroom.business.company_checks import check_company
from mailroom.business.numbering import Numbered
from mailroom.business.timestamps import stamp, with_stamps
from mailroom.chatter.models import MailThread
from mailroom.core.scoping import CompanyOwned
from mailroom.lib import money

ZERO = Decimal("0.00")
QUOTATION_VALIDITY_DAYS = 30


class Tax(CompanyOwned):
    name = models.CharField(max_length=100)
    percent = models.DecimalField("rate (%)", max_digits=7, decimal_places=4,
                                  validators=[MinValueValidator(Decimal("0")),
                                              MaxValueValidator(Decimal("100"))])
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "taxes"
        constraints = [models.UniqueConstraint(fields=["company", "name"], name="tax_unique_name")]

    def __str__(self) -> str:
        return self.name


class PricedDocument(models.Model):
    """Abstract: stored totals of a quotation or invoice, written only by `sales.lines`."""

    currency = models.CharField(max_length=3, blank=True, editable=False)
    amount_untaxed = models.DecimalField("untaxed amount", max_digits=14, decimal_places=2,
                                         default=ZERO, editable=False)
    amount_tax = models.DecimalField("taxes", max_digits=14, decimal_places=2, default=ZERO,
                                     editable=False)
    amount_total = models.DecimalField("total", max_digits=14, decimal_places=2, default=ZERO,
                                       editable=False)

    class Meta:
        abstract = True

    def take_company_currency(self) -> None:
        """Documents keep the currency they were made in, even if the company's changes."""
        if not self.currency and self.company_id:
            self.currency = self.company.currency


class PricedLine(models.Model):
    """Abstract: one priced line; concrete lines add their document FK and `taxes`."""

    sequence = models.PositiveIntegerField(default=10)
    description = models.CharField(max_length=500)
    quantity = models.DecimalField(max_digits=12, decimal_places=3, default=Decimal("1"),
                                   validators=[MinValueValidator(Decimal("0"))])
    price_unit = models.DecimalField("unit price", max_digits=14, decimal_places=2,
                                     default=ZERO)
    discount = models.DecimalField("discount (%)", max_digits=5, decimal_places=2, default=ZERO,
                                   validators=[MinValueValidator(Decimal("0")),
                                               MaxValueValidator(Decimal("100"))])
    subtotal = models.DecimalField(max_digits=14, decimal_places=2, default=ZERO,
                                   editable=False)

    class Meta:
        abstract = True
        ordering = ["sequence", "id"]

    def __str__(self) -> str:
        return self.description

    def amounts(self) -> money.LineAmounts:
        return money.line_amounts(self.quantity, self.price_unit, self.discount,
                                  [tax.percent for tax in self.taxes.all()])


def default_validity() -> object:
    return timezone.localdate() + timedelta(days=QUOTATION_VALIDITY_DAYS)


class Quotation(Numbered, PricedDocument, MailThread, CompanyOwned):
    class State(models.TextChoices):
        DRAFT = "draft", "Quotation"
        SENT = "sent", "Quotation sent"
        SALE = "sale", "Sales order"
        CANCEL = "cancel", "Cancelled"

    EDITABLE_STATES = (State.DRAFT, State.SENT)

    partner = models.ForeignKey("contacts.Partner", on_delete=models.PROTECT,
                                related_name="quotations", verbose_name="customer")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                             blank=True, related_name="+", verbose_name="salesperson")
    date = models.DateField("quotation date", default=timezone.localdate)
    validity_date = models.DateField("expiration", null=True, blank=True,
                                     default=default_validity)
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    note = models.TextField("terms and conditions", blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    # first time it went to the customer (kept when confirmed or cancelled; a reset to draft
    # clears it, so sending it again counts again)
    sent_at = models.DateTimeField("sent on", null=True, blank=True, editable=False)
    # when it became a sales order; cleared if the order is cancelled or reset
    confirmed_at = models.DateTimeField("confirmed on", null=True, blank=True, editable=False)

    tracked_fields = ("state", "partner", "user", "validity_date", "amount_total")
    ref_format = "S{number:05d}"

    class Meta:
        ordering = ["-date", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["company", "ref"], name="sales_quotation_unique_ref")
        ]
        indexes = [models.Index(fields=["company", "state"])]

    def __str__(self) -> str:
        return self.ref or "New quotation"

    def save(self, *args, **kwargs) -> None:
        state = self.State
        changed = []
        if stamp(self, "sent_at", reached=self.state == state.SENT,
                 keep=self.state != state.DRAFT):
            changed.append("sent_at")
        if stamp(self, "confirmed_at", reached=self.state == state.SALE):
            changed.append("confirmed_at")
        super().save(*args, **with_stamps(kwargs, changed))

    def clean(self) -> None:
        self.take_company_currency()
        errors = {}
        if self.validity_date and self.date and self.validity_date < self.date:
            errors["validity_date"] = "The expiration cannot be before the quotation date."
        check_company(self, related=("partner",), extra=errors)

    @property
    def is_editable(self) -> bool:
        return self.state in self.EDITABLE_STATES

    @property
    def is_expired(self) -> bool:
        return (self.is_editable and self.validity_date is not None
                and self.validity_date < timezone.localdate())


class QuotationLine(PricedLine):
    quotation = models.ForeignKey(Quotation, on_delete=models.CASCADE, related_name="lines")
    taxes = models.ManyToManyField(Tax, blank=True, related_name="+")

    class Meta(PricedLine.Meta):
        pass

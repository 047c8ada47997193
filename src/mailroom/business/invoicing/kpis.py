"""Invoicing's KPIs for digest emails (core.kpis). Amounts are taxes included and in the
company's currency: invoices made in another currency are left out."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode

from django.db.models import Q, Sum
from django.urls import reverse

from mailroom.business.invoicing.models import Invoice
from mailroom.core.kpis import Kpi, Unit, changelist_link, register
from mailroom.lib import money

ZERO = Decimal("0.00")
State = Invoice.State


def _posted(company):
    return Invoice.objects.filter(company=company, state=State.POSTED,
                                  currency=company.currency)


def invoiced(company, start, end) -> Decimal:
    total = _posted(company).filter(
        invoice_date__gte=start.date(), invoice_date__lt=end.date()).aggregate(
        total=Sum("amount_total"))["total"]
    return total or ZERO


def paid(company, start, end) -> Decimal:
    total = _posted(company).filter(
        payment_state=money.PAID, paid_at__gte=start, paid_at__lt=end).aggregate(
        total=Sum("amount_total"))["total"]
    return total or ZERO


def overdue(company, start, end) -> Decimal:
    """What was overdue at the end of the window: posted invoices due before its last day
    ended and not fully paid by then. Open invoices count their amount due today; invoices
    fully paid after the window count their total (partial payments are not dated)."""
    due = _posted(company).filter(due_date__lt=end.date())
    still_open = due.exclude(payment_state=money.PAID).aggregate(
        total=Sum("amount_residual"))["total"] or ZERO
    paid_later = due.filter(Q(payment_state=money.PAID) & Q(paid_at__gte=end)).aggregate(
        total=Sum("amount_total"))["total"] or ZERO
    return still_open + paid_later


def _overdue_link(start, end) -> str:
    """Invoices still open today and due before the period's end."""
    return reverse("admin:invoicing_invoice_changelist") + "?" + urlencode({
        "state": State.POSTED, "payment_state__in": f"{money.NOT_PAID},{money.PARTIAL}",
        "due_date__lt": end.date().isoformat()})


def register_kpis() -> None:
    register(Kpi(key="invoicing.invoiced", group="Invoicing", label="Invoiced",
                 unit=Unit.MONEY, compute=invoiced, permission="invoicing.view_invoice",
                 position=10,
                 list_url=changelist_link("invoicing.invoice", "invoice_date", dates=True,
                                          state=State.POSTED),
                 description="Total (taxes included) of the posted invoices dated in the "
                             "period, in the company's currency."))
    register(Kpi(key="invoicing.paid", group="Invoicing", label="Paid", unit=Unit.MONEY,
                 compute=paid, permission="invoicing.view_invoice", position=20,
                 list_url=changelist_link("invoicing.invoice", "paid_at",
                                          payment_state=money.PAID),
                 description="Total (taxes included) of the invoices that became fully paid "
                             "in the period, in the company's currency."))
    register(Kpi(key="invoicing.overdue", group="Invoicing", label="Overdue amount",
                 unit=Unit.MONEY, compute=overdue, permission="invoicing.view_invoice",
                 position=30, higher_is_better=False, list_url=_overdue_link,
                 description="Amount still due at the end of the period on posted invoices "
                             "whose due date had passed, in the company's currency."))

"""Sales' KPIs for digest emails (core.kpis). Amounts are in the company's currency:
quotations made in another currency are left out of the money KPIs."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Sum

from mailroom.business.sales.models import Quotation
from mailroom.core.kpis import Kpi, Unit, changelist_link, register

State = Quotation.State


def quotations_sent(company, start, end) -> int:
    return Quotation.objects.filter(company=company, sent_at__gte=start,
                                    sent_at__lt=end).count()


def _confirmed(company, start, end):
    return Quotation.objects.filter(company=company, state=State.SALE, confirmed_at__gte=start,
                                    confirmed_at__lt=end)


def orders_confirmed(company, start, end) -> int:
    return _confirmed(company, start, end).count()


def revenue(company, start, end) -> Decimal:
    total = _confirmed(company, start, end).filter(currency=company.currency).aggregate(
        total=Sum("amount_untaxed"))["total"]
    return total or Decimal("0.00")


def register_kpis() -> None:
    register(Kpi(key="sales.quotations_sent", group="Sales", label="Quotations sent",
                 unit=Unit.COUNT, compute=quotations_sent, permission="sales.view_quotation",
                 position=10, list_url=changelist_link("sales.quotation", "sent_at"),
                 description="Quotations sent to the customer for the first time in the "
                             "period (by mail or marked as sent)."))
    register(Kpi(key="sales.orders_confirmed", group="Sales", label="Orders confirmed",
                 unit=Unit.COUNT, compute=orders_confirmed, permission="sales.view_quotation",
                 position=20,
                 list_url=changelist_link("sales.quotation", "confirmed_at", state=State.SALE),
                 description="Quotations confirmed as sales orders in the period and not "
                             "cancelled since."))
    register(Kpi(key="sales.revenue", group="Sales", label="Sales revenue", unit=Unit.MONEY,
                 compute=revenue, permission="sales.view_quotation", position=30,
                 list_url=changelist_link("sales.quotation", "confirmed_at", state=State.SALE),
                 description="Untaxed total of the sales orders confirmed in the period, in "
                             "the company's currency (orders in other currencies are left "
                             "out)."))

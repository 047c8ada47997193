"""CRM's KPIs for digest emails (core.kpis)."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Sum

from mailroom.business.crm.models import Lead
from mailroom.core.kpis import Kpi, Unit, changelist_link, register


def new_leads(company, start, end) -> int:
    return Lead.objects.filter(company=company, created_at__gte=start,
                               created_at__lt=end).count()


def won_revenue(company, start, end) -> Decimal:
    total = Lead.objects.filter(company=company, stage=Lead.Stage.WON, won_at__gte=start,
                                won_at__lt=end).aggregate(total=Sum("expected_revenue"))["total"]
    return total or Decimal("0.00")


def register_kpis() -> None:
    register(Kpi(key="crm.new_leads", group="CRM", label="New leads", unit=Unit.COUNT,
                 compute=new_leads, permission="crm.view_lead", position=10,
                 list_url=changelist_link("crm.lead", "created_at"),
                 description="Leads created in the period, whatever their stage now."))
    register(Kpi(key="crm.won_revenue", group="CRM", label="Won revenue", unit=Unit.MONEY,
                 compute=won_revenue, permission="crm.view_lead", position=20,
                 list_url=changelist_link("crm.lead", "won_at", stage=Lead.Stage.WON),
                 description="Expected revenue of the leads marked Won in the period (a lead "
                             "moved out of Won no longer counts)."))

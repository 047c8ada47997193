"""CRM's KPIs for digest emails (core.kpis)."""

from __future__ import annotations

from mailroom.business.crm.models import Lead
from mailroom.core.kpis import Kpi, Unit, changelist_link, register


def new_leads(company, start, end) -> int:
    return Lead.objects.filter(company=company, created_at__gte=start,
                               created_at__lt=end).count()


def register_kpis() -> None:
    register(Kpi(key="crm.new_leads", group="CRM", label="New leads", unit=Unit.COUNT,
                 compute=new_leads, permission="crm.view_lead", position=10,
                 list_url=changelist_link("crm.lead", "created_at")))

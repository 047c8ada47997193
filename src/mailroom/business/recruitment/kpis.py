"""Recruitment's KPIs for digest emails (core.kpis)."""

from __future__ import annotations

from mailroom.business.recruitment.models import Applicant
from mailroom.core.kpis import Kpi, Unit, changelist_link, register


def new_applicants(company, start, end) -> int:
    return Applicant.objects.filter(company=company, created_at__gte=start,
                                    created_at__lt=end).count()


def register_kpis() -> None:
    register(Kpi(key="recruitment.new_applicants", group="Recruitment",
                 label="New applicants", unit=Unit.COUNT, compute=new_applicants,
                 permission="recruitment.view_applicant", position=10,
                 list_url=changelist_link("recruitment.applicant", "created_at"),
                 description="Applications received in the period, by mail or entered by "
                             "hand."))

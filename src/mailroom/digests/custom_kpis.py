"""Custom KPIs: defined in the UI, computed like the registered ones (issue 13, item 2)."""

from __future__ import annotations

from mailroom.core.kpis import Kpi


def for_company(company) -> list[Kpi]:
    return []

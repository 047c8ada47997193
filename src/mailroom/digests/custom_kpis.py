"""Custom KPIs: defined in the UI, computed like the registered ones (issue 13, item 2).

Each active CustomKpi row of a company becomes a core.kpis.Kpi keyed "custom.<pk>" in the
"Custom" group, seen only by users who may view the record type it counts. Rows whose record
type is no longer registered (an app removed) are left out rather than shown broken.
"""

from __future__ import annotations

from functools import partial

from django.core.exceptions import ValidationError
from django.db import models

from mailroom.core import kpis as registry
from mailroom.core.access import perm
from mailroom.core.kpis import Kpi, Unit
from mailroom.digests import custom_kpi_services as services
from mailroom.digests.models import CustomKpi


def _compute(row: CustomKpi, company, start, end):
    return services.compute(row, company, start, end)


def _link(row: CustomKpi, model, start, end) -> str:
    date = model._meta.get_field(row.date_field)
    params = {item["field"]: str(item["value"]) for item in row.filters or []
              if item.get("op") == services.EQUALS}
    return registry.changelist_link(row.record_type, date.name,
                                    dates=not isinstance(date, models.DateTimeField),
                                    **params)(start, end)


def as_kpi(row: CustomKpi) -> Kpi | None:
    try:
        model = services.model_of(row.record_type)
    except ValidationError:
        return None
    what = {"count": "Number", "sum": "Sum of", "avg": "Average of"}.get(row.aggregate, "")
    if row.value_field:
        what += f" {row.value_field}"
    where = "; ".join(services.format_line(item) for item in row.filters or [])
    description = (f"{what} of the {model._meta.verbose_name_plural} whose {row.date_field} "
                   f"falls in the period" + (f", where {where}" if where else "") + ".")
    unit = Unit(row.unit) if row.unit in set(Unit) else Unit.COUNT
    return Kpi(key=row.key, group="Custom", label=row.name, unit=unit,
               compute=partial(_compute, row), permission=perm(model, "view"),
               list_url=partial(_link, row, model), higher_is_better=row.higher_is_better,
               description=description, position=row.pk or 0)


def for_company(company) -> list[Kpi]:
    rows = CustomKpi.objects.filter(company=company, active=True)
    return [kpi for kpi in map(as_kpi, rows) if kpi is not None]

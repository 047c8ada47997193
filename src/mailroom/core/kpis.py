"""The registry of KPIs: the numbers a digest email shows.

Apps register their KPIs in `AppConfig.ready()` with `register(Kpi(...))`, so the digests app
needs to know no business app, and a business app needs no digest code. A KPI says:

- what it measures (`label`, `unit`, the app group it is listed under in the picker),
- how to compute it: `compute(company, start, end)` returns the value for the half-open
  window [start, end) of aware datetimes in the company's timezone (so `start.date()` is the
  local first day, for DateFields), restricted to that company's rows. The value may
  depend only on the company and the window — never on a user — so one value serves every
  recipient of a company (the digest computes it once per company, KPI and period);
- who may see it: `visible(user)` — by default the user must hold `permission`
  ("invoicing.view_invoice"); a user who may not see invoices gets no invoice KPI at all,
- where the number comes from: `list_url(start, end)` the back-office list behind it,
  filtered to the window (a path; the mail makes it absolute),
- whether more is better (`higher_is_better=False` for failed mails or overdue amounts:
  a rise is shown red).

Companies may add KPIs of their own without code (digests.CustomKpi); those are resolved by
the digests app through `register_source`, so this module stays a plain registry.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from urllib.parse import urlencode

from django.urls import reverse

Number = int | float | Decimal


class Unit(enum.StrEnum):
    COUNT = "count"
    MONEY = "money"  # in the company's currency
    DURATION = "duration"  # seconds
    PERCENT = "percent"  # 0..100


@dataclass(frozen=True)
class Kpi:
    key: str  # "crm.new_leads": unique, stable (digests store the keys they show)
    group: str  # the app it is listed under: "CRM", "Sales", "Email" ...
    label: str
    unit: Unit
    compute: Callable[..., Number | None]  # (company, start, end) -> value
    permission: str = ""  # "app_label.view_model"; empty = any user of the company
    visible_to: Callable[..., bool] | None = None  # (user) -> bool, replaces `permission`
    list_url: Callable[[datetime, datetime], str] | None = None
    higher_is_better: bool = True
    description: str = ""
    position: int = 100  # order inside its group

    def visible(self, user) -> bool:
        if user is None or not user.is_active:
            return False
        if self.visible_to is not None:
            return bool(self.visible_to(user))
        return not self.permission or user.has_perm(self.permission)

    def url(self, start: datetime, end: datetime) -> str:
        return self.list_url(start, end) if self.list_url is not None else ""


_REGISTRY: dict[str, Kpi] = {}
# Callables (company) -> iterable of Kpi: KPIs that live in the database (custom KPIs).
_SOURCES: list[Callable[..., Iterable[Kpi]]] = []


def register(kpi: Kpi) -> Kpi:
    if kpi.key in _REGISTRY and _REGISTRY[kpi.key] != kpi:
        raise ValueError(f"KPI {kpi.key} is registered twice.")
    _REGISTRY[kpi.key] = kpi
    return kpi


def register_source(source: Callable[..., Iterable[Kpi]]) -> None:
    if source not in _SOURCES:
        _SOURCES.append(source)


def registered() -> list[Kpi]:
    """The KPIs apps registered in code, ordered by group then position."""
    return sorted(_REGISTRY.values(), key=lambda k: (k.group, k.position, k.label))


def for_company(company) -> list[Kpi]:
    """Registered KPIs plus the company's own (custom) ones."""
    extra = [kpi for source in _SOURCES for kpi in source(company)]
    return registered() + sorted(extra, key=lambda k: (k.group, k.position, k.label))


def get(key: str, company=None) -> Kpi:
    """The KPI `key`; custom KPIs need their `company`. LookupError when unknown."""
    if key in _REGISTRY:
        return _REGISTRY[key]
    if company is not None:
        for source in _SOURCES:
            for kpi in source(company):
                if kpi.key == key:
                    return kpi
    raise LookupError(f"Unknown KPI {key!r}")


def changelist_link(model_label: str, date_field: str, *, dates: bool = False,
                    **params: str) -> Callable[[datetime, datetime], str]:
    """`list_url` for a KPI: the admin list of `model_label` ("crm.lead") filtered to the
    window on `date_field` (`dates=True` for a DateField: the window's local dates) and to
    `params` ("stage": "won")."""
    app_label, model_name = model_label.split(".")

    def link(start: datetime, end: datetime) -> str:
        window = ({f"{date_field}__gte": start.isoformat(), f"{date_field}__lt": end.isoformat()}
                  if not dates else
                  {f"{date_field}__gte": start.date().isoformat(),
                   f"{date_field}__lt": end.date().isoformat()})
        return (reverse(f"admin:{app_label}_{model_name}_changelist") + "?"
                + urlencode({**window, **params}))

    return link


def grouped(kpis: Iterable[Kpi]) -> list[tuple[str, list[Kpi]]]:
    """[(group, [kpi, ...]), ...] in group order, for pickers."""
    groups: dict[str, list[Kpi]] = {}
    for kpi in kpis:
        groups.setdefault(kpi.group, []).append(kpi)
    return sorted(groups.items())

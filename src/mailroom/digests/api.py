"""Digests through the API (/api/v1/digests): the digests of your companies, the email you
would get (subject and HTML), and its numbers as JSON — exactly the KPIs the email shows you,
none that your roles hide.

Digests of other companies answer 404, exactly like ones that do not exist.

No `from __future__ import annotations` here: ninja reads the view functions' annotations.
"""

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone
from ninja import Query, Router, Schema
from pydantic import Field

from mailroom.api.auth import actor, require_perm
from mailroom.api.crud import ERRORS, Page, list_schema, page, row_id
from mailroom.api.errors import ApiError, field_error
from mailroom.digests import periods
from mailroom.digests.board import HISTORY, Board, KpiRow
from mailroom.digests.models import Digest, DigestSubscription
from mailroom.digests.views import render_digest

prefix = "/digests"
router = Router(tags=["Digests"])

Value = int | float | None


class DigestOut(Schema):
    id: int
    company_id: int
    name: str
    periodicity: str
    send_time: time = Field(description="In the company's time zone.")
    next_run_at: datetime | None = Field(description="None while the digest is inactive.")
    active: bool
    kpis: list[str] = Field(description="Keys of the KPIs the digest shows, in order.")
    subscribed: bool = Field(description="Whether you receive it.")


DigestList = list_schema("DigestList", DigestOut)


class DigestPreviewOut(Schema):
    digest_id: int
    subject: str
    html: str = Field(description="The email as you would get it; images as data: URIs.")
    period_start: date = Field(description="First day of the period, company time zone.")
    period_end: date = Field(description="Last day of the period (inclusive).")


class KpiRowOut(Schema):
    key: str
    label: str
    unit: str = Field(description="count, money (company currency), duration (seconds) or "
                                  "percent.")
    value: Value = Field(description="None when it could not be computed.")
    previous: Value = Field(description="The value of the period before.")
    change_percent: float | None = Field(description="Change against the previous period; "
                                                     "None when there is nothing to compare.")
    direction: str = Field(description="up, down or flat.")
    good: bool | None = Field(description="Whether the change is good news; None if flat.")
    history: list[Value] = Field(description=f"The last {HISTORY} periods, oldest first; "
                                             "the last is `value`.")
    url: str = Field(description="The list behind the number, filtered to the period.")


class KpisOut(Schema):
    digest_id: int
    periodicity: str
    period_start: date
    period_end: date
    items: list[KpiRowOut]


class PeriodQuery(Schema):
    period: date | None = Field(
        None, description="A day of the period wanted (YYYY-MM-DD); default: the last "
                          "complete period.")


def _number(value) -> Value:
    if value is None or isinstance(value, int):
        return value
    return float(value)


def row_out(row: KpiRow) -> dict:
    change = row.change
    return {"key": row.kpi.key, "label": row.kpi.label, "unit": str(row.kpi.unit),
            "value": _number(row.value), "previous": _number(row.previous),
            "change_percent": round(change, 2) if change is not None else None,
            "direction": row.direction, "good": row.good,
            "history": [_number(v) for v in row.history],
            "url": settings.BASE_URL.rstrip("/") + row.url if row.url else ""}


def _digests(user):
    require_perm(user, Digest, "view")
    return Digest.objects.for_user(user).select_related("company")


def _digest(user, pk: int) -> Digest:
    digest = _digests(user).filter(pk=pk).first()
    if digest is None:
        raise ApiError(404, "No such digest.")
    return digest


def digest_out(digest: Digest, subscribed: set[int]) -> dict:
    return {"id": digest.pk, "company_id": digest.company_id, "name": digest.name,
            "periodicity": digest.periodicity, "send_time": digest.send_time,
            "next_run_at": digest.next_run_at, "active": digest.active,
            "kpis": list(digest.kpis or []), "subscribed": digest.pk in subscribed}


def _period(digest: Digest, day: date | None) -> periods.Period:
    tz = digest.company.timezone or "UTC"
    if day is None:
        return periods.last_complete(digest.periodicity, timezone.now(), tz)
    if not 1971 <= day.year <= 9998:
        raise field_error("period", "Choose a day between 1971 and 9998.")
    moment = datetime.combine(day, time(12), tzinfo=ZoneInfo(tz))
    return periods.containing(digest.periodicity, moment, tz)


@router.get("", response={200: DigestList, **ERRORS}, operation_id="digests_list",
            summary="The digests of your companies")
def list_digests(request, filters: Query[Page]):
    user = actor(request)
    queryset = _digests(user).order_by("name", "pk")
    subscribed = set(DigestSubscription.objects.filter(
        user=user, subscribed=True).values_list("digest_id", flat=True))
    return page(queryset, filters.limit, filters.offset, lambda d: digest_out(d, subscribed))


@router.get("/{id}/preview", response={200: DigestPreviewOut, **ERRORS},
            operation_id="digests_preview",
            summary="The digest email as you would get it (latest complete period)")
def preview(request, id: int = row_id()):
    user = actor(request)
    digest = _digest(user, id)
    subject, html, period = render_digest(digest, user)
    return {"digest_id": digest.pk, "subject": subject, "html": html,
            "period_start": period.first_day, "period_end": period.last_day}


@router.get("/{id}/kpis", response={200: KpisOut, **ERRORS}, operation_id="digests_kpis",
            summary="The digest's numbers for a period, as the email shows them to you",
            description="Only the KPIs your roles let you see. Each value is computed for "
                        "the calendar period (in the company's time zone) containing `period`.")
def kpis(request, query: Query[PeriodQuery], id: int = row_id()):
    user = actor(request)
    digest = _digest(user, id)
    period = _period(digest, query.period)
    rows = Board().rows(digest.company, digest.kpis or [], user, period)
    return {"digest_id": digest.pk, "periodicity": digest.periodicity,
            "period_start": period.first_day, "period_end": period.last_day,
            "items": [row_out(row) for row in rows]}

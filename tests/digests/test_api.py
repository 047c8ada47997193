"""/api/v1/digests: the caller's digests, their email and its numbers — only the caller's
companies (404 otherwise), only the KPIs the caller may see, errors in the house shape."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission

from mailroom.core import kpis
from mailroom.core.kpis import Kpi, Unit
from mailroom.digests import periods
from mailroom.digests.services import set_subscribed
from tests.api.support import Api
from tests.conftest import make_user
from tests.digests.conftest import make_digest

pytestmark = pytest.mark.django_db
BASE = "/api/v1/digests"


def _weekly_value(company, start, end):
    """A number that tells the periods apart: the ISO week of the period."""
    return start.isocalendar().week


@pytest.fixture
def test_kpis():
    found = [Kpi(key="test.week", group="Test", label="Week number", unit=Unit.COUNT,
                 compute=_weekly_value, permission="crm.view_lead",
                 list_url=lambda start, end: f"/leads/?from={start.date()}"),
             Kpi(key="test.invoiced", group="Invoicing", label="Invoiced", unit=Unit.MONEY,
                 compute=lambda company, start, end: 99.5,
                 permission="invoicing.view_invoice", higher_is_better=True)]
    for kpi in found:
        kpis._REGISTRY[kpi.key] = kpi
    yield found
    for kpi in found:
        kpis._REGISTRY.pop(kpi.key, None)


@pytest.fixture
def sam(acme):
    group = Group.objects.create(name="Leads only")
    group.permissions.set(Permission.objects.filter(
        content_type__app_label__in=["crm", "digests"], codename__in=["view_lead",
                                                                    "view_digest"]))
    return make_user("sam", [acme], "Leads only")


def test_no_key_is_a_401(acme):
    from django.test import Client

    response = Client().get(BASE)
    assert response.status_code == 401
    assert "detail" in response.json()


def test_the_list_shows_my_companies_digests_and_whether_i_get_them(acme, globex, alice, bob):
    weekly = make_digest(acme, recipients=[bob])
    monthly = make_digest(acme, name="Monthly", periodicity="monthly", recipients=[alice])
    make_digest(globex, name="Globex daily")
    set_subscribed(monthly, bob, False, actor=bob)
    body = Api(bob).get(BASE).json()
    assert body["count"] == 2
    rows = {row["name"]: row for row in body["items"]}
    assert set(rows) == {"Weekly pulse", "Monthly"}
    assert rows["Weekly pulse"] == {
        "id": weekly.pk, "company_id": acme.pk, "name": "Weekly pulse",
        "periodicity": "weekly", "send_time": "08:00:00",
        "next_run_at": rows["Weekly pulse"]["next_run_at"], "active": True,
        "kpis": ["crm.new_leads"], "subscribed": True}
    assert rows["Weekly pulse"]["next_run_at"] is not None
    assert rows["Monthly"]["subscribed"] is False


def test_another_companys_digest_is_a_404(acme, globex, charlie):
    digest = make_digest(acme)
    api = Api(charlie)
    for path in (f"{BASE}/{digest.pk}/preview", f"{BASE}/{digest.pk}/kpis"):
        response = api.get(path)
        assert response.status_code == 404
        assert response.json() == {"detail": [{"field": None, "message": "No such digest."}]}
    assert api.get(BASE).json()["count"] == 0


def test_preview_is_my_email(acme, alice, test_kpis):
    digest = make_digest(acme, kpis=["test.week", "test.invoiced"])
    body = Api(alice).get(f"{BASE}/{digest.pk}/preview").json()
    assert body["digest_id"] == digest.pk and body["subject"]
    assert "Week number" in body["html"] and "Invoiced" in body["html"]
    assert body["period_start"] <= body["period_end"]


def test_kpis_for_a_given_period_only_those_i_may_see(acme, sam, test_kpis):
    digest = make_digest(acme, kpis=["test.week", "test.invoiced"])
    response = Api(sam).get(f"{BASE}/{digest.pk}/kpis", {"period": "2026-03-11"})
    assert response.status_code == 200
    body = response.json()
    assert (body["period_start"], body["period_end"]) == ("2026-03-09", "2026-03-15")
    assert [row["key"] for row in body["items"]] == ["test.week"]  # no invoice KPI for sam
    row = body["items"][0]
    assert row["label"] == "Week number" and row["unit"] == "count"
    assert row["value"] == 11 and row["previous"] == 10
    assert row["direction"] == "up" and row["change_percent"] == 10.0
    assert row["history"] == [52, *range(1, 12)]  # the 12 weeks ending with week 11
    assert row["url"].endswith("/leads/?from=2026-03-09")


def test_kpis_default_to_the_last_complete_period(acme, alice, test_kpis):
    from django.utils import timezone

    digest = make_digest(acme, kpis=["test.invoiced"])
    body = Api(alice).get(f"{BASE}/{digest.pk}/kpis").json()
    expected = periods.last_complete("weekly", timezone.now(), acme.timezone)
    assert body["period_start"] == expected.first_day.isoformat()
    assert body["items"][0]["value"] == 99.5


def test_a_bad_period_is_a_field_error(acme, alice):
    digest = make_digest(acme)
    api = Api(alice)
    response = api.get(f"{BASE}/{digest.pk}/kpis", {"period": "11/03/2026"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "period"
    far = api.get(f"{BASE}/{digest.pk}/kpis", {"period": "0001-01-01"})
    assert far.status_code == 422 and far.json()["detail"][0]["field"] == "period"

"""Custom KPIs: defined in the back office without code, validated at save, computed like the
registered ones and offered only to users who may see the record type."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from mailroom.business.crm.models import Lead
from mailroom.chatter.services import save_record, set_state
from mailroom.core import kpis
from mailroom.core.models import AuditLog
from mailroom.digests import custom_kpi_services as services
from mailroom.digests.board import Board
from mailroom.digests.models import CustomKpi
from tests.digests.test_kpis_access import office_user
from tests.digests.test_kpis_business import AFTER, BEFORE, FIRST, LAST, WEEK, at

ADD_URL = reverse("admin:digests_customkpi_add")

FORM = {
    "name": "Big wins",
    "record_type": "crm.lead",
    "date_field": "won_at",
    "aggregate": "sum",
    "value_field": "expected_revenue",
    "filters": "stage equals Won\nexpected_revenue greater than 100",
    "unit": "money",
    "higher_is_better": "on",
    "active": "on",
}


def leads(company, actor, plan):
    """Leads won at the given moments: {(moment, revenue), ...}."""
    for moment, revenue in plan:
        lead = save_record(Lead(company=company, name=f"Deal {revenue}",
                                expected_revenue=D(revenue)), actor=actor)
        with at(moment):
            set_state(lead, Lead.Stage.WON, actor=actor)


def test_defined_in_the_admin_validated_computed_and_listed(client_for, alice, bob, acme,
                                                            globex):
    form = client_for(alice).get(ADD_URL).content.decode()
    assert "Won on · Lead" in form and "Expected revenue · Lead" in form  # from the registry
    assert "stage equals won" in form  # the filter help shows the syntax
    response = client_for(alice).post(ADD_URL, FORM)
    assert response.status_code == 302, response.content.decode()[:3000]
    kpi_row = CustomKpi.objects.get(name="Big wins")
    assert kpi_row.company == acme
    # values are stored converted: the choice's key, the number as a string
    assert kpi_row.filters == [{"field": "stage", "op": "equals", "value": "won"},
                               {"field": "expected_revenue", "op": "greater than",
                                "value": "100"}]
    assert AuditLog.objects.filter(action="digests.custom_kpi.create",
                                   object_id=str(kpi_row.pk), actor=alice).exists()

    leads(acme, bob, [(BEFORE, "500"), (FIRST, "1000"), (LAST, "250"), (LAST, "99"),
                      (AFTER, "7000")])
    lost = save_record(Lead(company=acme, name="Lost", expected_revenue=D("9000")), actor=bob)
    with at(FIRST):
        set_state(lost, Lead.Stage.LOST, actor=bob)

    listed = {kpi.key: kpi for kpi in kpis.for_company(acme)}
    kpi = listed[f"custom.{kpi_row.pk}"]
    assert kpi.group == "Custom" and kpi.label == "Big wins" and kpi.unit == kpis.Unit.MONEY
    assert f"custom.{kpi_row.pk}" not in {k.key for k in kpis.for_company(globex)}
    assert kpis.get(kpi.key, acme).label == "Big wins"

    board = Board()
    assert board.value(acme, kpi, WEEK) == D("1250.00")
    row = board.row(acme, kpi, WEEK)
    assert (row.value, row.previous) == (D("1250.00"), D("500.00"))
    assert row.url.startswith(reverse("admin:crm_lead_changelist") + "?won_at__gte=")
    listing = client_for(alice).get(row.url)
    assert listing.status_code == 200
    assert [r.kpi.key for r in board.rows(acme, [kpi.key], bob, WEEK)] == [kpi.key]

    assert "Big wins" in client_for(alice).get(
        reverse("admin:digests_customkpi_changelist")).content.decode()
    change = client_for(alice).get(reverse("admin:digests_customkpi_change",
                                           args=[kpi_row.pk]))
    assert change.status_code == 200
    page = change.content.decode()
    assert "Last 7 days" in page and "Last 30 days" in page
    assert "stage equals won" in page  # the filter lines come back as text


def post_errors(client, **changes):
    response = client.post(ADD_URL, {**FORM, **changes})
    assert response.status_code == 200, "a refused form is shown again, never saved"
    assert not CustomKpi.objects.exists()
    return response.content.decode()


@pytest.mark.parametrize(("changes", "message"), [
    ({"filters": "colour equals red"}, "&#x27;colour&#x27; is not a field you can filter on"),
    ({"filters": "stage equals Won\nexpected_revenue greater than abc"},
     "Filter 2: &#x27;abc&#x27; is not a number for Expected revenue."),
    ({"filters": "stage bigger won"}, "&#x27;bigger&#x27; is not an operator"),
    ({"filters": "stage equals maybe"}, "is not one of New, Qualified"),
    ({"filters": "partner__name equals Ada"}, "&#x27;partner__name&#x27; is not a field"),
    ({"filters": "name greater than b"}, "needs a number or date field"),
    ({"date_field": "name"}, "Select a valid choice"),
    ({"date_field": "due_date"}, "Pick a date of leads"),  # an invoice's date, not a lead's
    ({"value_field": "amount_total"}, "Pick a number field of leads to sum"),
    ({"aggregate": "count", "unit": "money"}, "A count of records is a count"),
])
def test_a_bad_definition_is_a_red_line_not_a_traceback(client_for, alice, changes, message):
    page = post_errors(client_for(alice), **changes)
    assert message in page
    assert "errorlist" in page or "text-red" in page


def test_an_unknown_record_type_is_refused_by_the_form(client_for, alice):
    page = post_errors(client_for(alice), record_type="core.user")
    assert "Select a valid choice" in page


def test_a_user_without_the_permission_cannot_define_one(client_for, bob, acme):
    assert client_for(bob).post(ADD_URL, FORM).status_code == 403
    kpi = CustomKpi(company=acme, name="Sneaky", record_type="crm.lead",
                    date_field="created_at")
    with pytest.raises(PermissionDenied):
        services.save_custom_kpi(kpi, actor=bob)


def test_the_service_refuses_lookups_hidden_in_names(alice, acme):
    kpi = CustomKpi(company=acme, name="Tricky", record_type="crm.lead",
                    date_field="created_at__year", aggregate="sum",
                    value_field="partner__id", filters=[
                        {"field": "user__password", "op": "contains", "value": "x"},
                        {"field": "name", "op": "regex", "value": ".*"}])
    with pytest.raises(ValidationError) as refused:
        services.save_custom_kpi(kpi, actor=alice)
    errors = refused.value.message_dict
    assert set(errors) == {"date_field", "value_field", "filters"}
    assert errors["filters"][0].startswith("Filter 1: 'user__password' is not a field")
    assert errors["filters"][1].startswith("Filter 2: 'regex' is not an operator")


def test_counts_with_every_operator_and_only_for_users_who_see_the_record_type(alice, bob,
                                                                               acme):
    for moment, name, email, probability in [(FIRST, "Alpha", "a@x.example", 10),
                                             (LAST, "Beta", "", 50),
                                             (LAST, "Gamma corp", "g@x.example", 90),
                                             (AFTER, "Delta", "d@x.example", 90)]:
        with at(moment):
            save_record(Lead(company=acme, name=name, email_from=email,
                             probability=probability), actor=bob)

    def count(*lines):
        kpi = CustomKpi(company=acme, name=f"Count {lines}", record_type="crm.lead",
                        date_field="created_at",
                        filters=[services.parse_line(line) for line in lines])
        services.save_custom_kpi(kpi, actor=alice)
        return Board().value(acme, kpis.get(kpi.key, acme), WEEK)

    assert count() == 3
    assert count("email_from is set") == 2
    assert count("email_from is not set") == 1
    assert count("probability greater than 10") == 2
    assert count("probability less than 50") == 1
    assert count("probability not equals 90") == 2
    assert count("name contains corp") == 1
    # a time in a filter is the company's local time: 23:00 in Paris is 21:00 UTC
    assert count("created_at greater than 2026-03-29 23:00") == 2

    average = CustomKpi(company=acme, name="Average probability", record_type="crm.lead",
                        date_field="created_at", aggregate="avg", value_field="probability",
                        unit="percent")
    services.save_custom_kpi(average, actor=alice)
    kpi = kpis.get(average.key, acme)
    assert Board().value(acme, kpi, WEEK) == 50
    assert Board().value(acme, kpi, WEEK.shift(-5)) is None  # no rows: not available

    sales_only = office_user("sol", acme, "sales.view_quotation")
    assert Board().rows(acme, [kpi.key], sales_only, WEEK) == []
    assert [r.kpi.key for r in Board().rows(acme, [kpi.key], bob, WEEK)] == [kpi.key]


def test_inactive_custom_kpis_are_not_offered(alice, acme):
    kpi = CustomKpi(company=acme, name="Paused", record_type="crm.lead",
                    date_field="created_at", active=False)
    services.save_custom_kpi(kpi, actor=alice)
    assert kpi.key not in {k.key for k in kpis.for_company(acme)}


def test_another_companys_custom_kpi_is_not_found(client_for, alice, globex):
    theirs = CustomKpi.objects.create(company=globex, name="Globex only",
                                      record_type="crm.lead", date_field="created_at")
    client = client_for(alice)
    assert client.get(reverse("admin:digests_customkpi_change",
                              args=[theirs.pk])).status_code == 404
    assert "Globex only" not in client.get(
        reverse("admin:digests_customkpi_changelist")).content.decode()


def test_a_custom_kpi_is_shown_in_the_digest_email(client_for, alice, bob, acme):
    from mailroom.digests import mail
    from mailroom.digests.models import Digest
    from mailroom.digests.services import save_digest

    assert client_for(alice).post(ADD_URL, FORM).status_code == 302
    key = f"custom.{CustomKpi.objects.get(name='Big wins').pk}"
    leads(acme, bob, [(FIRST, "1000"), (LAST, "250")])
    digest = save_digest(Digest(company=acme, name="Wins", kpis=[key]), actor=alice,
                         recipients=[alice])
    bob.language = "en_US"
    html = mail.render(digest, bob, WEEK, board=Board(), tip=None, notice=False).html
    assert "Big wins" in html and "€1,250.00" in html

"""The alias form: default values as real fields of the record type (only the valid choices and
the company's own rows), stored in the alias's `defaults` JSON; force-thread and parent records
through a search limited to the alias's company; record types named by their labels."""

from __future__ import annotations

import re

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from mailroom.contacts.models import Partner
from mailroom.routing.models import Alias
from tests.routing.test_admin import alias_data, url

DEFAULTS_URL = reverse("admin:routing_alias_defaults")
RECORDS_URL = reverse("admin:routing_alias_records")


@pytest.fixture
def support(domain):
    return Alias.objects.get(domain=domain, local_part="support")  # applies to tickets


@pytest.fixture
def globex_partner(globex):
    return Partner.objects.create(company=globex, name="Globex Buyer", email="buy@globex.test")


def options(html: str, name: str) -> list[tuple[str, str]]:
    """(value, text) of the <select name=...> in the page."""
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert select, f"no select {name}"
    return [(v, re.sub(r"\s+", " ", t).strip()) for v, t in
            re.findall(r'<option value="([^"]*)"[^>]*>(.*?)</option>', select.group(1), re.S)]


def test_the_record_types_fields_are_form_fields_with_the_valid_choices(
        client_for, mia, support, customer, globex_partner, bob, charlie):
    html = client_for(mia).get(url("alias", "change", support.pk)).content.decode()
    from mailroom.business.helpdesk.models import Ticket

    assert options(html, "default__priority") == [
        ("", "— not set —"), *((v, str(label)) for v, label in Ticket.Priority.choices)]
    assert set(dict(options(html, "default__stage"))) - {""} == {
        v for v, _ in Ticket.Stage.choices}
    partners = dict(options(html, "default__partner"))
    assert str(customer.pk) in partners and str(globex_partner.pk) not in partners
    users = dict(options(html, "default__user"))
    assert str(bob.pk) in users and str(charlie.pk) not in users
    # no free-text fields: the subject, body and sender come from each message
    assert 'name="default__name"' not in html and 'name="default__description"' not in html


def test_chosen_values_are_stored_in_the_defaults_json(client_for, mia, support, customer,
                                                       bob):
    from mailroom.business.helpdesk.models import Ticket

    response = client_for(mia).post(url("alias", "change", support.pk), alias_data(
        support, defaults="", default__priority=Ticket.Priority.choices[-1][0],
        default__partner=customer.pk, default__user=bob.pk, default__stage=""))
    assert response.status_code == 302, response.content.decode()[:3000]
    support.refresh_from_db()
    assert support.defaults == {"priority": Ticket.Priority.choices[-1][0],
                                "partner": customer.pk, "user": bob.pk}
    # and shown again as selected on the form
    html = client_for(mia).get(url("alias", "change", support.pk)).content.decode()
    assert re.search(rf'<option value="{customer.pk}"[^>]*selected', html)


def test_a_choice_or_row_outside_the_valid_ones_is_an_error_and_nothing_is_saved(
        client_for, mia, support, globex_partner):
    client = client_for(mia)
    response = client.post(url("alias", "change", support.pk), alias_data(
        support, defaults="", default__priority="on-fire"))
    assert response.status_code == 200
    assert "on-fire is not one of the available choices" in response.content.decode()
    response = client.post(url("alias", "change", support.pk), alias_data(
        support, defaults="", default__partner=globex_partner.pk))
    assert response.status_code == 200
    assert "defaults" in response.context["adminform"].form.errors
    support.refresh_from_db()
    assert support.defaults == {}


def test_stored_values_the_fields_do_not_cover_are_kept_as_other_values(
        client_for, mia, support):
    Alias.objects.filter(pk=support.pk).update(
        defaults={"priority": "2", "description": "From the web form"})
    client = client_for(mia)
    html = client.get(url("alias", "change", support.pk)).content.decode()
    assert re.search(r'<option value="2"[^>]*selected', html)
    assert "From the web form" in html
    response = client.post(url("alias", "change", support.pk), alias_data(
        support, defaults='{"description": "From the web form"}', default__priority="2"))
    assert response.status_code == 302
    support.refresh_from_db()
    assert support.defaults == {"priority": "2", "description": "From the web form"}


def test_changing_the_record_type_renders_that_types_fields(client_for, mia, acme, globex,
                                                           customer):
    client = client_for(mia)
    response = client.get(DEFAULTS_URL, {"record_type": "crm.lead", "company": acme.pk})
    html = response.content.decode()
    assert response.status_code == 200 and 'id="alias-defaults"' in html
    for name in ("probability", "expected_revenue", "stage", "partner"):
        assert f'name="default__{name}"' in html
    assert str(customer.pk) in dict(options(html, "default__partner"))
    # a company the user does not belong to: no rows of it are offered
    html = client.get(DEFAULTS_URL, {"record_type": "crm.lead",
                                     "company": globex.pk}).content.decode()
    assert 'name="default__partner"' not in html and 'name="default__stage"' in html
    assert client.post(DEFAULTS_URL, {"record_type": "crm.lead"}).status_code == 403


def test_the_record_search_is_limited_to_the_users_companies(client_for, mia, lead,
                                                             globex_lead, acme, globex):
    lead_type = ContentType.objects.get(app_label="crm", model="lead")
    client = client_for(mia)
    found = client.get(RECORDS_URL, {"type": lead_type.pk, "company": acme.pk,
                                     "term": "big"}).json()
    assert found == {"results": [{"id": lead.pk, "text": str(lead)}],
                     "pagination": {"more": False}}
    assert client.get(RECORDS_URL, {"type": lead_type.pk, "company": acme.pk,
                                    "term": str(lead.pk)}).json()["results"][0]["id"] == lead.pk
    # the other company's lead: neither by its company nor by its id
    assert client.get(RECORDS_URL, {"type": lead_type.pk, "company": globex.pk,
                                    "term": ""}).json()["results"] == []
    assert client.get(RECORDS_URL, {"type": lead_type.pk, "company": acme.pk,
                                    "term": str(globex_lead.pk)}).json()["results"] == []
    # a type that is not a record type
    alias_type = ContentType.objects.get_for_model(Alias)
    assert client.get(RECORDS_URL, {"type": alias_type.pk, "company": acme.pk}).json()[
        "results"] == []


def test_a_plain_user_cannot_search(client_for, bob, acme):
    response = client_for(bob).get(RECORDS_URL, {"type": 1, "company": acme.pk})
    assert response.status_code == 403


def test_force_thread_picked_by_label_and_shown_by_name(client_for, mia, support, lead):
    lead_type = ContentType.objects.get(app_label="crm", model="lead")
    client = client_for(mia)
    html = client.get(url("alias", "change", support.pk)).content.decode()
    types = dict(options(html, "thread_content_type"))
    assert types[str(lead_type.pk)] == "Lead" and types[""].startswith("— none")
    assert 'class="mr-record-picker"' in html and RECORDS_URL in html
    response = client.post(url("alias", "change", support.pk), alias_data(
        support, defaults="", thread_content_type=lead_type.pk, thread_object_id=lead.pk))
    assert response.status_code == 302, response.content.decode()[:3000]
    support.refresh_from_db()
    assert support.thread == lead
    html = client.get(url("alias", "change", support.pk)).content.decode()
    assert options(html, "thread_object_id") == [("", ""), (str(lead.pk), "Big deal")]
    # half a choice is an error, not a silent drop
    response = client.post(url("alias", "change", support.pk), alias_data(
        support, defaults="", thread_content_type=lead_type.pk, thread_object_id=""))
    assert response.status_code == 200
    assert "thread_object_id" in response.context["adminform"].form.errors


def test_a_new_alias_offers_the_fields_of_the_type_shown_first(client_for, mia, domain, acme):
    from mailroom.routing.forms import default_fields, record_type_choices

    html = client_for(mia).get(url("alias", "add")).content.decode()
    first = record_type_choices()[0][0]
    assert options(html, "record_type")[0][0] == first
    assert "Choose what the alias applies to first" not in html
    assert default_fields(first, acme.pk)
    for name in default_fields(first, acme.pk):
        assert f'name="default__{name}"' in html
    assert 'hx-trigger="change, change from:[name=company]"' in html

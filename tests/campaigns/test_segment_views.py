"""The segment editor: rows of selects (never JSON), rows added and reshaped by htmx, the live
count, saving with red lines on the right condition, company isolation and permissions."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mailroom.campaigns import segments, services
from mailroom.campaigns.campaign_models import Campaign, Segment
from mailroom.contacts.models import Partner

pytestmark = pytest.mark.django_db

ROW = reverse("campaigns:segment_row")
COUNT = reverse("campaigns:segment_count")
NEW = reverse("campaigns:segment_new")


@pytest.fixture
def people(acme):
    return [Partner.objects.create(company=acme, name=n, email=f"{n.lower()}@x.example",
                                   country=c) for n, c in (("Ada", "BE"), ("Bea", "BE"),
                                                           ("Cyd", "FR"))]


@pytest.fixture
def belgians(acme, people, mia):
    return segments.save_segment(Segment(company=acme, name="Belgians", rules=[
        {"field": "country", "op": "in", "value": ["BE"]}]), actor=mia)


def test_new_page_shows_rows_of_selects_and_no_json(client_for, mia):
    page = client_for(mia).get(NEW)
    html = page.content.decode()
    assert page.status_code == 200
    assert 'name="c0_field"' in html and "Add condition" in html and "Save segment" in html
    assert "rules" not in html and "[{" not in html


def test_add_condition_returns_the_next_row(client_for, mia):
    response = client_for(mia).get(ROW, {"add": "1", "row": ["0", "3"]})
    html = response.content.decode()
    assert 'name="row" value="4"' in html and 'name="c4_field"' in html
    assert response["HX-Trigger-After-Settle"] == "mr-segment-changed"


def test_a_row_reshapes_to_its_field(client_for, mia, newsletter, globex_list):
    client = client_for(mia)
    html = client.get(ROW, {"i": "2", "c2_field": "country", "c2_was": "list",
                            "c2_op": "subscribed", "c2_value": str(newsletter.pk)}
                      ).content.decode()
    assert 'name="c2_value" multiple' in html and ">Belgium<" in html
    assert 'value="in" selected' in html
    html = client.get(ROW, {"i": "0", "c0_field": "list", "c0_was": "country"}).content.decode()
    assert ">Newsletter<" in html and "Globex news" not in html  # only the company's lists
    html = client.get(ROW, {"i": "0", "c0_field": "created", "c0_was": "list"}).content.decode()
    assert 'type="number" name="c0_value"' in html
    html = client.get(ROW, {"i": "0", "c0_field": "record:crm.lead", "c0_was": "list"}
                      ).content.decode()
    assert 'name="c0_where"' in html and "with stage" in html and 'name="c0_days"' in html
    html = client.get(ROW, {"i": "0", "c0_field": "record:crm.lead", "c0_was": "record:crm.lead",
                            "c0_where": "stage"}).content.decode()
    assert 'name="c0_equals"' in html and ">Won<" in html


def test_live_count_of_the_current_rows(client_for, mia, people):
    client = client_for(mia)
    html = client.post(COUNT, {"match": "all", "row": ["0"], "c0_field": "country",
                               "c0_op": "in", "c0_value": ["BE"]}).content.decode()
    assert "2 contacts" in html and "Ada" in html and "Bea" in html and "Cyd" not in html
    html = client.post(COUNT, {"match": "any", "row": ["0", "1"], "c0_field": "country",
                               "c0_op": "in", "c0_value": ["BE"], "c1_field": "name",
                               "c1_op": "contains", "c1_value": "cyd"}).content.decode()
    assert "3 contacts" in html
    html = client.post(COUNT, {"match": "all", "row": ["0", "1"], "c0_field": "country",
                               "c0_op": "in", "c0_value": ["BE"], "c1_field": "created",
                               "c1_op": "last_days", "c1_value": "x"}).content.decode()
    assert "Condition 2: Added: give a number of days." in html


def test_save_with_an_error_shows_a_red_line_on_that_condition(client_for, mia, people):
    response = client_for(mia).post(NEW, {
        "name": "Mixed", "match": "all", "row": ["0", "5"], "c0_field": "country",
        "c0_op": "in", "c0_value": ["BE"], "c5_field": "email", "c5_op": "domain_is",
        "c5_value": "nodot"})
    html = response.content.decode()
    assert response.status_code == 422
    assert not Segment.objects.exists()
    row5 = html[html.index('data-row="5"'):]
    assert "Give a domain such as example.com." in row5
    assert "Give a domain" not in html[html.index('data-row="0"'):html.index('data-row="5"')]


def test_save_creates_the_segment_through_the_service(client_for, mia, acme, people):
    response = client_for(mia).post(NEW, {
        "name": "Belgians", "match": "any", "row": ["0"], "c0_field": "country",
        "c0_op": "in", "c0_value": ["BE"]})
    segment = Segment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("campaigns:segment_edit", args=[segment.pk])
    assert (segment.company, segment.match, segment.rules) == (
        acme, "any", [{"field": "country", "op": "in", "value": ["BE"]}])
    page = client_for(mia).get(response["Location"]).content.decode()
    assert "2 contacts" in page and 'value="BE" selected' in page


def test_another_companys_segment_is_a_404_and_its_lists_are_refused(
        client_for, mia, globex, gina, globex_list, belgians):
    theirs = segments.save_segment(Segment(company=globex, name="Theirs", rules=[
        {"field": "name", "op": "contains", "value": "a"}]), actor=gina)
    client = client_for(mia)
    assert client.get(reverse("campaigns:segment_edit", args=[theirs.pk])).status_code == 404
    assert client.get(COUNT, {"segment": theirs.pk}).status_code == 404
    assert client.post(reverse("campaigns:segment_edit", args=[theirs.pk]),
                       {"name": "Mine"}).status_code == 404
    response = client.post(NEW, {"name": "Sneaky", "match": "all", "row": ["0"],
                                 "c0_field": "list", "c0_op": "subscribed",
                                 "c0_value": str(globex_list.pk)})
    assert response.status_code == 422
    assert "The mailing list chosen no longer exists." in response.content.decode()
    assert client.get(reverse("admin:campaigns_segment_change", args=[theirs.pk])
                      ).status_code == 404


def test_a_user_reads_but_cannot_change(client_for, bob, belgians):
    client = client_for(bob)
    page = client.get(reverse("campaigns:segment_edit", args=[belgians.pk]))
    html = page.content.decode()
    assert page.status_code == 200 and "Save segment" not in html and "disabled" in html
    assert client.post(reverse("campaigns:segment_edit", args=[belgians.pk]),
                       {"name": "Renamed"}).status_code == 403
    assert client.get(COUNT, {"segment": belgians.pk}).content.decode() == "2"
    assert client.post(NEW, {"name": "Mine"}).status_code == 403


def test_admin_list_and_delete(client_for, mia, acme, belgians):
    client = client_for(mia)
    page = client.get(reverse("admin:campaigns_segment_changelist")).content.decode()
    assert "Belgians" in page and f"segments/count/?segment={belgians.pk}" in page
    assert client.get(reverse("admin:campaigns_segment_add"))["Location"] == NEW
    campaign = Campaign.objects.create(company=acme, name="Spring sale", subject="Hi",
                                       email_from="news@acme.test")
    campaign.segments.add(belgians)
    delete = reverse("admin:campaigns_segment_delete", args=[belgians.pk])
    response = client.post(delete, {"post": "yes"}, follow=True)
    assert "“Spring sale” (draft) sends to this segment" in response.content.decode()
    assert Segment.objects.filter(pk=belgians.pk).exists()
    campaign.delete()
    client.post(delete, {"post": "yes"})
    assert not Segment.objects.filter(pk=belgians.pk).exists()


def test_subscribed_list_condition_end_to_end(client_for, mia, acme, people, newsletter):
    services.subscribe(newsletter, people[2], actor=mia)
    html = client_for(mia).post(COUNT, {"match": "all", "row": ["0"], "c0_field": "list",
                                        "c0_op": "subscribed",
                                        "c0_value": str(newsletter.pk)}).content.decode()
    assert "1 contact<" in html and "Cyd" in html

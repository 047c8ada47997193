"""The approval link in the assignee's email: a GET shows a confirmation page and changes
nothing; only its POST approves or refuses; a used, expired, reassigned or tampered link gets
a clear page and acts on nothing."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.utils import timezone

from mailroom.activities import services
from mailroom.activities.models import Activity
from mailroom.activities.tokens import make_token
from tests.activities.conftest import mails_to

pytestmark = pytest.mark.django_db


@pytest.fixture
def approval(lead, bob, dana, domain) -> Activity:
    return services.schedule(lead, actor=bob, activity_type="approval",
                             due_date=timezone.localdate(), assignee=dana,
                             summary="Discount 15% for Ada", note="She orders 300 units")


def emailed_link(address: str) -> str:
    [mail] = [m for m in mails_to(address) if m.subject.startswith("Approval requested")]
    links = re.findall(r'href="https?://[^/"]+(/activities/approval/[^"?]+/)\?choice=approve"',
                       mail.body_html)
    assert links, mail.body_html
    return links[0]


def test_the_emailed_link_needs_the_confirmation_post(approval, bob, domain):
    link = emailed_link("dana@acme.example")
    client = Client(enforce_csrf_checks=True)  # nobody signed in: the token is the key
    page = client.get(link + "?choice=approve")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Discount 15% for Ada" in body and "She orders 300 units" in body
    assert 'value="approve"' in body and 'value="refuse"' in body
    approval.refresh_from_db()
    assert approval.state == Activity.State.PLANNED  # a GET changes nothing
    client.get(link)  # nor a second one (mail scanners open links)
    approval.refresh_from_db()
    assert approval.is_planned and mails_to("bob@acme.example") == []
    token = client.cookies["csrftoken"].value
    done = client.post(link, {"choice": "approve", "feedback": "Fine by me",
                              "csrfmiddlewaretoken": token})
    assert done.status_code == 200 and "Approved." in done.content.decode()
    approval.refresh_from_db()
    assert approval.state == Activity.State.APPROVED and approval.feedback == "Fine by me"
    assert approval.done_by == approval.assignee
    assert [m.subject for m in mails_to("bob@acme.example")] == [
        "Approved: Discount 15% for Ada"]
    # the link is spent: the page says so and nothing changes
    again = client.post(link, {"choice": "refuse", "csrfmiddlewaretoken": token})
    assert again.status_code == 409 and "already decided" in again.content.decode()
    approval.refresh_from_db()
    assert approval.state == Activity.State.APPROVED


def test_refusing_through_the_link(approval, client):
    link = emailed_link("dana@acme.example")
    response = client.post(link, {"choice": "refuse", "feedback": "Too generous"})
    assert response.status_code == 200 and "Refused." in response.content.decode()
    approval.refresh_from_db()
    assert approval.state == Activity.State.REFUSED


def test_a_post_without_a_choice_changes_nothing(approval, client):
    response = client.post(emailed_link("dana@acme.example"), {"feedback": "?"})
    assert response.status_code == 422 and "Choose Approve or Refuse" in response.content.decode()
    approval.refresh_from_db()
    assert approval.is_planned


@pytest.mark.parametrize("tamper", [
    lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # the signature
    lambda t: t.replace(t.split(":")[0], t.split(":")[0][::-1], 1),  # the payload
    lambda t: "not-a-token",
])
def test_a_tampered_link_is_refused_with_a_clear_page(approval, client, tamper):
    link = f"/activities/approval/{tamper(make_token(approval))}/"
    for response in (client.get(link), client.post(link, {"choice": "approve"})):
        assert response.status_code == 400
        assert "This link is not valid" in response.content.decode()
    approval.refresh_from_db()
    assert approval.is_planned


def test_an_expired_link_is_refused(approval, client, monkeypatch):
    import time

    from django.core import signing

    signed_at = time.time() - 15 * 86400  # links work for 14 days
    with monkeypatch.context() as patch:
        patch.setattr(signing.time, "time", lambda: signed_at)
        expired = make_token(approval)
    response = client.post(f"/activities/approval/{expired}/", {"choice": "approve"})
    assert response.status_code == 400 and "expired" in response.content.decode()
    approval.refresh_from_db()
    assert approval.is_planned
    fresh = client.get(f"/activities/approval/{make_token(approval)}/")
    assert fresh.status_code == 200


def test_a_reassigned_approval_no_longer_opens_with_the_old_link(approval, alice, client):
    link = f"/activities/approval/{make_token(approval)}/"
    Activity.objects.filter(pk=approval.pk).update(assignee=alice)
    response = client.post(link, {"choice": "approve"})
    assert response.status_code == 410 and "no longer works" in response.content.decode()
    approval.refresh_from_db()
    assert approval.is_planned

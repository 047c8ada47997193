"""The activities box in the record's chatter panel (a record panel), its forms, and the
My activities list in the back office."""

from __future__ import annotations

import datetime

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from mailroom.activities import services
from mailroom.activities.models import Activity

pytestmark = pytest.mark.django_db


def panel_url(record) -> str:
    ct = ContentType.objects.get_for_model(record)
    return reverse("activities:panel", args=[ct.pk, record.pk])


def schedule_url(record) -> str:
    ct = ContentType.objects.get_for_model(record)
    return reverse("activities:schedule", args=[ct.pk, record.pk])


def plan(record, actor, assignee, days=0, kind="call", summary="Call Ada") -> Activity:
    return services.schedule(record, actor=actor, activity_type=kind, summary=summary,
                             due_date=timezone.localdate() + datetime.timedelta(days=days),
                             assignee=assignee)


def test_the_chatter_panel_loads_the_activities_box(client_for, bob, lead):
    ct = ContentType.objects.get_for_model(lead)
    body = client_for(bob).get(reverse("chatter:panel", args=[ct.pk, lead.pk])).content.decode()
    assert 'id="record-panel-activities"' in body and f'hx-get="{panel_url(lead)}"' in body


def test_the_box_colours_overdue_today_and_later(client_for, bob, alice, lead):
    plan(lead, alice, bob, days=-3, summary="Late call")
    plan(lead, alice, bob, days=0, summary="Call today")
    plan(lead, alice, bob, days=4, summary="Later call")
    services.cancel(plan(lead, alice, bob, summary="Cancelled call"), actor=alice)
    body = client_for(bob).get(panel_url(lead)).content.decode()
    assert body.index("Late call") < body.index("Call today") < body.index("Later call")
    assert "Cancelled call" not in body
    assert body.count("activity--overdue") == 1 and "3 days overdue" in body
    assert body.count("activity--today") == 1 and body.count("activity--planned") == 1


def test_schedule_from_the_box_and_refusals_in_red(client_for, bob, alice, lead):
    client = client_for(bob)
    due = (timezone.localdate() + datetime.timedelta(days=2)).isoformat()
    response = client.post(schedule_url(lead), {"activity_type": "meeting", "summary": "Demo",
                                                "due_date": due, "assignee": alice.pk})
    assert response.status_code == 200 and "Demo" in response.content.decode()
    [activity] = Activity.objects.all()
    assert (activity.assignee, activity.requested_by, activity.activity_type) == (
        alice, bob, "meeting")
    bad = client.post(schedule_url(lead), {"activity_type": "call", "due_date": "tomorrow",
                                           "assignee": alice.pk})
    assert bad.status_code == 422 and "Give the due date as YYYY-MM-DD" in bad.content.decode()
    assert Activity.objects.count() == 1


def test_an_assignee_of_another_company_is_refused(client_for, bob, charlie, lead):
    response = client_for(bob).post(schedule_url(lead), {
        "activity_type": "call", "due_date": timezone.localdate().isoformat(),
        "assignee": charlie.pk})
    assert response.status_code == 422
    assert "Choose a user of this record" in response.content.decode()
    assert Activity.objects.count() == 0


def test_mark_done_from_the_box_posts_the_note_out_of_band(client_for, bob, lead):
    activity = plan(lead, bob, bob)
    response = client_for(bob).post(reverse("activities:done", args=[activity.pk]),
                                    {"feedback": "Ada says yes"})
    body = response.content.decode()
    assert response.status_code == 200
    assert 'hx-swap-oob="afterbegin:#chatter-timeline"' in body and "Ada says yes" in body
    activity.refresh_from_db()
    assert activity.state == Activity.State.DONE and activity.feedback == "Ada says yes"


def test_approve_in_the_box_only_for_the_assignee(client_for, bob, dana, lead):
    approval = plan(lead, bob, dana, kind="approval", summary="Discount")
    client = client_for(bob)
    body = client.get(panel_url(lead)).content.decode()
    assert "Waiting for Dana" in body and "Confirm approval" not in body
    refused = client.post(reverse("activities:decide_in_panel", args=[approval.pk]),
                          {"choice": "approve"})
    assert refused.status_code == 422 and "Only the person asked" in refused.content.decode()
    approval.refresh_from_db()
    assert approval.is_planned
    client.logout()
    client = client_for(dana)
    assert "Confirm approval" in client.get(panel_url(lead)).content.decode()
    client.post(reverse("activities:decide_in_panel", args=[approval.pk]),
                {"choice": "approve", "feedback": "ok"})
    approval.refresh_from_db()
    assert approval.state == Activity.State.APPROVED


def test_other_companies_activities_are_404(client_for, charlie, bob, lead):
    activity = plan(lead, bob, bob)
    client = client_for(charlie)
    assert client.get(panel_url(lead)).status_code == 404
    assert client.post(reverse("activities:done", args=[activity.pk])).status_code == 404
    assert client.post(reverse("activities:cancel", args=[activity.pk])).status_code == 404
    activity.refresh_from_db()
    assert activity.is_planned


def test_my_activities_shows_mine_by_default_with_filters(client_for, bob, alice, dana, lead,
                                                          globex_lead, charlie):
    plan(lead, alice, bob, days=-1, summary="Bob overdue")
    plan(lead, alice, bob, days=0, summary="Bob today")
    plan(lead, alice, bob, days=3, summary="Bob later", kind="meeting")
    plan(lead, bob, alice, days=0, summary="Alice today")
    plan(globex_lead, charlie, charlie, summary="Globex secret")
    client = client_for(bob)
    url = reverse("admin:activities_activity_changelist")
    body = client.get(url).content.decode()
    assert "Bob overdue" in body and "Bob today" in body and "Bob later" in body
    assert "Alice today" not in body and "Globex secret" not in body
    overdue = client.get(url, {"due": "overdue"}).content.decode()
    assert "Bob overdue" in overdue and "Bob today" not in overdue
    today = client.get(url, {"due": "today", "assigned": "all"}).content.decode()
    assert "Bob today" in today and "Alice today" in today and "Bob overdue" not in today
    assert "Globex secret" not in today
    meetings = client.get(url, {"type": "meeting"}).content.decode()
    assert "Bob later" in meetings and "Bob today" not in meetings
    assert "My activities" in body  # the sidebar entry


def test_mark_done_from_the_list(client_for, bob, lead):
    activity = plan(lead, bob, bob)
    response = client_for(bob).post(reverse("admin:activities_activity_changelist"), {
        "action": "mark_done", "_selected_action": [activity.pk]}, follow=True)
    assert "Marked done: 1." in response.content.decode()
    activity.refresh_from_db()
    assert activity.state == Activity.State.DONE

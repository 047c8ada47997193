"""Activities in a real browser: schedule one on a record from its chatter panel, see it with
its colour, mark it done with feedback and find the feedback in the chatter; approve an
approval; the phone layout; the My activities list; the approval link's pages."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from mailroom.activities import services
from mailroom.activities.models import Activity
from mailroom.activities.tokens import make_token
from tests.browser.conftest import PHONE

pytestmark = pytest.mark.browser


def open_lead(page, lead):
    page.goto(reverse("admin:crm_lead_change", args=[lead.pk]))
    expect(page.locator("#activities-panel")).to_be_visible()


def test_schedule_and_complete_an_activity_on_a_record(open_page, bob, alice, lead, shot):
    page = open_page(bob)
    open_lead(page, lead)
    expect(page.locator("#activities-panel")).to_contain_text("Nothing planned")
    page.get_by_role("button", name="Schedule").click()
    page.select_option("#activity-type", label="Call")
    page.fill("#activity-summary", "Call Ada about the discount")
    page.fill("#activity-due", "")
    page.get_by_role("button", name="Schedule activity").click()  # no due date: refused
    expect(page.locator("#activities-panel .chatter-error")).to_contain_text("Give a due date")
    page.fill("#activity-due", timezone.localdate().isoformat())
    page.select_option("#activity-assignee", label="Bob")
    page.fill("#activity-note", "She asked for 15%")
    page.get_by_role("button", name="Schedule activity").click()
    item = page.locator(".activity", has_text="Call Ada about the discount")
    expect(item).to_have_class("activity activity--today")
    expect(item.locator(".activity-when")).to_have_text("Today")
    expect(page.locator("#activities-count")).to_have_text("1")
    shot(page, "planned")
    activity = Activity.objects.get()
    assert (activity.assignee, activity.activity_type) == (bob, "call")

    item.get_by_role("button", name="Mark done").click()
    page.fill(f"#activity-feedback-{activity.pk}", "Ada agreed to 10%")
    item.get_by_role("button", name="Done", exact=True).click()
    expect(page.locator("#activities-panel")).to_contain_text("Nothing planned")
    first = page.locator("#chatter-timeline > li").first
    expect(first).to_contain_text("Call done")
    expect(first).to_contain_text("Ada agreed to 10%")
    shot(page, "done")
    activity.refresh_from_db()
    assert activity.state == Activity.State.DONE and activity.feedback == "Ada agreed to 10%"


def test_approve_an_approval_on_a_phone(open_page, bob, dana, lead, shot):
    services.schedule(lead, actor=bob, activity_type="approval", summary="Discount 15%",
                      due_date=timezone.localdate() - datetime.timedelta(days=2),
                      assignee=dana, note="Big customer")
    page = open_page(dana, viewport=PHONE)
    open_lead(page, lead)
    item = page.locator(".activity", has_text="Discount 15%")
    expect(item).to_have_class("activity activity--overdue")
    expect(item.locator(".activity-when")).to_have_text("2 days overdue")
    item.get_by_role("button", name="Approve").click()
    shot(page, "approve-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    item.get_by_role("button", name="Confirm approval").click()
    expect(page.locator("#chatter-timeline > li").first).to_contain_text("Approval approved")
    assert Activity.objects.get().state == Activity.State.APPROVED


def test_my_activities_and_the_approval_link_pages(open_page, bob, dana, lead, shot):
    today = timezone.localdate()
    services.schedule(lead, actor=bob, activity_type="call", summary="Overdue call",
                      due_date=today - datetime.timedelta(days=1), assignee=dana)
    approval = services.schedule(lead, actor=bob, activity_type="approval",
                                 summary="Discount 15%", due_date=today, assignee=dana)
    page = open_page(dana)
    page.goto(reverse("admin:activities_activity_changelist"))
    expect(page.locator("#result_list")).to_contain_text("Overdue call")
    expect(page.locator("#result_list")).to_contain_text("Discount 15%")
    shot(page, "my-activities")
    anonymous = open_page()
    anonymous.goto(reverse("activities:decide", args=[make_token(approval)]) + "?choice=approve")
    expect(anonymous.locator("#approval-summary")).to_have_text("Discount 15%")
    shot(anonymous, "link-confirm")
    anonymous.locator("#approval-approve").click()
    expect(anonymous.locator("#approval-outcome")).to_contain_text("Approved.")
    shot(anonymous, "link-done")
    anonymous.goto(reverse("activities:decide", args=["forged-token"]))
    expect(anonymous.locator("body")).to_contain_text("This link is not valid")
    shot(anonymous, "link-forged")

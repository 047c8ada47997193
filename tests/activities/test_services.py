"""Activity services: schedule, mark done (a note in the chatter), cancel, approve/refuse
(assignee or Administrator only; the requester told by email unless they prefer the inbox)."""

from __future__ import annotations

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from mailroom.activities import services
from mailroom.activities.inbox import count_for_user, items_for_user
from mailroom.activities.models import Activity
from mailroom.chatter.inbox import inbox_source
from mailroom.chatter.models import Message
from mailroom.chatter.services import delete_record, thread_queryset
from mailroom.core.models import NotifyBy
from mailroom.outgoing.models import OutgoingMail
from tests.activities.conftest import mails_to

pytestmark = pytest.mark.django_db


def today() -> datetime.date:
    return timezone.localdate()


def plan(record, actor, assignee, kind="call", days=0, **extra) -> Activity:
    return services.schedule(record, actor=actor, activity_type=kind,
                             due_date=today() + datetime.timedelta(days=days),
                             assignee=assignee, **extra)


def notes(record) -> list[str]:
    return [m.body_html for m in thread_queryset(Message, record)
            if m.message_type == Message.Type.NOTE]


def test_schedule_then_mark_done_posts_the_feedback_in_the_chatter(lead, bob, alice, domain):
    activity = plan(lead, alice, bob, summary="Call Ada about the quote", note="Before noon")
    assert activity.state == Activity.State.PLANNED and activity.requested_by == alice
    assert activity.company_id == lead.company_id and activity.record == lead
    [assigned] = mails_to("bob@acme.example")  # alice planned it for bob: bob is told
    assert "Call Ada about the quote" in assigned.subject
    note = services.mark_done(activity, actor=bob, feedback="She <b>agrees</b> to 10%")
    activity.refresh_from_db()
    assert activity.state == Activity.State.DONE and activity.done_by == bob
    assert activity.feedback == "She <b>agrees</b> to 10%" and activity.done_at
    assert note.message_type == Message.Type.NOTE and note.author_user == bob
    assert "Call done" in note.body_html and "Call Ada about the quote" in note.body_html
    assert "She &lt;b&gt;agrees&lt;/b&gt; to 10%" in note.body_html  # escaped, not markup
    assert notes(lead)[0] == note.body_html
    with pytest.raises(ValidationError, match="already done"):
        services.mark_done(activity, actor=bob)


def test_scheduling_for_yourself_sends_no_mail_and_summary_defaults_to_the_type(lead, bob,
                                                                                  domain):
    activity = plan(lead, bob, bob, kind="meeting")
    assert activity.summary == "Meeting"
    assert OutgoingMail.objects.count() == 0


def test_assignee_must_belong_to_the_records_company(lead, bob, charlie, globex_lead):
    with pytest.raises(ValidationError) as caught:
        plan(lead, bob, charlie)
    assert "assignee" in caught.value.message_dict
    with pytest.raises(PermissionDenied):  # bob cannot plan on globex's record
        plan(globex_lead, bob, bob)
    with pytest.raises(ValidationError) as caught:
        services.schedule(lead, actor=bob, activity_type="nap", due_date=today(), assignee=bob)
    assert "activity_type" in caught.value.message_dict
    assert Activity.objects.count() == 0


def test_cancel_posts_nothing_and_closes_the_activity(lead, bob):
    activity = plan(lead, bob, bob)
    before = len(notes(lead))
    services.cancel(activity, actor=bob)
    activity.refresh_from_db()
    assert activity.state == Activity.State.CANCELLED and len(notes(lead)) == before
    with pytest.raises(ValidationError, match="already cancelled"):
        services.mark_done(activity, actor=bob)


def test_an_approval_is_decided_only_by_its_assignee_or_an_administrator(lead, bob, alice,
                                                                          dana, domain):
    approval = plan(lead, bob, dana, kind="approval", summary="Discount 15%")
    [asked] = mails_to("dana@acme.example")
    assert "/activities/approval/" in asked.body_html and "Approve" in asked.body_html
    with pytest.raises(ValidationError, match="approved or refused"):
        services.mark_done(approval, actor=dana)
    with pytest.raises(PermissionDenied):
        services.approve(approval, actor=bob)  # the requester cannot approve his own request
    approval.refresh_from_db()
    assert approval.is_planned
    note = services.approve(approval, actor=dana, feedback="OK for this customer")
    approval.refresh_from_db()
    assert approval.state == Activity.State.APPROVED and approval.done_by == dana
    assert "Approval approved" in note.body_html and "OK for this customer" in note.body_html
    [told] = mails_to("bob@acme.example")
    assert told.subject == "Approved: Discount 15%" and "OK for this customer" in told.body_html
    assert told.content_type.model == "lead" and told.object_id == lead.pk
    with pytest.raises(ValidationError, match="already approved"):
        services.refuse(approval, actor=dana)
    second = plan(lead, bob, dana, kind="approval", summary="Discount 30%")
    services.refuse(second, actor=alice, feedback="Too much")  # an Administrator may
    second.refresh_from_db()
    assert second.state == Activity.State.REFUSED
    assert [m.subject for m in mails_to("bob@acme.example")][-1] == "Refused: Discount 30%"


def test_a_requester_who_chose_the_inbox_gets_no_email(lead, bob, dana, domain):
    bob.notify_by = NotifyBy.INBOX
    bob.save()
    approval = plan(lead, bob, dana, kind="approval")
    services.approve(approval, actor=dana)
    assert mails_to("bob@acme.example") == []
    dana.notify_by = NotifyBy.INBOX
    dana.save()
    plan(lead, bob, dana, kind="approval")
    assert len(mails_to("dana@acme.example")) == 1  # only the first request was emailed


def test_the_inbox_counts_due_and_overdue_activities_of_the_assignee(lead, bob, alice):
    plan(lead, alice, bob, days=-2, summary="Overdue call")
    plan(lead, alice, bob, days=0, summary="Call today")
    plan(lead, alice, bob, days=5, summary="Later call")
    plan(lead, bob, alice, days=0, summary="Alice's call")
    source = inbox_source("activities")
    assert source is not None and source.count is count_for_user
    assert count_for_user(bob) == 2
    items = items_for_user(bob, 10)
    assert [i.title for i in items] == ["Overdue call", "Call today", "Later call"]
    assert [i.tone for i in items] == ["danger", "warning", ""]
    assert items[0].url == f"/crm/lead/{lead.pk}/change/"


def test_deleting_the_record_deletes_its_activities(lead, bob, alice):
    plan(lead, bob, bob)
    delete_record(lead, actor=alice)
    assert Activity.objects.count() == 0

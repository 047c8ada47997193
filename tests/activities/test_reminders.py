"""The daily reminder: one email per assignee and day (due today and overdue), never twice
however many workers run the task, none for users who chose the inbox, delivered in the
company's branded layout."""

from __future__ import annotations

import datetime
import email
import email.policy
import threading

import pytest
from django.db import connection

from mailroom.activities import services
from mailroom.activities.models import Activity, ReminderSent
from mailroom.activities.reminders import send_reminder, send_reminders
from mailroom.core.cron import TASKS
from mailroom.core.models import NotifyBy
from mailroom.outgoing.models import MailServer, OutgoingMail
from mailroom.outgoing.sending.engine import Sender
from tests.activities.conftest import MORNING, TODAY, _sendable, mails_to
from tests.conftest import make_user
from tests.outgoing import smtp_peer
from tests.outgoing.markers import IN_MEMORY_SQLITE

sink = smtp_peer.sink
DAY = datetime.timedelta(days=1)


def plan(record, assignee, due, summary="Call", kind="call") -> Activity:
    return services.schedule(record, actor=None, activity_type=kind, due_date=due,
                             assignee=assignee, summary=summary)


@pytest.mark.django_db
def test_one_reminder_per_user_and_day_listing_due_and_overdue(lead, bob, alice, domain):
    plan(lead, bob, TODAY - 2 * DAY, "Overdue call")
    plan(lead, bob, TODAY, "Today's meeting", kind="meeting")
    plan(lead, bob, TODAY + DAY, "Tomorrow's call")
    plan(lead, alice, TODAY + 3 * DAY, "Alice later")  # nothing due for alice
    before = OutgoingMail.objects.count()  # the assignment mails
    assert send_reminders(now=MORNING) == 1
    assert send_reminders(now=MORNING + datetime.timedelta(hours=1)) == 0  # next pass
    [mail] = OutgoingMail.objects.filter(subject__contains="due today")
    assert OutgoingMail.objects.count() == before + 1
    assert mail.subject == "2 activities due today or overdue"
    assert list(mail.recipients.values_list("address", flat=True)) == ["bob@acme.example"]
    assert "Overdue call" in mail.body_html and "Today's meeting" in mail.body_html
    assert "Tomorrow" not in mail.body_html and "Alice later" not in mail.body_html
    assert f"/crm/lead/{lead.pk}/change/" in mail.body_html
    [row] = ReminderSent.objects.all()
    assert (row.user, row.day, row.mail, row.activity_count) == (bob, TODAY, mail, 2)
    # the next day brings the next reminder (tomorrow's call is due then)
    assert send_reminders(now=MORNING + DAY) == 1
    assert ReminderSent.objects.filter(user=bob).count() == 2


@pytest.mark.django_db
def test_no_reminder_before_seven_in_the_users_time_zone_nor_for_inbox_users(lead, bob, dana,
                                                                             domain):
    plan(lead, bob, TODAY)
    plan(lead, dana, TODAY)
    bob.timezone = "America/New_York"  # 03:00 there at MORNING
    bob.save()
    dana.notify_by = NotifyBy.INBOX
    dana.save()
    assert send_reminders(now=MORNING) == 0
    assert ReminderSent.objects.count() == 0
    assert send_reminders(now=MORNING + datetime.timedelta(hours=5)) == 1  # 08:00 in New York
    assert [r.user for r in ReminderSent.objects.all()] == [bob]


@pytest.mark.django_db
def test_done_and_cancelled_activities_are_not_reminded(lead, bob, domain):
    done = plan(lead, bob, TODAY)
    services.mark_done(done, actor=bob)
    services.cancel(plan(lead, bob, TODAY - DAY), actor=bob)
    assert send_reminders(now=MORNING) == 0


@pytest.mark.django_db
def test_the_reminder_task_is_registered_with_a_schedule():
    from mailroom.core.cron import DEFAULT_SCHEDULES
    from mailroom.core.steps import discover

    discover()
    assert "activity_reminders" in TASKS and DEFAULT_SCHEDULES["activity_reminders"]


@pytest.mark.django_db
def test_the_reminder_reaches_a_real_smtp_peer_in_the_branded_layout(acme, lead, bob, domain,
                                                                     sink):
    MailServer.objects.create(company=acme, name="sink", host="127.0.0.1", port=sink.port,
                              security="none", auth="none")
    plan(lead, bob, TODAY - DAY, "Send the signed contract")
    assert send_reminders(now=MORNING) == 1
    sender = Sender("test", step_seconds=0, timeout=5)
    try:
        sender.run_once()
    finally:
        sender.close()
    # the assignment mail (the system planned it for bob) went too; the reminder is the other
    [received] = [m for m in sink.messages if "due today" in (m.header("Subject") or "")]
    assert len(sink.messages) == 2
    assert received.rcpt_tos == ["bob@acme.example"]
    parsed = email.message_from_bytes(received.data, policy=email.policy.default)
    assert parsed["Subject"] == "1 activity due today or overdue"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert "Acme Corp" in parsed["From"] and "@acme.example" in parsed["From"]
    html = parsed.get_body(("html",)).get_content()
    text = parsed.get_body(("plain",)).get_content()
    assert "Send the signed contract" in html and "Overdue" in html
    assert "Acme Corp" in html  # the company's branded layout
    assert "Send the signed contract" in text


@IN_MEMORY_SQLITE
@pytest.mark.django_db(transaction=True)
def test_two_workers_racing_send_each_users_reminder_exactly_once(acme, lead, bob, domain):
    users = [bob] + [_sendable(make_user(f"user{n}", [acme], "User")) for n in range(5)]
    for user in users:
        plan(lead, user, TODAY)
        plan(lead, user, TODAY - DAY)
    start = threading.Barrier(3)
    results, errors = [], []

    def worker(run) -> None:
        try:
            start.wait(10)
            results.append(run())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    def same_user_directly():
        # both past the cheap "already sent?" check: the unique row alone decides
        return int(send_reminder(bob, TODAY, list(Activity.objects.filter(assignee=bob))))

    threads = [threading.Thread(target=worker, args=(lambda: send_reminders(now=MORNING),)),
               threading.Thread(target=worker, args=(lambda: send_reminders(now=MORNING),)),
               threading.Thread(target=worker, args=(same_user_directly,))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sum(results) == len(users)
    for user in users:
        assert len([m for m in mails_to(user.email) if "due today" in m.subject]) == 1, user
    assert ReminderSent.objects.count() == len(users)

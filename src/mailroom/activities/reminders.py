"""The daily reminder: one email per assignee and day listing their planned activities due
today or overdue.

"Once per user and day across any number of workers" rests on the database: a
`ReminderSent(user, day)` row (unique together) is inserted in the same transaction as the
mail is queued. A second worker's insert for the same pair waits for the first transaction
(PostgreSQL's unique index; SQLite serialises writers) and then fails with IntegrityError,
so its mail is rolled back with it. The day is the assignee's own (User.timezone), and the
reminder waits until `REMINDER_HOUR` there, so nobody is mailed at midnight.
"""

from __future__ import annotations

import datetime
import logging
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from mailroom.activities import mail
from mailroom.activities.models import Activity, ReminderSent
from mailroom.core.models import NotifyBy, User

log = logging.getLogger("mailroom.activities")

REMINDER_HOUR = 7


class _NoMail(Exception):
    """Nothing could be queued (no sender address): undo the day's row, try next pass."""


def _local_now(user, now: datetime.datetime) -> datetime.datetime:
    try:
        zone = ZoneInfo(user.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return now.astimezone(zone)


def due_activities(user, day: datetime.date):
    return (Activity.objects.filter(assignee=user, state=Activity.State.PLANNED,
                                    due_date__lte=day)
            .select_related("company", "content_type").order_by("due_date", "pk"))


def send_reminders(now: datetime.datetime | None = None) -> int:
    """Every user whose day has reached REMINDER_HOUR and who has something due gets their
    reminder, once per day. Returns how many were queued by this call."""
    now = now or timezone.now()
    users = (User.objects.filter(is_active=True, activities__state=Activity.State.PLANNED)
             .exclude(email="").exclude(notify_by=NotifyBy.INBOX).distinct().order_by("pk"))
    sent = 0
    for user in users:
        local = _local_now(user, now)
        if local.hour < REMINDER_HOUR:
            continue
        day = local.date()
        if ReminderSent.objects.filter(user=user, day=day).exists():
            continue
        activities = list(due_activities(user, day))
        if activities and send_reminder(user, day, activities):
            sent += 1
    return sent


def send_reminder(user, day: datetime.date, activities: list[Activity]) -> bool:
    """Queue `user`'s reminder for `day` unless one was already queued. True if this call
    queued it."""
    companies = {a.company_id: a.company for a in activities}
    company = companies.get(user.current_company_id) or activities[0].company
    lines = [{"activity": a, "record": a.record, "url": _record_url(a)} for a in activities]
    context = {"day": day, "overdue": [x for x in lines if x["activity"].due_date < day],
               "today": [x for x in lines if x["activity"].due_date == day],
               "my_activities_url": reverse("admin:activities_activity_changelist")}
    count = len(activities)
    subject = f"{count} activit{'y' if count == 1 else 'ies'} due today or overdue"
    try:
        with transaction.atomic():
            row = ReminderSent.objects.create(user=user, day=day, activity_count=count)
            queued = mail.send(company, user, subject=subject,
                               template="activities/email/reminder.html", context=context,
                               idempotency_key=f"activity-reminder-{user.pk}-{day.isoformat()}")
            if queued is None:
                raise _NoMail
            row.mail = queued
            row.save(update_fields=["mail"])
    except IntegrityError:
        return False  # another worker sent today's reminder
    except _NoMail:
        return False
    return True


def _record_url(activity: Activity) -> str:
    record = activity.record
    return mail.record_url(record) if record is not None else ""

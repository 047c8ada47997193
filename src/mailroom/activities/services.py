"""Activity services: the only writers of activities.

Each runs in one transaction with an explicit `actor`: `schedule`, `mark_done` (the feedback
goes to the record's chatter as a note), `cancel`, and `approve`/`refuse` for approvals
(only the assignee or an Administrator; the outcome goes to the chatter and, by email, to
the requester). Mails are queued in the same transaction, so they leave only if the change
commits. Anyone who may see the record may schedule, complete or cancel its activities, as
in the chatter.
"""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, linebreaks

from mailroom.activities import mail
from mailroom.activities.models import Activity, ActivityType
from mailroom.activities.tokens import make_token
from mailroom.chatter.models import MailThread, Message
from mailroom.chatter.services import post_message, require_access
from mailroom.core.models import User
from mailroom.core.roles import Role

MAX_FEEDBACK = 10_000


def user_today(user, now: datetime.datetime | None = None) -> datetime.date:
    """Today in the user's time zone (the day "due today" and reminders are counted in)."""
    try:
        zone = ZoneInfo(getattr(user, "timezone", "") or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return (now or timezone.now()).astimezone(zone).date()


def record_of(activity: Activity) -> MailThread:
    record = activity.record
    if record is None:
        raise ValidationError("The record of this activity no longer exists.")
    return record


def assignable_users(company_id: int):
    return User.objects.filter(is_active=True, companies=company_id).order_by(
        "first_name", "last_name", "username")


def can_decide(user, activity: Activity) -> bool:
    """Approve/refuse: the assignee, or an Administrator of the activity's company."""
    if user is None:
        return True
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if not user.is_superuser and activity.company_id not in user.company_ids():
        return False
    return user.pk == activity.assignee_id or user.has_role(Role.ADMINISTRATOR)


def _clean_text(value: str, field: str, limit: int) -> str:
    value = (value or "").strip()
    if "\x00" in value:
        raise ValidationError({field: "Text cannot contain NUL characters."})
    if len(value) > limit:
        raise ValidationError({field: f"At most {limit:,} characters."})
    return value


def schedule(record: MailThread, *, actor, activity_type: str, due_date: datetime.date,
             assignee: User, summary: str = "", note: str = "") -> Activity:
    """Plan an activity on `record` for `assignee` (a user of the record's company). The
    assignee is told by email unless they scheduled it themselves; an approval's mail carries
    the signed Approve/Refuse link."""
    require_access(actor, record)
    errors: dict[str, str] = {}
    if activity_type not in ActivityType.values:
        errors["activity_type"] = "Choose a type of activity."
    if not isinstance(due_date, datetime.date):
        errors["due_date"] = "Give a due date."
    if assignee is None or not assignable_users(record.company_id).filter(
            pk=assignee.pk).exists():
        errors["assignee"] = "Choose a user of this record's company."
    if errors:
        raise ValidationError(errors)
    summary = _clean_text(summary, "summary", 200) or ActivityType(activity_type).label
    note = _clean_text(note, "note", MAX_FEEDBACK)
    content_type = ContentType.objects.get_for_model(record, for_concrete_model=True)
    with transaction.atomic():
        activity = Activity(company_id=record.company_id, content_type=content_type,
                            object_id=record.pk, activity_type=activity_type, summary=summary,
                            note=note, due_date=due_date, assignee=assignee,
                            requested_by=actor)
        activity.full_clean()
        activity.save()
        if actor is None or actor.pk != assignee.pk:
            _tell_assignee(activity, record, actor)
    return activity


def _tell_assignee(activity: Activity, record, actor) -> None:
    context = {"activity": activity, "record": record, "actor": actor,
               "record_url": mail.record_url(record),
               "record_kind": record._meta.verbose_name}
    if activity.is_approval:
        link = reverse("activities:decide", args=[make_token(activity)])
        context.update(approve_url=f"{link}?choice=approve",
                       refuse_url=f"{link}?choice=refuse")
        subject = f"Approval requested: {activity.summary}"
    else:
        subject = f"{activity.get_activity_type_display()} for you: {activity.summary}"
    mail.send(activity.company, activity.assignee, subject=subject[:200],
              template="activities/email/assigned.html", context=context, record=record,
              idempotency_key=f"activity-{activity.pk}-assigned")


def _lock_planned(activity: Activity) -> Activity:
    """The row, locked for this transaction, if still planned; else a clear refusal (someone
    else completed it meanwhile, or a spent email link)."""
    current = Activity.objects.select_for_update().filter(pk=activity.pk).first()
    if current is None:
        raise ValidationError("This activity no longer exists.")
    if not current.is_planned:
        raise ValidationError(f"This activity is already {current.get_state_display().lower()}.")
    return current


def _close(activity: Activity, state: str, actor, feedback: str) -> None:
    activity.state = state
    activity.feedback = feedback
    activity.done_at = timezone.now()
    activity.done_by = actor
    activity.save(update_fields=["state", "feedback", "done_at", "done_by"])


def _note(record, actor, headline: str, activity: Activity, feedback: str) -> Message:
    body = format_html("<p><strong>{}</strong>: {}</p>", headline, activity.summary)
    if feedback:
        body += linebreaks(feedback, autoescape=True)
    return post_message(record, actor=actor, body_html=body, message_type=Message.Type.NOTE)


def mark_done(activity: Activity, *, actor, feedback: str = "") -> Message:
    """Complete an activity; its feedback lands in the record's chatter as a note ("Call
    done: …"). Returns that note. Approvals are approved or refused instead."""
    record = record_of(activity)
    require_access(actor, record)
    if activity.is_approval:
        raise ValidationError("An approval is approved or refused, not marked done.")
    feedback = _clean_text(feedback, "feedback", MAX_FEEDBACK)
    with transaction.atomic():
        current = _lock_planned(activity)
        _close(current, Activity.State.DONE, actor, feedback)
        note = _note(record, actor, f"{current.get_activity_type_display()} done", current,
                     feedback)
    activity.refresh_from_db()
    return note


def cancel(activity: Activity, *, actor) -> Activity:
    """Drop a planned activity (nothing is posted: it did not happen)."""
    record = record_of(activity)
    require_access(actor, record)
    with transaction.atomic():
        current = _lock_planned(activity)
        _close(current, Activity.State.CANCELLED, actor, "")
    activity.refresh_from_db()
    return activity


def decide(activity: Activity, *, actor, approve: bool, feedback: str = "") -> Message:
    """Approve or refuse an approval: only its assignee or an Administrator. The outcome is
    a note in the record's chatter and an email to the requester. Returns the note."""
    record = record_of(activity)
    require_access(actor, record)
    if not activity.is_approval:
        raise ValidationError("Only approval activities are approved or refused.")
    if not can_decide(actor, activity):
        raise PermissionDenied("Only the person asked for this approval, or an "
                               "Administrator, can approve or refuse it.")
    feedback = _clean_text(feedback, "feedback", MAX_FEEDBACK)
    state = Activity.State.APPROVED if approve else Activity.State.REFUSED
    with transaction.atomic():
        current = _lock_planned(activity)
        _close(current, state, actor, feedback)
        note = _note(record, actor, f"Approval {current.get_state_display().lower()}",
                     current, feedback)
        requester = current.requested_by
        if requester is not None and (actor is None or requester.pk != actor.pk):
            subject = f"{current.get_state_display()}: {current.summary}"
            mail.send(current.company, requester, subject=subject[:200],
                      template="activities/email/decided.html",
                      context={"activity": current, "record": record, "actor": actor,
                               "record_url": mail.record_url(record),
                               "record_kind": record._meta.verbose_name},
                      record=record, idempotency_key=f"activity-{current.pk}-decided")
    activity.refresh_from_db()
    return note


def approve(activity: Activity, *, actor, feedback: str = "") -> Message:
    return decide(activity, actor=actor, approve=True, feedback=feedback)


def refuse(activity: Activity, *, actor, feedback: str = "") -> Message:
    return decide(activity, actor=actor, approve=False, feedback=feedback)

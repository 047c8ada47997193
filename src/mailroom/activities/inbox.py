"""The activities inbox source: a user's planned activities, the due and overdue ones
counted on the bell (registered in apps.py)."""

from __future__ import annotations

from django.utils import timezone
from django.utils.text import Truncator

from mailroom.activities.mail import record_url
from mailroom.activities.models import Activity
from mailroom.activities.services import user_today
from mailroom.chatter.inbox import InboxItem


def _mine(user):
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Activity.objects.none()
    return Activity.objects.for_user(user).filter(assignee=user, state=Activity.State.PLANNED)


def count_for_user(user) -> int:
    """Due today or overdue: what needs doing now."""
    return _mine(user).filter(due_date__lte=user_today(user)).count()


def items_for_user(user, limit: int = 50) -> list[InboxItem]:
    today = user_today(user)
    rows = _mine(user).select_related("content_type").order_by("due_date", "pk")[:limit]
    items = []
    for activity in rows:
        record = activity.record
        urgency = activity.urgency(today)
        when = "overdue" if urgency == "overdue" else (
            "due today" if urgency == "today" else f"due {activity.due_date:%d %b %Y}")
        items.append(InboxItem(
            source="activities", key=f"activity-{activity.pk}",
            title=activity.summary,
            summary=Truncator(f"{activity.get_activity_type_display()}, {when}. "
                              f"{activity.note}".strip()).chars(160),
            when=timezone.localtime(activity.created_at),
            url=record_url(record) if record is not None else "",
            record_label=f"{record._meta.verbose_name.capitalize()} — {record}"
                         if record is not None else "",
            unread=urgency != "planned", icon=activity.icon,
            tone={"overdue": "danger", "today": "warning"}.get(urgency, ""),
            extra={"activity_id": activity.pk, "due_date": activity.due_date.isoformat(),
                   "urgency": urgency, "type": activity.activity_type},
        ))
    return items

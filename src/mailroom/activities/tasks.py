"""The hourly reminder task: hourly rather than daily so that each user's morning comes in
their own time zone and a worker that was down catches up within the hour; the
ReminderSent rows make the extra passes send nothing twice."""

from __future__ import annotations

from mailroom.activities.reminders import send_reminders
from mailroom.core.cron import register_task


@register_task("activity_reminders", schedule="20 * * * *")
def activity_reminders() -> str:
    return f"{send_reminders()} activity reminders queued"

"""Activities planned on any record: to-dos, calls, meetings, approvals and their reminders.

An activity hangs off a record with a chatter like the chatter's own rows (company, content
type, object id). Its type is a fixed choice rather than a table: each type has behaviour
in code (an approval is approved or refused instead of marked done, an upload asks for a
document), the issue fixes the list, and a table would need its own admin, company scoping
and migrations for nothing a company can change.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from mailroom.chatter.models import ThreadRow


class ActivityType(models.TextChoices):
    EMAIL = "email", "Email"
    CALL = "call", "Call"
    MEETING = "meeting", "Meeting"
    TODO = "todo", "To-do"
    UPLOAD = "upload", "Upload document"
    APPROVAL = "approval", "Approval"


# Material Symbols names, for the panel, the inbox and the changelist
TYPE_ICONS = {
    ActivityType.EMAIL: "mail", ActivityType.CALL: "call", ActivityType.MEETING: "groups",
    ActivityType.TODO: "check_box", ActivityType.UPLOAD: "upload_file",
    ActivityType.APPROVAL: "approval",
}


class Activity(ThreadRow):
    class State(models.TextChoices):
        PLANNED = "planned", "Planned"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"
        APPROVED = "approved", "Approved"
        REFUSED = "refused", "Refused"

    activity_type = models.CharField("type", max_length=10, choices=ActivityType.choices,
                                     default=ActivityType.TODO)
    summary = models.CharField(max_length=200)
    note = models.TextField(blank=True)
    due_date = models.DateField()
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                 related_name="activities")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+", help_text="Who scheduled it; told the outcome of an approval.")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PLANNED)
    feedback = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    done_at = models.DateTimeField(null=True, blank=True)
    done_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                null=True, blank=True, related_name="+")

    class Meta:
        verbose_name_plural = "activities"
        ordering = ["due_date", "id"]
        indexes = [
            models.Index(fields=["assignee", "state", "due_date"]),
            models.Index(fields=["content_type", "object_id", "state"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_activity_type_display()}: {self.summary}"

    @property
    def is_planned(self) -> bool:
        return self.state == self.State.PLANNED

    @property
    def is_approval(self) -> bool:
        return self.activity_type == ActivityType.APPROVAL

    @property
    def icon(self) -> str:
        return TYPE_ICONS.get(self.activity_type, "event")

    def urgency(self, today) -> str:
        """"overdue", "today" or "planned" (due later), against the viewer's `today`."""
        if self.due_date < today:
            return "overdue"
        return "today" if self.due_date == today else "planned"


class ReminderSent(models.Model):
    """One row per user and day a reminder went out. The unique constraint is what makes the
    reminder go out once however many workers run the task: the row is inserted in the same
    transaction as the mail, and a second insert for the same (user, day) fails."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="+")
    day = models.DateField()
    mail = models.ForeignKey("outgoing.OutgoingMail", on_delete=models.SET_NULL, null=True,
                             blank=True, related_name="+")
    activity_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "day"],
                                               name="activities_one_reminder_per_day")]

    def __str__(self) -> str:
        return f"Reminder to {self.user} for {self.day}"

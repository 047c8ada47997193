"""The chatter: messages, attachments, followers and notifications on any record.

A record joins by inheriting `MailThread`; its rows are found by (content type, object id).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey, GenericRelation
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.utils import timezone

from mailroom.core.scoping import CompanyQuerySet


class MailThread(models.Model):
    """Mixin for records with a chatter. Deleting the record deletes its chatter rows."""

    tracked_fields: tuple[str, ...] = ()

    chatter_messages = GenericRelation("chatter.Message")
    chatter_attachments = GenericRelation("chatter.Attachment")
    chatter_followers = GenericRelation("chatter.Follower")

    class Meta:
        abstract = True

    def tracking_snapshot(self) -> dict[str, str]:
        """Display values of the tracked fields, for "Stage: New → Qualified" lines."""
        values: dict[str, str] = {}
        for name in self.tracked_fields:
            field = self._meta.get_field(name)
            if field.choices:
                value = getattr(self, f"get_{name}_display")()
            elif field.is_relation:
                related = getattr(self, name)
                value = str(related) if related is not None else ""
            else:
                value = getattr(self, name)
                if isinstance(field, models.DecimalField) and value is not None:
                    value = f"{field.to_python(value):,.{field.decimal_places}f}"
                if isinstance(value, bool):
                    value = "Yes" if value else "No"
                value = "" if value is None else str(value)
            values[name] = value
        return values

    def tracked_label(self, name: str) -> str:
        return str(self._meta.get_field(name).verbose_name).capitalize()


class ThreadRow(models.Model):
    """Fields shared by every row hanging off a record."""

    company = models.ForeignKey("core.Company", on_delete=models.CASCADE, related_name="+")
    content_type = models.ForeignKey(ContentType, on_delete=models.CASCADE, related_name="+")
    object_id = models.PositiveBigIntegerField()
    record = GenericForeignKey("content_type", "object_id")

    objects = CompanyQuerySet.as_manager()

    class Meta:
        abstract = True


class Message(ThreadRow):
    class Type(models.TextChoices):
        EMAIL = "email", "Email"
        COMMENT = "comment", "Message"
        NOTE = "note", "Note"
        SYSTEM = "system", "System"

    class Direction(models.TextChoices):
        INCOMING = "in", "Incoming"
        OUTGOING = "out", "Outgoing"
        INTERNAL = "internal", "Internal"

    message_type = models.CharField(max_length=10, choices=Type.choices, default=Type.COMMENT)
    direction = models.CharField(
        max_length=10, choices=Direction.choices, default=Direction.INTERNAL
    )
    author_partner = models.ForeignKey(
        "contacts.Partner", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    author_name = models.CharField(max_length=200, blank=True)
    email_from = models.CharField(max_length=320, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    body_html = models.TextField(blank=True)
    message_id = models.CharField(max_length=998, blank=True, db_index=True)
    in_reply_to = models.CharField(max_length=998, blank=True)
    references = models.TextField(blank=True)
    parent = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="replies"
    )
    date = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-date", "-id"]
        indexes = [models.Index(fields=["content_type", "object_id", "-date"])]

    def __str__(self) -> str:
        return self.subject or f"{self.get_message_type_display()} by {self.author_name}"

    @property
    def is_note(self) -> bool:
        return self.message_type == self.Type.NOTE


class TrackingValue(models.Model):
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="tracking")
    field = models.CharField(max_length=100)
    field_label = models.CharField(max_length=100)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.field_label}: {self.old_value or '—'} → {self.new_value or '—'}"


class Attachment(ThreadRow):
    """A file on a record. Bytes live in the data dir under their SHA-256; rows point at them."""

    message = models.ForeignKey(
        Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="attachments"
    )
    name = models.CharField(max_length=255)
    mimetype = models.CharField(max_length=255, default="application/octet-stream")
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    is_dangerous = models.BooleanField(
        default=False, help_text="An executable, script or macro type: offered only as a "
                                 "download with a warning, never opened in the browser.")
    danger = models.CharField(
        max_length=300, blank=True, default="",
        help_text="Why it is flagged, in plain words (\"the archive scan.rar holds "
                  "scan.pdf.exe\"); shown with the warning.")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["content_type", "object_id"])]

    def __str__(self) -> str:
        return self.name


class Follower(ThreadRow):
    partner = models.ForeignKey("contacts.Partner", on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["content_type", "object_id", "partner"], name="follower_once_per_record"
            )
        ]

    def __str__(self) -> str:
        return str(self.partner)


class Notification(models.Model):
    """One per recipient of a message: a follower, a mentioned user or an internal follower of
    a record that received mail. By email, the outbox fills in what happened to the delivery
    (the status follows the OutgoingRecipient); in Mailroom only, it waits in the user's
    inbox. Either way an office user sees it in the inbox until they mark it read."""

    class Status(models.TextChoices):
        READY = "ready", "Ready to send"
        SENT = "sent", "Sent"
        BOUNCED = "bounced", "Bounced"
        EXCEPTION = "exception", "Failed"
        CANCELLED = "cancelled", "Not emailed"

    class Channel(models.TextChoices):
        EMAIL = "email", "By email"
        INBOX = "inbox", "In Mailroom only"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="notifications")
    partner = models.ForeignKey("contacts.Partner", on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=8, choices=Channel.choices, default=Channel.EMAIL)
    mentioned = models.BooleanField(default=False, help_text="The message @-mentions them.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.READY)
    failure_reason = models.TextField(blank=True)
    is_read = models.BooleanField(default=False)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "partner"], name="notification_once")
        ]
        indexes = [models.Index(fields=["partner", "is_read"], name="notification_inbox")]

    def __str__(self) -> str:
        return f"{self.partner} — {self.get_status_display()}"

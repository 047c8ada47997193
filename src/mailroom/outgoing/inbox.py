"""The outbox's inbox source: the user's own mail that failed and waits for them (retry it,
fix the address or cancel it in the hub). It leaves the inbox when it is retried, sent or
cancelled, so it has nothing to mark read."""

from __future__ import annotations

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from mailroom.chatter.inbox import InboxItem, InboxSource
from mailroom.outgoing.models import OutgoingMail

KEY = "failed_mail"
RECENT = timedelta(days=30)


def _mine(user):
    return OutgoingMail.objects.filter(
        author=user, company_id__in=user.company_ids(), state=OutgoingMail.State.EXCEPTION,
        created_at__gte=timezone.now() - RECENT)


def count(user) -> int:
    return _mine(user).count()


def items(user, limit: int = 50) -> list[InboxItem]:
    rows = (_mine(user).only("id", "subject", "failure_type", "failure_reason", "created_at")
            .order_by("-created_at")[:limit])
    return [InboxItem(
        source=KEY, key=str(mail.pk), title=f"Not sent: {mail.subject or '(no subject)'}",
        summary=f"{mail.get_failure_type_display()}. {mail.failure_reason}".strip()[:180],
        when=mail.created_at,
        url=reverse("admin:outgoing_outgoingmail_change", args=[mail.pk]),
        record_label="Your email", icon="error", tone="danger") for mail in rows]


SOURCE = InboxSource(key=KEY, label="My mail that failed", count=count, items=items,
                     position=30)

"""The chatter's own inbox source: notifications of the contacts that stand for a user —
messages on records they follow, mail that came in on them, @-mentions — and the one writer
that marks them read or unread."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone
from django.utils.text import Truncator

from mailroom.chatter.inbox import InboxItem, InboxSource
from mailroom.chatter.links import record_admin_path
from mailroom.chatter.models import Message, Notification
from mailroom.lib.html_text import html_to_plain
from mailroom.lib.params import parse_id

KEY = "notifications"


def _mine(user):
    """The user's notifications in the companies they still belong to."""
    return (Notification.objects
            .filter(partner__user=user, message__company_id__in=user.company_ids())
            .exclude(message__message_type=Message.Type.SYSTEM))


def count(user) -> int:
    return _mine(user).filter(is_read=False).count()


def record_link(message: Message) -> str:
    content_type = ContentType.objects.get_for_id(message.content_type_id)
    path = record_admin_path(content_type, message.object_id)
    return f"{path}#chatter-message-{message.pk}" if path else ""


def _title(notification: Notification) -> str:
    message = notification.message
    author = message.author_name or "Someone"
    if notification.mentioned:
        return f"{author} mentioned you"
    if message.direction == Message.Direction.INCOMING:
        return f"Email from {author}"
    return f"{author} wrote"


def items(user, limit: int = 50) -> list[InboxItem]:
    rows = (_mine(user).select_related("message", "message__content_type")
            .order_by("is_read", "-message__date", "-id")[:limit])
    result = []
    for notification in rows:
        message = notification.message
        record = message.record
        kind = message.content_type.name.capitalize()
        text = html_to_plain(message.body_html) if message.body_html else ""
        summary = message.subject + (" — " if message.subject and text else "") + text
        failed = notification.status in (Notification.Status.BOUNCED,
                                         Notification.Status.EXCEPTION)
        result.append(InboxItem(
            source=KEY, key=str(notification.pk), title=_title(notification),
            summary=Truncator(" ".join(summary.split())).chars(180),
            when=message.date, url=record_link(message),
            record_label=f"{kind}: {record}" if record is not None else kind,
            unread=not notification.is_read,
            icon="alternate_email" if notification.mentioned else (
                "move_to_inbox" if message.direction == Message.Direction.INCOMING
                else "forum"),
            tone="danger" if failed else ""))
    return result


def mark(user, key: str, read: bool) -> None:
    """Mark one of the user's notifications read or unread (`key` "all": every one)."""
    with transaction.atomic():
        rows = _mine(user)
        if key != "all":
            pk = parse_id(key)
            if pk is None:
                return
            rows = rows.filter(pk=pk)
        Notification.objects.filter(pk__in=rows.values("pk")).update(
            is_read=read, updated_at=timezone.now())


SOURCE = InboxSource(key=KEY, label="Messages and mentions", count=count, items=items,
                     mark=mark, position=10)

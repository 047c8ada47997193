"""Follower email: a message posted on a record reaches its followers' inboxes.

The chatter decides who is told and writes their `Notification` rows; this notifier (registered
with `chatter.notifiers` in templating's `ready()`) queues one mail per person to be told by
email, in post_message's transaction, so the message and its mails commit together.

- **From** is DMARC-safe: "Author Name (via Company)" at the company's default-from address on
  its first alias domain (the author's own domain would fail DMARC at the recipient), or the
  company's address when it has no alias domain.
- **Reply-To** is the record's signed reply address (`outgoing.enqueue` sets it for mail with
  a record), so a reply lands back on the record.
- **References / In-Reply-To** name the record's first message and the message replied to, so
  mail clients thread the notifications of one record together.
- Each mail is addressed to the follower's contact: settle and the bounce rule move that
  follower's `Notification` with the `OutgoingRecipient` (sent, bounced, failed with reason).
- A follower who cannot be emailed (blacklisted, no address) keeps a `Notification` marked
  "Not emailed" with the reason, shown on the message in the chatter.
"""

from __future__ import annotations

from email.utils import formataddr

from django.utils import timezone

from mailroom.chatter.models import Attachment, Message, Notification
from mailroom.chatter.services import thread_queryset
from mailroom.core.blobs import read_blob
from mailroom.outgoing.services import FileToSend, enqueue
from mailroom.routing.models import AliasDomain
from mailroom.templating import layout
from mailroom.templating.context import record_url

# attachments larger than this in total are listed, not attached (a follower's mailbox is
# not a file store; the record keeps them)
MAX_ATTACHED_BYTES = 10 * 1024 * 1024


def sender_address(company) -> str:
    """The address notifications come from: the first alias domain's default-from, else the
    company's own address, else ""."""
    domain = (AliasDomain.objects.filter(company=company).order_by("sequence", "name")
              .first())
    if domain is not None:
        return domain.default_from_email
    return company.email or ""


def _thread_headers(message: Message, record) -> dict[str, str]:
    first = (thread_queryset(Message, record).exclude(pk=message.pk).exclude(message_id="")
             .order_by("date", "id").values_list("message_id", flat=True).first())
    parent_id = message.parent.message_id if message.parent_id and message.parent else ""
    references = [mid for mid in (first, parent_id) if mid]
    if message.direction == Message.Direction.INCOMING and message.message_id:
        references.append(message.message_id)  # the team's copy threads with the customer's
    unique = list(dict.fromkeys(references))  # in order, each once
    return {"References": " ".join(unique), "In-Reply-To": unique[-1]} if unique else {}


def _files(message: Message) -> tuple[list[FileToSend], list[str]]:
    attachments = list(Attachment.objects.filter(message=message).order_by("id"))
    names = [a.name for a in attachments]
    if not attachments or sum(a.size for a in attachments) > MAX_ATTACHED_BYTES:
        return [], names
    files = []
    for item in attachments:
        files.append(FileToSend(name=item.name,
                                content=read_blob(item.sha256),
                                mimetype=item.mimetype))
    return files, names


def _why(notification: Notification, record_label: str) -> str:
    if notification.mentioned:
        return f"You receive this email because you were mentioned on {record_label}."
    return f"You receive this email because you follow {record_label}."


def _subject(message: Message, record) -> str:
    subject = " ".join((message.subject or "").split())
    return subject or f"Re: {record}"[:200]


def email_followers(message: Message, notifications, record, actor) -> None:
    """The chatter notifier: one mail per notification that goes by email."""
    by_email = [n for n in notifications if n.channel == Notification.Channel.EMAIL]
    if not by_email:
        return
    company = record.company
    now = timezone.now()
    skipped: dict[str, list[int]] = {}
    sendable = []
    for notification in by_email:
        partner = notification.partner
        if not partner.email:
            skipped.setdefault("Not emailed: the contact has no email address.",
                               []).append(notification.pk)
        elif partner.is_blacklisted:
            skipped.setdefault(f"Not emailed: {partner.email} is blacklisted.",
                               []).append(notification.pk)
        else:
            sendable.append(notification)
    address = sender_address(company) if sendable else ""
    if sendable and not address:
        skipped.setdefault("Not emailed: the company has no alias domain and no email "
                           "address to send from.", []).extend(n.pk for n in sendable)
        sendable = []
    for reason, ids in skipped.items():
        Notification.objects.filter(pk__in=ids).update(
            status=Notification.Status.CANCELLED, failure_reason=reason, updated_at=now)
    if not sendable:
        return
    author = message.author_name or company.name  # may say "(sender not verified)"
    # the From name is the person's name alone; the body's "… wrote:" keeps any warning
    display = (message.author_partner.name if message.author_partner_id
               else author.split(" <", 1)[0].strip() or author)
    email_from = formataddr((f"{display} (via {company.name})", address))
    headers = _thread_headers(message, record)
    files, names = _files(message)
    subject = _subject(message, record)
    kind = record._meta.verbose_name
    label = f"{kind.capitalize()}: {record}"
    view_url = record_url(record)
    for notification in sendable:
        partner = notification.partner
        internal = getattr(partner, "user_id", None) is not None
        extra = {
            "record_label": label, "record_kind": kind, "author": author,
            "view_url": view_url if internal else "",  # a back-office page: the team only
            "why": _why(notification, label),
            "reply_hint": "Reply to this email to answer on the record.",
            "attachment_names": names if not files else [],
        }
        html = layout.wrap(message.body_html, company=company, subject=subject,
                           lang=partner.language or company.language, layout="notification",
                           extra=extra)
        html, text = layout.finish(html)
        enqueue(company=company, actor=None, email_from=email_from, to=[partner],
                subject=subject, html=html, text=text, attachments=files, record=record,
                chatter_message=message, headers=headers)


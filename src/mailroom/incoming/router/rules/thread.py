"""Replies: find the record a message answers.

In order: In-Reply-To and References against the Message-IDs Mailroom sent and received; the
signed reply token in the address (catchall+<token>@, which survives clients that drop
References); then, for clients like Outlook that strip both, the subject — only for a reply
("Re: …") from an address the thread mailed or heard from, within a bounded time.
"""

from __future__ import annotations

import re
from datetime import timedelta

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from mailroom.incoming.models import InboundMail
from mailroom.incoming.router.context import Context, Destination, Outcome
from mailroom.incoming.router.facts import UNKNOWN, reply_ids, rows_answered
from mailroom.outgoing.models import OutgoingRecipient, recipients_to

NAME = "thread"
_REPLY_PREFIX = re.compile(
    r"^\s*((re|aw|sv|vs|antw|odp|ref|r|fw|fwd|wg|tr|rv)(\[\d+\])?\s*:\s*)+", re.I)


def normalize_subject(subject: str) -> str:
    return re.sub(r"\s+", " ", _REPLY_PREFIX.sub("", subject or "")).strip().lower()


def is_reply_subject(subject: str) -> bool:
    return bool(_REPLY_PREFIX.match(subject or ""))


def apply(ctx: Context) -> Outcome | None:
    found = _by_message_ids(ctx) or _by_token(ctx) or _by_subject(ctx)
    if found is not None:
        ctx.destination = found
        ctx.note(NAME, f"A reply: {found.how}.")
    else:
        ctx.note(NAME, "Not a reply to any known message.")
    return None


def _record(content_type_id, object_id, company_id, facts=None):
    if not content_type_id or not object_id:
        return None
    if facts is not None:
        record = facts.record(content_type_id, object_id, company_id)
        if record is not UNKNOWN:
            return record
    try:
        model = ContentType.objects.get_for_id(content_type_id).model_class()
    except ContentType.DoesNotExist:
        return None
    if model is None:
        return None
    return model._default_manager.filter(pk=object_id, company_id=company_id).first()


def _by_message_ids(ctx: Context) -> Destination | None:
    ids = reply_ids(ctx.head)
    if not ids:
        return None
    company = ctx.mail.company_id
    facts = ctx.read_ahead()
    found = facts.replied(ctx, ids) if facts is not None else UNKNOWN
    if found is UNKNOWN:
        messages, mails = rows_answered({company}, ids)
        found = ({mid: row for (_, mid), row in messages.items()},
                 {mid: row for (_, mid), row in mails.items()})
    messages, mails = found
    for message_id in ids:  # In-Reply-To first, then the newest reference
        message = messages.get(message_id)
        if message is not None:
            record = _record(message.content_type_id, message.object_id, company, facts)
            if record is not None:
                return Destination(f"answers {message_id}", record=record,
                                   parent_message=message)
        mail = mails.get(message_id)
        if mail is not None:
            record = _record(mail.content_type_id, mail.object_id, company, facts)
            if record is not None:
                return Destination(f"answers mail {message_id}", record=record,
                                   parent_message=mail.chatter_message)
    return None


def _by_token(ctx: Context) -> Destination | None:
    for target in ctx.targets:
        if target.thread is None:
            continue
        record = _record(*target.thread, ctx.mail.company_id)
        if record is not None:
            return Destination(f"the reply address {target.address} names the record",
                               record=record)
        ctx.note(NAME, f"The reply address {target.address} names a record that no longer "
                       f"exists.")
    return None


def _by_subject(ctx: Context) -> Destination | None:
    subject = ctx.head.subject
    sender = ctx.sender
    if not sender or not is_reply_subject(subject):
        return None
    wanted = normalize_subject(subject)
    if not wanted:
        return None
    days = int(getattr(settings, "MAILROOM_SUBJECT_THREADING_DAYS", 30))
    since = timezone.now() - timedelta(days=days)
    company = ctx.mail.company_id
    sent = (OutgoingRecipient.objects
            .filter(recipients_to(sender), mail__company_id=company,
                    mail__created_at__gte=since, mail__object_id__isnull=False)
            .select_related("mail").order_by("-mail__created_at")[:50])
    for row in sent:
        if normalize_subject(row.mail.subject) == wanted:
            record = _record(row.mail.content_type_id, row.mail.object_id, company)
            if record is not None:
                return Destination(f"same subject as mail sent to {sender} "
                                   f"(no References: subject fallback)", record=record,
                                   parent_message=row.mail.chatter_message)
    # the messages routed from this sender (by the address the router stored, indexed with
    # the company and the time: Message.email_from__icontains read every incoming message of
    # the period, and matched "bob@x" inside "jimbob@x")
    received = (InboundMail.objects
                .filter(company_id=company, from_address=sender[:320], received_at__gte=since,
                        state=InboundMail.State.DONE, chatter_message__isnull=False)
                .select_related("chatter_message").only("id", "chatter_message")
                .order_by("-received_at")[:50])
    for mail in received:
        message = mail.chatter_message
        if normalize_subject(message.subject) == wanted:
            record = _record(message.content_type_id, message.object_id, company)
            if record is not None:
                return Destination(f"same subject as an earlier message from {sender} "
                                   f"(no References: subject fallback)", record=record,
                                   parent_message=message)
    return None

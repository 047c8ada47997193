"""Chatter services: the only way anything lands in a record's chatter.

`post_message` for messages and notes, `save_record` for creating and editing business
records with Odoo-style tracking lines, and the attachment and follower writers.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterable
from typing import IO
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.db.models.functions import Lower
from django.dispatch import Signal
from django.http import Http404
from django.utils import timezone

from mailroom.chatter.models import (
    Attachment,
    Follower,
    MailThread,
    Message,
    Notification,
    TrackingValue,
)
from mailroom.chatter.notifiers import partner_of_user, run_notifiers
from mailroom.core import saving
from mailroom.core.blobs import store_blob, store_bytes
from mailroom.core.prepared import Prepared
from mailroom.core.roles import Role
from mailroom.core.rows import RowWriter
from mailroom.core.services import audit, snapshot
from mailroom.lib.html import sanitize_html, text_to_html
from mailroom.lib.html_text import html_to_plain
from mailroom.lib.ids import make_message_id

# Sent by save_record inside its transaction, after the row and its chatter lines are
# written, with record, created, changes ({field name: (old, new)} raw values; empty when
# created) and actor. Inside the transaction on purpose: whatever a receiver writes (an
# automated email in the outbox) commits or rolls back with the change that caused it.
record_saved = Signal()


def message_id_domain() -> str:
    return urlsplit(settings.BASE_URL).hostname or "mailroom.invalid"


def can_access(user, record: models.Model) -> bool:
    """May `user` see `record`? The same rule as the querysets: company membership."""
    if user is None:
        return True  # system actions (worker, router)
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return user.is_superuser or record.company_id in user.company_ids()


def require_access(user, record: models.Model) -> None:
    if not can_access(user, record):
        raise PermissionDenied("You cannot access this record.")


def get_record_for_user(content_type_id: int, object_id: int, user) -> MailThread:
    """Load a chatter-enabled record the user may see, or raise Http404 (never 403, so the
    existence of other companies' rows does not leak)."""
    try:
        content_type = ContentType.objects.get_for_id(content_type_id)
    except ContentType.DoesNotExist:
        raise Http404("No such record type.") from None
    model = content_type.model_class()
    if model is None or not issubclass(model, MailThread):
        raise Http404("No such record type.")
    record = model.objects.for_user(user).filter(pk=object_id).first()
    if record is None:
        raise Http404("No such record.")
    return record


def _thread_fields(record: models.Model) -> dict:
    return {
        "company_id": record.company_id,
        "content_type": ContentType.objects.get_for_model(record, for_concrete_model=True),
        "object_id": record.pk,
    }


def post_message(
    record: MailThread,
    *,
    actor=None,
    body_html: str = "",
    body_text: str = "",
    subject: str = "",
    message_type: str = Message.Type.COMMENT,
    direction: str | None = None,
    author_partner=None,
    author_name: str = "",
    email_from: str = "",
    message_id: str | None = None,
    in_reply_to: str = "",
    references: str = "",
    parent: Message | None = None,
    attachments: Iterable[Attachment] = (),
    tracking: Iterable[tuple[str, str, str, str]] = (),
    notify: bool = True,
    date=None,
) -> Message:
    """Post on a record's chatter. HTML is sanitized here, whatever its source.

    Messages notify the record's followers (except the author; mail that came in notifies
    only the team); notes stay internal except for the users they @-mention. `notify=False`
    for what nobody should hear about (automatic mail, seeded history).
    """
    require_access(actor, record)
    if message_type not in Message.Type.values:
        raise ValidationError({"message_type": f"Unknown message type {message_type!r}."})
    body = sanitize_html(body_html) if body_html else text_to_html(body_text)
    if direction is None:
        direction = (
            Message.Direction.INTERNAL
            if message_type in (Message.Type.NOTE, Message.Type.SYSTEM)
            else Message.Direction.OUTGOING
        )
    if not author_name:
        if author_partner is not None:
            author_name = author_partner.name
        elif actor is not None:
            author_name = actor.get_full_name() or actor.get_username()
        else:
            author_name = "Mailroom"
    tracking = list(tracking)
    attachments = list(attachments)
    if not body.strip() and not tracking and not attachments and not subject:
        raise ValidationError({"body": "The message is empty."})
    # savepoint=False: inside a caller's transaction (the router's, save_record's) this block
    # adds no SAVEPOINT/RELEASE pair (two round trips, ~0.4 ms on PostgreSQL); an error still
    # rolls back to the caller's nearest savepoint, and callers that go on after an error
    # wrap the call in an atomic() of their own (templating.services, outgoing settle)
    with transaction.atomic(savepoint=False):
        message = saving.insert(Message(  # Message.objects.create, the INSERT built once
            **_thread_fields(record),
            message_type=message_type,
            direction=direction,
            author_partner=author_partner,
            author_user=actor,
            author_name=author_name[:200],
            email_from=email_from,
            subject=subject,
            body_html=body,
            message_id=message_id or make_message_id(message_id_domain()),
            in_reply_to=in_reply_to,
            references=references,
            parent=parent,
            date=date or timezone.now(),
        ))
        if tracking:
            TrackingValue.objects.bulk_create(
                TrackingValue(message=message, field=f, field_label=label, old_value=old,
                              new_value=new)
                for f, label, old, new in tracking
            )
        attachment_ids = [a.pk for a in attachments]
        if attachment_ids:
            Attachment.objects.filter(pk__in=attachment_ids, **_thread_fields(record)).update(
                message=message
            )
        if notify and message_type != Message.Type.SYSTEM:
            notifications = _notify(message, record, actor, author_partner)
            if notifications:
                run_notifiers(message, notifications, record, actor)
    return message


def log_sent_emails(entries: Iterable[tuple[MailThread, str, str]], *, actor=None
                    ) -> list[int]:
    """One outgoing-email entry per (record, subject, body HTML) on each record's chatter,
    written as plain rows (a mass send logs thousands; core.rows.RowWriter): what
    `post_message` writes for an email nobody is notified about, the body sanitized the same
    way. Runs in the caller's transaction; the messages' ids come back, in order."""
    entries = list(entries)
    if not entries:
        return []
    for record, _subject, _body in entries:
        require_access(actor, record)
    author_name = ((actor.get_full_name() or actor.get_username())
                   if actor is not None else "Mailroom")[:200]
    domain = message_id_domain()
    writer = RowWriter(Message, ("company_id", "content_type_id", "object_id", "subject",
                                 "body_html", "message_id"), {
        "message_type": Message.Type.EMAIL, "direction": Message.Direction.OUTGOING,
        "author_user_id": getattr(actor, "pk", None), "author_name": author_name,
        "date": timezone.now()})
    content_types: dict[type, int] = {}
    rows = []
    for record, subject, body in entries:
        model = type(record)
        if model not in content_types:
            content_types[model] = ContentType.objects.get_for_model(
                record, for_concrete_model=True).pk
        rows.append((record.company_id, content_types[model], record.pk, subject,
                     sanitize_html(body) if body else "", make_message_id(domain)))
    writer.insert(rows)
    ids: dict[str, int] = {}
    wanted = [row[-1] for row in rows]
    for first in range(0, len(wanted), 500):
        ids.update(Message.objects.filter(message_id__in=wanted[first:first + 500])
                   .values_list("message_id", "pk"))
    return [ids[message_id] for message_id in wanted]


# "@linus" or "@linus.example" in a message or note: an office user's login name
_MENTION = re.compile(r"(?<![\w.@/])@([A-Za-z0-9_][A-Za-z0-9_.+-]{0,149})")


def mentioned_users(record: models.Model, body_html: str) -> list:
    """Active office users of the record's company @-mentioned in `body_html`."""
    names = {name.rstrip(".").lower() for name in _MENTION.findall(html_to_plain(body_html))}
    if not names:
        return []
    return list(get_user_model().objects
                .filter(is_active=True, companies=record.company_id)
                .annotate(login=Lower("username")).filter(login__in=names))


_ANYONE_FOLLOWS = Prepared(lambda company, content_type, pk: Follower.objects.filter(
    company_id=company, content_type_id=content_type, object_id=pk).values_list("pk")[:1])
_TEAM_FOLLOWS = Prepared(lambda company, content_type, pk: Follower.objects.filter(
    company_id=company, content_type_id=content_type, object_id=pk,
    partner__user__isnull=False).values_list("pk")[:1])


def _notify(message: Message, record: MailThread, actor, author_partner) -> list[Notification]:
    """Write who is told about `message`, each once, never the author:

    - a message (not a note) reaches every follower; mail that came *in* reaches only the
      internal followers (the team), never the external sender or other customers;
    - an @-mentioned user is told about a message or a note, and follows the record from now.

    Office users are told by email or in Mailroom only, as they chose (User.notify_by);
    contacts by email. Runs inside post_message's transaction."""
    author_ids = {getattr(author_partner, "pk", None)}
    if actor is not None and getattr(actor, "pk", None):
        own = partner_of_user(actor, record.company, create=False)
        author_ids.add(getattr(own, "pk", None))
    mentioned: dict[int, object] = {}
    # only an office user mentions: an email from outside cannot subscribe the team
    can_mention = actor is not None and "@" in message.body_html
    for user in mentioned_users(record, message.body_html) if can_mention else ():
        partner = partner_of_user(user, record.company, create=True)
        if partner is not None and partner.pk not in author_ids:
            mentioned[partner.pk] = partner
            Follower.objects.get_or_create(**_thread_fields(record), partner=partner)
    partners: dict[int, object] = dict(mentioned)
    if not message.is_note:
        thread = _thread_fields(record)
        incoming = message.direction == Message.Direction.INCOMING
        # most records that receive mail have no internal follower: a bare existence query,
        # compiled once (the router posts thousands), before the three-table one
        if (_TEAM_FOLLOWS if incoming else _ANYONE_FOLLOWS).exists(
                record.company_id, thread["content_type"].pk, record.pk):
            followers = Follower.objects.filter(**thread)
            if incoming:
                followers = followers.filter(partner__user__isnull=False)
            for follower in followers.select_related("partner__user"):
                partners.setdefault(follower.partner_id, follower.partner)
    rows = []
    for partner_id, partner in partners.items():
        if partner_id in author_ids:
            continue
        user = getattr(partner, "user", None)
        inbox_only = user is not None and getattr(user, "notify_by", "email") == "inbox"
        rows.append(Notification(
            message=message, partner=partner, mentioned=partner_id in mentioned,
            channel=Notification.Channel.INBOX if inbox_only else Notification.Channel.EMAIL))
    return Notification.objects.bulk_create(rows) if rows else []


def log_note(record: MailThread, *, actor, body_html: str = "", body_text: str = "",
             attachments: Iterable[Attachment] = ()) -> Message:
    return post_message(record, actor=actor, body_html=body_html, body_text=body_text,
                        message_type=Message.Type.NOTE, attachments=attachments)


def tracking_lines(record: MailThread, before: dict[str, str]) -> list[tuple[str, str, str, str]]:
    after = record.tracking_snapshot()
    return [
        (name, record.tracked_label(name), before.get(name, ""), after[name])
        for name in record.tracked_fields
        if before.get(name, "") != after[name]
    ]


def save_record(record: MailThread, *, actor, created_message: str = "",
                trusted: Iterable[str] = (), log_creation: bool = True) -> MailThread:
    """Create or update a business record: company check, validation, tracking in the chatter.

    Apps with their own rules (quotation totals, confirm) call this after applying them.
    `trusted` names foreign keys the caller set itself to rows it has just read or written
    (the router's company and the contact it found or made): every other check runs, but
    the database is not asked again whether those rows exist. `log_creation=False`: a
    record made on the way to another that tells its story (the router's new contact, named
    in the new ticket's one system message) gets no "created" line of its own.
    """
    if actor is not None and not actor.is_superuser:
        if record.company_id not in actor.company_ids():
            raise PermissionDenied("You cannot write records of that company.")
    _full_clean(record, trusted=tuple(trusted))
    with transaction.atomic(savepoint=False):  # as post_message: no savepoint when nested
        creating = record.pk is None
        before = {}
        if not creating:
            previous = type(record).objects.filter(pk=record.pk).first()
            if previous is None:
                raise Http404("No such record.")
            before = previous.tracking_snapshot()
            record.save()
        else:  # record.save(), the INSERT built once (a model with its own save(): that)
            saving.insert(record)
        changes: dict[str, tuple] = {}
        if creating:
            if log_creation:
                label = created_message or f"{record._meta.verbose_name.capitalize()} created"
                post_message(record, actor=actor, body_text=label,
                             message_type=Message.Type.SYSTEM, notify=False)
        else:
            lines = tracking_lines(record, before)
            if lines:
                post_message(record, actor=actor, message_type=Message.Type.SYSTEM,
                             tracking=lines, notify=False)
            changes = {f.name: (getattr(previous, f.attname), getattr(record, f.attname))
                       for f in record._meta.concrete_fields
                       if getattr(previous, f.attname) != getattr(record, f.attname)}
        record_saved.send(sender=type(record), record=record, created=creating,
                          changes=changes, actor=actor)
    return record


def _full_clean(record: models.Model, *, trusted: tuple[str, ...]) -> None:
    """Model.full_clean, with the field checks of `trusted` foreign keys left out (they are
    existence queries); the model's clean(), unique checks and constraints still run on all."""
    if not trusted:
        record.full_clean()
        return
    errors: dict = {}
    for step in (lambda: record.clean_fields(exclude=set(trusted)), record.clean):
        try:
            step()
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
    failed = {name for name in errors if name != "__all__"}  # as full_clean: unique checks
    for step in (record.validate_unique, record.validate_constraints):  # skip failed fields
        try:
            step(exclude=failed)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
    if errors:
        raise ValidationError(errors)


def set_state(record: MailThread, value: str, *, actor, field: str = "stage") -> MailThread:
    """Move a record along its state field; the chatter gets a "Stage: New → Solved" line."""
    allowed = [choice for choice, _ in record._meta.get_field(field).choices]
    if value not in allowed:
        raise ValidationError({field: f"Unknown {field} {value!r}."})
    if getattr(record, field) == value:
        return record
    setattr(record, field, value)
    return save_record(record, actor=actor)


def delete_record(record: MailThread, *, actor) -> None:
    """Delete a record and its chatter (Administrators only). The chatter that told its story
    goes with it, so an audit row keeps what was deleted and by whom.

    Apps with other rules (cancel instead of delete) provide `delete_<model>` in their
    services, which the API and the admin prefer.
    """
    require_access(actor, record)
    if actor is not None and not actor.has_role(Role.ADMINISTRATOR):
        raise PermissionDenied("Only administrators can delete records.")
    with transaction.atomic():
        audit(f"{record._meta.label_lower}.delete", actor=actor, obj=record,
              company=getattr(record, "company", None), before=snapshot(record))
        record.delete()


def store_attachment(record: MailThread, *, actor, name: str, stream: IO[bytes],
                     mimetype: str = "", message: Message | None = None,
                     max_bytes: int | None = None) -> Attachment:
    """Store a file on a record. Identical bytes are kept once on disk.

    `max_bytes` defaults to the upload limit (MAX_ATTACHMENT_BYTES); received mail passes
    the inbound limit, since a part can never be larger than the message it came in."""
    import mimetypes

    require_access(actor, record)
    name = os.path.basename((name or "").replace("\\", "/")).strip()[:255] or "attachment"
    if isinstance(stream, io.BytesIO):  # already in memory: a blob the store holds costs a stat
        sha256, size = store_bytes(stream.getvalue(), max_bytes=max_bytes)
    else:
        sha256, size = store_blob(stream, max_bytes=max_bytes)
    mimetype = (mimetype or mimetypes.guess_type(name)[0] or "application/octet-stream")[:255]
    return saving.insert(Attachment(
        **_thread_fields(record), message=message, name=name, mimetype=mimetype,
        size=size, sha256=sha256, uploaded_by=actor if actor and actor.pk else None,
    ))


def follow(record: MailThread, partner, *, actor) -> Follower:
    require_access(actor, record)
    if partner.company_id != record.company_id:
        raise ValidationError({"partner": "The contact belongs to another company."})
    follower, _ = Follower.objects.get_or_create(**_thread_fields(record), partner=partner)
    return follower


def follow_all(record: MailThread, partners: Iterable, *, actor) -> None:
    """Make each of `partners` a follower of `record` (those who follow already stay as
    they are): one statement, no savepoint, for callers that need no Follower rows back (the
    router makes a new record's sender follow it)."""
    require_access(actor, record)
    partners = list(partners)
    if any(partner.company_id != record.company_id for partner in partners):
        raise ValidationError({"partner": "The contact belongs to another company."})
    saving.insert_many([Follower(**_thread_fields(record), partner=partner)
                        for partner in partners], ignore_conflicts=True)


def unfollow(record: MailThread, partner, *, actor) -> None:
    require_access(actor, record)
    Follower.objects.filter(**_thread_fields(record), partner=partner).delete()


def thread_queryset(model_cls, record: models.Model) -> models.QuerySet:
    """Rows of `model_cls` (Message, Attachment, Follower) on `record`."""
    return model_cls.objects.filter(**_thread_fields(record))

"""Many mails of one kind into the outbox, at mass-send speed (the list's "Send email…").

`enqueue_many` builds a model instance per mail and checks every field of every mail; at
thousands of mails that costs more than rendering them. A `BulkOutbox` checks once what is
the same for the whole send (purpose, priority, server, delivery hook) and once per distinct
value what repeats (the sender, the reply-to), checks per mail only what differs (the
subject's shape, each recipient's address), and writes plain rows with core.rows.RowWriter
(COPY on PostgreSQL). The rules are `_build`'s: the same checks, the same error names
(`mails.<n>.<field>`), the same recipient rows (`_recipient`: a blacklisted contact's row
fails with the reason); a test proves a mail written here equals one from `enqueue_many`.
Attachments and extra headers are not taken: mails with those go through `enqueue_many`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models.functions import Lower
from django.utils import timezone

from mailroom.contacts.models import Partner
from mailroom.core.rows import RowWriter
from mailroom.lib.addresses import domain_of
from mailroom.lib.ids import make_message_id
from mailroom.outgoing import checks
from mailroom.outgoing.hooks import known_hooks
from mailroom.outgoing.models import FailureType, OutgoingMail, OutgoingRecipient, Purpose
from mailroom.outgoing.services import _check_actor, _recipients
from mailroom.routing.services import reply_address

_MAIL_VARYING = ("company_id", "email_from", "reply_to", "subject", "body_html", "body_text",
                 "message_id", "content_type_id", "object_id", "chatter_message_id",
                 "idempotency_key", "scheduled_at", "next_attempt_at", "state",
                 "failure_type", "failure_reason")
_RECIPIENT_VARYING = ("mail_id", "kind", "address", "name", "partner_id", "status",
                      "failure_type", "failure_reason")


@dataclass
class _Mail:
    values: tuple
    recipients: list[OutgoingRecipient] = field(default_factory=list)


class BulkOutbox:
    def __init__(self, *, actor=None, purpose: str = Purpose.BULK,
                 priority: int = OutgoingMail.Priority.LOW, server=None, on_sent: str = "",
                 auto_delete: bool = False, now: datetime | None = None) -> None:
        if purpose not in (Purpose.TRANSACTIONAL, Purpose.BULK):
            raise ValidationError({"purpose": "Use transactional or bulk."})
        if priority not in OutgoingMail.Priority.values:
            raise ValidationError({"priority": "Use 0 (immediate) to 3 (low)."})
        if on_sent and on_sent not in known_hooks():
            raise ValidationError({"on_sent": f"Unknown delivery hook {on_sent!r}."})
        self.actor, self.server = actor, server
        self.now = now or timezone.now()
        self.mails: list[_Mail] = []
        self._checked: dict[tuple[str, str], str | None] = {}  # (field, value): error
        self._companies: set[int] = set()
        self._writer = RowWriter(OutgoingMail, _MAIL_VARYING, {
            "priority": priority, "purpose": purpose, "server_id": getattr(server, "pk", None),
            "author_id": actor.pk if actor is not None and actor.pk else None,
            "auto_delete": auto_delete, "on_sent": on_sent, "created_at": self.now})
        self._recipient_writer = RowWriter(OutgoingRecipient, _RECIPIENT_VARYING)

    def partners_for(self, company, addresses: Iterable[str]) -> dict[str, Partner]:
        """The company's contacts by lower-cased address, for the plain addresses of a batch
        (one query per 500, as `enqueue_many` does)."""
        wanted = sorted({a.lower() for a in addresses if a})
        found: dict[str, Partner] = {}
        for first in range(0, len(wanted), 500):
            for partner in Partner.objects.annotate(email_lower=Lower("email")).filter(
                    company=company, email_lower__in=wanted[first:first + 500]):
                found[partner.email_lower] = partner
        return found

    def _once(self, name: str, value: str, check) -> None:
        key = (name, value)
        if key not in self._checked:
            try:
                check(name, value)
            except ValidationError as exc:
                self._checked[key] = exc
            else:
                self._checked[key] = None
        if self._checked[key] is not None:
            raise self._checked[key]

    def add(self, *, company, email_from: str, to: Sequence = (), cc: Sequence = (),
            subject: str = "", html: str = "", text: str = "", content_type_id=None,
            object_id=None, chatter_message_id=None, reply_to: str = "",
            idempotency_key: str | None = None, scheduled_at: datetime | None = None,
            partners: dict | None = None) -> None:
        """Check one mail and keep its rows for `write()`. ValidationError names the field
        as `_build` does (`to.0.address`, `email_from`…); nothing is kept then."""
        if company.pk not in self._companies:
            _check_actor(self.actor, company)
            if self.server is not None and self.server.company_id != company.pk:
                raise ValidationError({"server": "The server belongs to another company."})
            self._companies.add(company.pk)
        checks.one_line("subject", subject)
        if not email_from:
            raise ValidationError({"email_from": "A sender address is required."})
        self._once("email_from", email_from, checks.mailbox)
        if not reply_to and content_type_id is not None:
            reply_to = reply_address(company.pk, content_type_id, object_id)
        if reply_to:
            self._once("reply_to", reply_to, checks.mailboxes)
        recipients = [*_recipients("to", to, company, partners if partners is not None else {}),
                      *_recipients("cc", cc, company, partners if partners is not None else {})]
        if not recipients:
            raise ValidationError({"to": "At least one recipient is required."})
        if not (html or text):
            raise ValidationError({"html": "The email has no body."})
        state, failure_type, failure_reason = OutgoingMail.State.OUTGOING, "", ""
        if all(r.status == OutgoingRecipient.Status.FAILED for r in recipients):
            state, failure_type = OutgoingMail.State.EXCEPTION, FailureType.BLACKLISTED
            failure_reason = "Every recipient is blacklisted."
        sender = email_from.rsplit("<", 1)[1].rstrip(">").strip() if "<" in email_from \
            else email_from
        self.mails.append(_Mail((
            company.pk, email_from, reply_to, subject, html, text,
            make_message_id(domain_of(sender)), content_type_id, object_id,
            chatter_message_id, idempotency_key or None, scheduled_at,
            max(scheduled_at or self.now, self.now), state, failure_type, failure_reason),
            recipients))

    def write(self) -> list[int]:
        """Insert the mails and their recipients (in the caller's transaction); their ids,
        in the order they were added."""
        if not self.mails:
            return []
        self._writer.insert(mail.values for mail in self.mails)
        message_ids = [mail.values[6] for mail in self.mails]
        ids: dict[str, int] = {}
        for first in range(0, len(message_ids), 500):
            ids.update(OutgoingMail.objects.filter(
                message_id__in=message_ids[first:first + 500]).values_list("message_id", "id"))
        self._recipient_writer.insert(
            (ids[mail.values[6]], r.kind, r.address, r.name, r.partner_id, r.status,
             r.failure_type, r.failure_reason)
            for mail in self.mails for r in mail.recipients)
        written = [ids[m] for m in message_ids]
        self.mails = []
        return written

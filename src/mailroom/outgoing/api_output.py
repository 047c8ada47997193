"""What the outbox API answers: the email schemas (summary, full, list) and the functions
that turn an OutgoingMail into them. Read by outgoing/api.py and templating/api.py.

No `from __future__ import annotations` here: ninja reads the schemas' annotations.
"""

from datetime import datetime
from typing import Any

from ninja import Schema
from pydantic import Field

from mailroom.core import record_types
from mailroom.outgoing.models import OutgoingMail

PRIORITIES = {"immediate": OutgoingMail.Priority.IMMEDIATE, "high": OutgoingMail.Priority.HIGH,
              "normal": OutgoingMail.Priority.NORMAL, "low": OutgoingMail.Priority.LOW}
PRIORITY_NAMES = {value: name for name, value in PRIORITIES.items()}


class EmailRecordOut(Schema):
    type: str
    id: int


class EmailRecipientOut(Schema):
    kind: str
    name: str
    address: str
    partner_id: int | None
    status: str
    failure_type: str
    failure_reason: str
    smtp_code: int | None
    sent_at: datetime | None


class AttemptOut(Schema):
    started_at: datetime
    server_id: int | None
    server_name: str
    outcome: str
    smtp_code: int | None
    smtp_reply: str
    duration_ms: int


class EmailAttachmentOut(Schema):
    name: str
    mimetype: str
    size: int
    content_id: str


class EmailSummary(Schema):
    id: int
    company_id: int
    state: str
    priority: str
    purpose: str
    message_id: str
    email_from: str
    reply_to: str
    subject: str
    record: EmailRecordOut | None
    server_id: int | None
    used_server_id: int | None
    idempotency_key: str | None
    created_at: datetime
    scheduled_at: datetime | None
    expires_at: datetime | None
    next_attempt_at: datetime
    sent_at: datetime | None
    attempt_count: int
    failure_type: str
    failure_reason: str
    uncertain: bool = Field(description="A worker died mid-send: it may have arrived twice.")
    recipients: list[EmailRecipientOut]


class EmailOut(EmailSummary):
    body_html: str
    body_text: str
    headers: dict[str, Any]
    is_automatic: bool
    attachments: list[EmailAttachmentOut]
    attempts: list[AttemptOut]


class EmailList(Schema):
    count: int
    limit: int
    offset: int
    items: list[EmailSummary]


def _record_link(mail: OutgoingMail) -> dict | None:
    if mail.content_type_id is None or mail.object_id is None:
        return None
    model = mail.content_type.model_class()
    record_type = record_types.for_model(model) if model is not None else None
    key = record_type.key if record_type else f"{mail.content_type.app_label}." \
                                               f"{mail.content_type.model}"
    return {"type": key, "id": mail.object_id}


def summary_out(mail: OutgoingMail) -> dict:
    return {
        "id": mail.pk, "company_id": mail.company_id, "state": mail.state,
        "priority": PRIORITY_NAMES.get(mail.priority, str(mail.priority)),
        "purpose": mail.purpose, "message_id": mail.message_id, "email_from": mail.email_from,
        "reply_to": mail.reply_to, "subject": mail.subject, "record": _record_link(mail),
        "server_id": mail.server_id, "used_server_id": mail.used_server_id,
        "idempotency_key": mail.idempotency_key, "created_at": mail.created_at,
        "scheduled_at": mail.scheduled_at, "expires_at": mail.expires_at,
        "next_attempt_at": mail.next_attempt_at, "sent_at": mail.sent_at,
        "attempt_count": mail.attempt_count, "failure_type": mail.failure_type,
        "failure_reason": mail.failure_reason,
        "uncertain": mail.was_uncertain or mail.state == OutgoingMail.State.UNCERTAIN,
        "recipients": [
            {"kind": r.kind, "name": r.name, "address": r.address, "partner_id": r.partner_id,
             "status": r.status, "failure_type": r.failure_type,
             "failure_reason": r.failure_reason, "smtp_code": r.smtp_code,
             "sent_at": r.sent_at}
            for r in mail.recipients.all()
        ],
    }


def email_out(mail: OutgoingMail) -> dict:
    return {
        **summary_out(mail),
        "body_html": mail.body_html, "body_text": mail.body_text, "headers": mail.headers,
        "is_automatic": mail.is_automatic,
        "attachments": [{"name": a.name, "mimetype": a.mimetype, "size": a.size,
                         "content_id": a.content_id} for a in mail.attachments.all()],
        "attempts": [
            {"started_at": a.started_at, "server_id": a.server_id,
             "server_name": a.server_name, "outcome": a.outcome, "smtp_code": a.smtp_code,
             "smtp_reply": a.smtp_reply, "duration_ms": a.duration_ms}
            for a in mail.attempts.all()
        ],
    }

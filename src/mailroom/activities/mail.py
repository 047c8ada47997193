"""The emails activities send: an assignment (with the approval links), an approval's
outcome to its requester, and the daily reminder.

Each is rendered from a template here, put in the company's branded layout
(`templating.layout.wrap`/`finish`, as the composer does) and queued with
`outgoing.services.enqueue` in the caller's transaction. A user who chose "In Mailroom
only" (`User.notify_by`) gets no email: the inbox shows it to them.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse

from mailroom.core.models import NotifyBy
from mailroom.outgoing.models import OutgoingMail
from mailroom.outgoing.services import enqueue
from mailroom.routing.models import AliasDomain
from mailroom.templating.layout import finish, wrap

log = logging.getLogger("mailroom.activities")


def wants_email(user) -> bool:
    return bool(user is not None and user.is_active and user.email
                and user.notify_by != NotifyBy.INBOX)


def system_sender(company) -> str:
    """The company's notification address: its first alias domain's default sender, else the
    company address, else "" (no mail then)."""
    domain = AliasDomain.objects.filter(company=company).order_by("sequence", "name").first()
    if domain is not None:
        return f"{company.name} <{domain.default_from_email}>"
    return f"{company.name} <{company.email}>" if company.email else ""


def record_url(record) -> str:
    meta = record._meta
    try:
        return reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[record.pk])
    except NoReverseMatch:
        return reverse("admin:index")


def send(company, user, *, subject: str, template: str, context: dict,
         record=None, idempotency_key: str | None = None) -> OutgoingMail | None:
    """Queue one branded mail to `user`; None when they want none or the company has no
    sender address (logged)."""
    if not wants_email(user):
        return None
    sender = system_sender(company)
    if not sender:
        log.warning("activities: no sender address for %s; %r not emailed to user %s",
                    company, subject, user.pk)
        return None
    body = render_to_string(template, {**context, "user": user, "company": company})
    html = wrap(body, company=company, subject=subject,
                lang=user.language or company.language, layout="branded")
    html, text = finish(html)
    try:
        with transaction.atomic():
            return enqueue(company=company, email_from=sender,
                           to=[(user.get_full_name() or user.username, user.email)],
                           subject=subject, html=html, text=text, record=record,
                           is_automatic=True, idempotency_key=idempotency_key)
    except ValidationError as exc:  # an address the outbox refuses never undoes the action
        log.warning("activities: %r not emailed to user %s: %s", subject, user.pk,
                    "; ".join(exc.messages))
        return None

"""Template helpers showing a chatter message's outgoing mail: failed, delayed, queued."""

from __future__ import annotations

from django import template

from mailroom.core.roles import Role
from mailroom.outgoing.models import OutgoingMail
from mailroom.outgoing.views import reason_for_state

register = template.Library()

SHOWN = ("outgoing", "sending", "deferred", "exception", "cancelled", "uncertain")


def _query(message_ids):
    return (OutgoingMail.objects.filter(chatter_message_id__in=message_ids)
            .filter(state__in=SHOWN).order_by("created_at", "id")
            .only("id", "state", "failure_type", "failure_reason", "next_attempt_at",
                  "chatter_message_id", "subject", "was_uncertain"))


@register.simple_tag
def prefetch_outgoing_mails(messages) -> str:
    """One query for a page of the timeline: mails worth showing, per message."""
    messages = [m for m in messages if getattr(m, "message_type", "system") != "system"]
    if not messages:
        return ""
    by_message: dict[int, list] = {m.pk: [] for m in messages}
    for mail in _query(list(by_message)):
        by_message[mail.chatter_message_id].append(mail)
    for message in messages:
        message._outgoing_mails = by_message[message.pk]
    return ""


@register.simple_tag
def outgoing_mails_of(message) -> list:
    cached = getattr(message, "_outgoing_mails", None)
    if cached is not None:
        return cached
    if getattr(message, "message_type", "system") == "system" or not message.pk:
        return []
    return list(_query([message.pk]))


@register.simple_tag(takes_context=True)
def is_mail_manager(context) -> bool:
    request = context.get("request")
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.has_role(Role.MAIL_MANAGER))


@register.filter
def reason_now(reason: str, state: str) -> str:
    """A mail's failure reason in words true for its state now (no "it will be retried" once
    nothing will retry it)."""
    return reason_for_state(reason, state)

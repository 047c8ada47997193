"""POST /hooks/feedback/<server token>/: where a provider posts complaints and bounces.

No login and no CSRF token (the provider cannot have one): the unguessable token names the
server and the provider's signature proves the sender, checked before anything in the body is
trusted. Every refusal is a 4xx with a plain-text reason; an event about mail we cannot find
is a 200 with a note, because providers retry anything else.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse
from django.http.request import RawPostDataException
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from mailroom.core.services import audit
from mailroom.outgoing.feedback import mailgun, reports, sendgrid, ses, sns
from mailroom.outgoing.feedback.reports import Refused
from mailroom.outgoing.models import FeedbackKind, MailServer

log = logging.getLogger("mailroom.feedback")


def max_bytes() -> int:
    return int(getattr(settings, "MAILROOM_FEEDBACK_MAX_BYTES", 2_000_000))


def _text(status: int, text: str) -> HttpResponse:
    return HttpResponse(text.rstrip() + "\n", status=status,
                        content_type="text/plain; charset=utf-8")


def _body(request) -> bytes:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise Refused(400, "Bad Content-Length.") from None
    if length > max_bytes():
        raise Refused(413, f"The body is larger than {max_bytes()} bytes.")
    try:
        body = request.body
    except RawPostDataException:  # a multipart form, already parsed by a middleware
        raise Refused(415, "Post JSON, not a form.") from None
    if not body:
        raise Refused(400, "The body is empty.")
    return body


@csrf_exempt
@require_POST
def receive(request, token: str):
    server = MailServer.objects.filter(feedback_token=token).exclude(
        feedback_kind=FeedbackKind.NONE).select_related("company").first()
    if server is None:
        return _text(404, "No feedback webhook at this address.")
    try:
        body = _body(request)
        lines = _handle(server, request, body)
    except Refused as refusal:
        log.info("feedback webhook of server %s refused: %s", server.pk, refusal.reason)
        return _text(refusal.status, refusal.reason)
    return _text(200, "\n".join(lines) or "Nothing to do.")


def _handle(server: MailServer, request, body: bytes) -> list[str]:
    if server.feedback_kind == FeedbackKind.SENDGRID:
        sendgrid.verify(server.feedback_secret, request.headers, body)
        return reports.apply(server, sendgrid.parse(body))
    if server.feedback_kind == FeedbackKind.MAILGUN:
        mailgun.verify(server.feedback_secret, request.headers, body)
        return reports.apply(server, mailgun.parse(body))
    message = sns.load(body)
    sns.verify(message)  # network I/O (the certificate), outside any transaction
    topic = str(message.get("TopicArn", ""))[:300]
    if server.feedback_topic and topic != server.feedback_topic:
        # Amazon signs every topic's messages: a topic of someone else's AWS account, once
        # it knew this address, must not report bounces or complaints here
        raise Refused(403, f"This webhook takes notifications from the SNS topic "
                           f"{server.feedback_topic} only, not from {topic or 'no topic'}. "
                           "To move to another topic, empty the server's SNS topic first.")
    if message["Type"] == "SubscriptionConfirmation":
        sns.confirm_subscription(message)
        with transaction.atomic():
            _pin_topic(server, topic)
            audit("mailserver.feedback_subscribed", actor=None, obj=server,
                  after={"topic": topic})
        return [f"Subscribed to {topic or 'the topic'}."]
    if message["Type"] == "UnsubscribeConfirmation":
        return ["Unsubscribe confirmation noted; nothing to do."]
    if not server.feedback_topic:  # subscribed before topics were kept: the first one
        with transaction.atomic():
            if _pin_topic(server, topic):
                audit("mailserver.feedback_topic_pinned", actor=None, obj=server,
                      after={"topic": topic})
    return reports.apply(server, ses.parse(message))


def _pin_topic(server: MailServer, topic: str) -> bool:
    """The server takes this topic's notifications only from now on, unless one was pinned
    meanwhile; True when this call pinned it."""
    pinned = MailServer.objects.filter(pk=server.pk, feedback_topic="").update(
        feedback_topic=topic)
    if pinned:
        server.feedback_topic = topic
    return bool(pinned)

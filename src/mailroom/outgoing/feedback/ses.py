"""Amazon SES bounce and complaint notifications, delivered by SNS (sns.py verifies them).

Documented at https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html and
https://docs.aws.amazon.com/ses/latest/dg/notification-examples.html: the SNS `Message` is a
JSON object with `notificationType` (`eventType` when it comes from event publishing)
Bounce, Complaint or Delivery, a `mail` object and a `bounce` or `complaint` object.
`bounce.bounceType` is Permanent (hard), Transient (soft) or Undetermined (hard, as a
report that does not say counts in the router); recipients are `bouncedRecipients[]` /
`complainedRecipients[]` `.emailAddress`. SES rewrites the Message-ID it sends with, so the
mail is found by the original headers (`mail.headers` X-Mailroom-ID / Message-ID, or
`mail.commonHeaders.messageId`) — turn "Include original headers" on.
"""

from __future__ import annotations

import json

from mailroom.core.tokens import MAILROOM_ID_HEADER
from mailroom.outgoing.feedback.reports import BOUNCE, COMPLAINT, IGNORE, Refused, Report, smtp_code


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def parse(sns_message: dict) -> list[Report]:
    """The reports in a verified SNS Notification."""
    try:
        event = json.loads(sns_message.get("Message", ""))
    except ValueError:
        raise Refused(400, "The SNS Message is not an SES notification (not JSON).") from None
    if not isinstance(event, dict):
        raise Refused(400, "The SNS Message is not an SES notification.")
    kind = str(event.get("notificationType") or event.get("eventType") or "")
    key = sns_message.get("MessageId", "")[:150]
    mail = _dict(event.get("mail"))
    headers = {str(h.get("name", "")).lower(): str(h.get("value", ""))
               for h in _list(mail.get("headers")) if isinstance(h, dict)}
    message_ids = [v for v in (headers.get("message-id"),
                               _dict(mail.get("commonHeaders")).get("messageId")) if v]
    mailroom_ids = [headers[MAILROOM_ID_HEADER.lower()]] \
        if headers.get(MAILROOM_ID_HEADER.lower()) else []

    def report(address: str, **fields) -> Report:
        return Report(key=key, address=address, message_ids=[str(m) for m in message_ids],
                      mailroom_ids=mailroom_ids, **fields)

    if kind == "Complaint":
        complaint = _dict(event.get("complaint"))
        feedback_type = str(complaint.get("complaintFeedbackType") or "abuse")
        return [report(str(r.get("emailAddress", "")), kind=COMPLAINT,
                       feedback_type=feedback_type)
                for r in _list(complaint.get("complainedRecipients")) if isinstance(r, dict)]
    if kind == "Bounce":
        bounce = _dict(event.get("bounce"))
        hard = bounce.get("bounceType") != "Transient"
        subtype = str(bounce.get("bounceSubType") or "")
        return [report(str(r.get("emailAddress", "")), kind=BOUNCE, hard=hard,
                       reason=(str(r.get("diagnosticCode") or "") or
                               f"{bounce.get('bounceType', '')} bounce ({subtype})")[:2000],
                       smtp_code=smtp_code(r.get("status")))
                for r in _list(bounce.get("bouncedRecipients")) if isinstance(r, dict)]
    return [report("", kind=IGNORE,
                   note=f"an SES {kind or 'nameless'} notification is not a complaint or a "
                        f"bounce.")]

"""SendGrid's signed Event Webhook.

Documented at
https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features
(signature) and https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event
(payload): the body is a JSON array of events; `X-Twilio-Email-Event-Webhook-Signature` is a
base64 DER ECDSA signature (P-256, SHA-256) over the `X-Twilio-Email-Event-Webhook-Timestamp`
value followed by the raw body, checked with the public key shown under the signed webhook
settings. Each event has `event`, `email`, `sg_event_id`, `smtp-id` (the Message-ID the mail
was sent with) and the custom args at top level (`mailroom_id`, if the sender set it).

`spamreport` is a complaint; `bounce` is a hard bounce unless its `type` is `blocked` (the
receiving server refused this time: soft); `dropped` is SendGrid not sending because of its
own suppression lists — ignored with a note (it did not reach anyone); the rest is ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings

from mailroom.outgoing.feedback.config import sendgrid_public_key
from mailroom.outgoing.feedback.reports import BOUNCE, COMPLAINT, IGNORE, Refused, Report, smtp_code

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


def max_age() -> int:
    return int(getattr(settings, "MAILROOM_FEEDBACK_MAX_AGE", 600))


def verify(secret: str, headers, body: bytes) -> None:
    signature = headers.get(SIGNATURE_HEADER, "")
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    if not signature or not timestamp:
        raise Refused(403, f"Missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}.")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise Refused(403, "The webhook timestamp is not a number of seconds.")
    if abs(time.time() - int(timestamp)) > max_age():
        raise Refused(403, "The webhook timestamp is too old (or in the future): refused as "
                           "a possible replay.")
    try:
        key = sendgrid_public_key(secret)
        key.verify(base64.b64decode(signature, validate=True), timestamp.encode() + body,
                   ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error):
        raise Refused(403, "The SendGrid signature does not match.") from None


def parse(body: bytes) -> list[Report]:
    try:
        events = json.loads(body)
    except ValueError:
        raise Refused(400, "The body is not JSON.") from None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise Refused(400, "SendGrid posts a JSON array of events.")
    return [_report(event, index) for index, event in enumerate(events)]


def _text(event: dict, name: str) -> str:
    value = event.get(name)
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _report(event: dict, index: int) -> Report:
    kind = _text(event, "event")
    event_id = _text(event, "sg_event_id") or \
        f"{_text(event, 'sg_message_id')}:{kind}:{_text(event, 'timestamp')}:{index}"
    report = Report(key=event_id[:200], kind=IGNORE, address=_text(event, "email"),
                    message_ids=[m for m in [_text(event, "smtp-id")] if m],
                    mailroom_ids=[m for m in [_text(event, "mailroom_id")] if m])
    if kind == "spamreport":
        report.kind, report.feedback_type = COMPLAINT, "abuse"
    elif kind == "bounce":
        blocked = _text(event, "type") == "blocked"
        report.kind, report.hard = BOUNCE, not blocked
        report.reason = (_text(event, "reason") or _text(event, "bounce_classification")
                         or ("Blocked" if blocked else "Bounced"))[:2000]
        report.smtp_code = smtp_code(_text(event, "status"))
    elif kind == "dropped":
        report.note = (f"SendGrid dropped the mail without sending it "
                       f"({_text(event, 'reason') or 'no reason given'}).")
    else:
        report.note = f"a {kind or 'nameless'} event is not a complaint or a bounce."
    return report

"""Mailgun's webhooks.

Documented at https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks
(signature) and https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/webhook-payloads
(payload): a JSON body `{"signature": {"timestamp", "token", "signature"}, "event-data": {…}}`;
`signature` is the hex HMAC-SHA256 of timestamp + token keyed with the HTTP webhook signing
key. Only the signature object is read before it is verified. `event-data.event` is
`complained` (a complaint) or `failed` with `severity` permanent (hard bounce) or temporary
(soft); the mail is named by `event-data.message.headers.message-id` (no angle brackets) and
the recipient by `event-data.recipient`; `event-data.id` identifies the event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from mailroom.outgoing.feedback.reports import BOUNCE, COMPLAINT, IGNORE, Refused, Report, smtp_code
from mailroom.outgoing.feedback.sendgrid import max_age


def _load(body: bytes) -> dict:
    try:
        data = json.loads(body)
    except ValueError:
        raise Refused(400, "The body is not JSON.") from None
    if not isinstance(data, dict):
        raise Refused(400, "Mailgun posts a JSON object.")
    return data


def verify(secret: str, headers, body: bytes) -> None:
    signature = _load(body).get("signature")
    if not isinstance(signature, dict):
        raise Refused(403, "The Mailgun signature is missing.")
    timestamp, token, digest = (str(signature.get(k) or "") for k in
                                ("timestamp", "token", "signature"))
    if not (timestamp and token and digest) or not timestamp.isdigit() or len(timestamp) > 12:
        raise Refused(403, "The Mailgun signature is incomplete.")
    if abs(time.time() - int(timestamp)) > max_age():
        raise Refused(403, "The webhook timestamp is too old (or in the future): refused as "
                           "a possible replay.")
    expected = hmac.new(secret.strip().encode(), (timestamp + token).encode(),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, digest.lower()):
        raise Refused(403, "The Mailgun signature does not match.")


def parse(body: bytes) -> list[Report]:
    data = _load(body)
    event = data.get("event-data")
    if not isinstance(event, dict):
        raise Refused(400, "The Mailgun payload has no event-data.")
    message = event.get("message") if isinstance(event.get("message"), dict) else {}
    headers = message.get("headers") if isinstance(message.get("headers"), dict) else {}
    variables = event.get("user-variables") if isinstance(event.get("user-variables"),
                                                          dict) else {}
    token = str((data.get("signature") or {}).get("token") or "")
    kind = str(event.get("event") or "")
    report = Report(key=str(event.get("id") or token)[:200], kind=IGNORE,
                    address=str(event.get("recipient") or ""),
                    message_ids=[str(headers["message-id"])] if headers.get("message-id")
                    else [],
                    mailroom_ids=[str(variables["mailroom_id"])] if variables.get("mailroom_id")
                    else [])
    if kind == "complained":
        report.kind = COMPLAINT
    elif kind == "failed":
        status = event.get("delivery-status") if isinstance(event.get("delivery-status"),
                                                            dict) else {}
        report.kind = BOUNCE
        report.hard = event.get("severity") != "temporary"
        report.reason = str(status.get("description") or status.get("message")
                            or event.get("reason") or "")[:2000]
        report.smtp_code = smtp_code(status.get("code"))
    else:
        report.note = f"a {kind or 'nameless'} event is not a complaint or a bounce."
    return [report]

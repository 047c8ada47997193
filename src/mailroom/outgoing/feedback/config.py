"""A server's feedback webhook as its admin page shows it: the address to paste into the
provider, what to configure there, and the check of the verification key on save."""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key
from django.conf import settings
from django.core.exceptions import ValidationError
from django.urls import reverse

from mailroom.outgoing.models import FeedbackKind, MailServer

HELP = {
    FeedbackKind.NONE: "No webhook: complaints and bounces come back only as mail (ARF/DSN).",
    FeedbackKind.SES: (
        "In Amazon SNS, create a topic and an HTTPS subscription to the address above; "
        "Mailroom confirms the subscription itself. In Amazon SES, send the identity's (or the "
        "configuration set's) Bounce and Complaint notifications to that topic, with original "
        "headers included. No key is needed: SNS messages are verified with Amazon's "
        "certificate."),
    FeedbackKind.SENDGRID: (
        "In SendGrid, Settings → Mail Settings → Event Webhook: paste the address above as the "
        "HTTP POST URL, select the Bounced, Blocked, Dropped and Spam Reports events and turn "
        "on Signed Event Webhook. Paste its verification key (the public key) below."),
    FeedbackKind.MAILGUN: (
        "In Mailgun, Sending → Webhooks: add the address above for Permanent Failure, "
        "Temporary Failure and Spam Complaints. Paste the HTTP webhook signing key "
        "(Settings → API Security) below."),
}


def webhook_path(server: MailServer) -> str:
    return reverse("feedback_hooks:receive", args=[server.feedback_token])


def webhook_url(server: MailServer) -> str:
    return settings.BASE_URL.rstrip("/") + webhook_path(server)


def sendgrid_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The key as SendGrid shows it (base64 DER, no PEM frame) or as PEM; P-256 only."""
    text = (text or "").strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode())
        else:
            key = load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValueError("This is not SendGrid's verification key (an ECDSA public key).") \
            from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("SendGrid's verification key is an ECDSA P-256 public key.")
    return key


def check(server: MailServer, stored: MailServer | None = None) -> None:
    """The verification key fits the kind (a form error naming the field, never a 500)."""
    secret = server.feedback_secret or (stored.feedback_secret if stored is not None else "")
    if server.feedback_kind == FeedbackKind.SENDGRID:
        if not secret:
            raise ValidationError({"feedback_secret": "Paste the verification key SendGrid "
                                                      "shows for the signed Event Webhook."})
        try:
            sendgrid_public_key(secret)
        except ValueError as exc:
            raise ValidationError({"feedback_secret": str(exc)}) from exc
    elif server.feedback_kind == FeedbackKind.MAILGUN and not secret.strip():
        raise ValidationError({"feedback_secret": "Paste Mailgun's HTTP webhook signing key."})

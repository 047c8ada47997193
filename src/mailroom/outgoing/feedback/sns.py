"""The Amazon SNS envelope: its signature, its signing certificate and subscription confirmation.

Documented at https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
and …/sns-verify-signature-of-message-verify-message-signature.html: the string to sign is
"Name\\nvalue\\n" for Message, MessageId, Subject (if present), Timestamp, TopicArn, Type of a
Notification, and Message, MessageId, SubscribeURL, Timestamp, Token, TopicArn, Type of a
(Un)SubscriptionConfirmation; `Signature` is the base64 RSA PKCS#1 v1.5 signature, SHA1 for
SignatureVersion 1 and SHA256 for 2, made with the key of the X.509 certificate at
`SigningCertURL`.

Mailroom only fetches URLs that match MAILROOM_SNS_URL_PATTERN — by default
`https://sns.<region>.amazonaws.com/…` (the certificate and the SubscribeURL alike) — with
no redirects, a timeout and a size limit; certificates are cached in the process.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
from collections import OrderedDict
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings

from mailroom.outgoing.feedback.reports import Refused

DEFAULT_URL_PATTERN = r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/"
NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
CONFIRMATION_FIELDS = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn",
                       "Type")
TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
MAX_FETCH = 64 * 1024
_CACHE_SIZE = 32
_certificates: OrderedDict[str, rsa.RSAPublicKey] = OrderedDict()
_lock = threading.Lock()


def allowed_url(url: str) -> bool:
    pattern = getattr(settings, "MAILROOM_SNS_URL_PATTERN", DEFAULT_URL_PATTERN)
    parts = urlsplit(url or "")
    return bool(re.match(pattern, url or "")) and not parts.username and not parts.password \
        and "@" not in parts.netloc


def load(body: bytes) -> dict:
    try:
        message = json.loads(body)
    except ValueError:
        raise Refused(400, "The body is not JSON.") from None
    if not isinstance(message, dict) or message.get("Type") not in TYPES:
        raise Refused(400, "This is not an Amazon SNS message.")
    if not all(isinstance(v, str) for v in message.values()):
        raise Refused(400, "An SNS message has only text values.")
    return message


def _fetch(url: str) -> bytes:
    if not allowed_url(url):
        raise Refused(403, "The URL is not an Amazon SNS address.")
    try:
        with httpx.Client(timeout=10, follow_redirects=False) as client, \
                client.stream("GET", url) as response:
            if response.status_code != 200:
                raise Refused(403, f"{urlsplit(url).netloc} answered {response.status_code}.")
            data = b""
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > MAX_FETCH:
                    raise Refused(403, "The answer from Amazon SNS is too large.")
            return data
    except httpx.HTTPError as exc:
        raise Refused(403, f"Amazon SNS could not be reached ({type(exc).__name__}).") from None


def _public_key(url: str) -> rsa.RSAPublicKey:
    if not allowed_url(url):  # before the cache too: the setting may have changed
        raise Refused(403, "The URL is not an Amazon SNS address.")
    with _lock:
        if url in _certificates:
            _certificates.move_to_end(url)
            return _certificates[url]
    if not urlsplit(url).path.endswith(".pem"):
        raise Refused(403, "The signing certificate URL is not a .pem file.")
    try:
        key = x509.load_pem_x509_certificate(_fetch(url)).public_key()
    except ValueError:
        raise Refused(403, "The signing certificate cannot be read.") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise Refused(403, "The signing certificate does not hold an RSA key.")
    with _lock:
        _certificates[url] = key
        while len(_certificates) > _CACHE_SIZE:
            _certificates.popitem(last=False)
    return key


def string_to_sign(message: dict) -> bytes:
    fields = NOTIFICATION_FIELDS if message.get("Type") == "Notification" \
        else CONFIRMATION_FIELDS
    return "".join(f"{name}\n{message[name]}\n" for name in fields
                   if name in message).encode()


def verify(message: dict) -> None:
    version = message.get("SignatureVersion")
    if version not in ("1", "2"):
        raise Refused(403, "Unknown SNS SignatureVersion.")
    required = NOTIFICATION_FIELDS if message["Type"] == "Notification" \
        else CONFIRMATION_FIELDS
    if any(name not in message for name in required if name != "Subject"):
        raise Refused(400, "The SNS message lacks a signed field.")
    try:
        signature = base64.b64decode(message.get("Signature", ""), validate=True)
    except binascii.Error:
        raise Refused(403, "The SNS signature is not base64.") from None
    key = _public_key(message.get("SigningCertURL", ""))
    digest = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303 - SNS v1
    try:
        key.verify(signature, string_to_sign(message), padding.PKCS1v15(), digest)
    except InvalidSignature:
        raise Refused(403, "The SNS signature does not match.") from None


def confirm_subscription(message: dict) -> None:
    """Visit the SubscribeURL of a verified SubscriptionConfirmation."""
    _fetch(message.get("SubscribeURL", ""))

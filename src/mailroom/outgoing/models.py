"""Outgoing mail: servers, the outbox (one row per email), recipients and SMTP attempts.

The outbox is the queue. A worker claims rows with a lease; every state change is written by
`outgoing.services` or the sender, never by views.
"""

from __future__ import annotations

import secrets

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.db.models.lookups import Exact, In
from django.utils.timezone import now

from mailroom.core.mail_servers import ConnectionStatus, MailServerBase
from mailroom.core.scoping import CompanyOwned
from mailroom.core.secrets import EncryptedTextField


class Purpose(models.TextChoices):
    TRANSACTIONAL = "transactional", "Transactional"
    BULK = "bulk", "Bulk (mass mailing)"
    BOTH = "both", "Both"


class FailureType(models.TextChoices):
    """Reasons a user understands; shown in the hub and the chatter."""

    INVALID_RECIPIENT = "invalid_recipient", "Invalid recipient"
    REFUSED_SENDER = "refused_sender", "Sender refused"
    UNREACHABLE = "unreachable", "Server unreachable"
    AUTHENTICATION = "authentication", "Authentication failed"
    TLS = "tls", "TLS / certificate problem"
    TOO_LARGE = "too_large", "Message too large"
    REJECTED = "rejected", "Rejected by the recipient's server"
    BLACKLISTED = "blacklisted", "Recipient blacklisted"
    EXPIRED = "expired", "Expired before it could be sent"
    NO_SERVER = "no_server", "No outgoing server matches"
    STORAGE = "storage", "Attachment file store problem"
    HARD_BOUNCE = "hard_bounce", "Bounced: address does not work"
    SOFT_BOUNCE = "soft_bounce", "Bounced: temporary problem (mailbox full…)"
    UNKNOWN = "unknown", "Unknown error"


class FeedbackKind(models.TextChoices):
    """Which provider posts complaints and bounces to the server's webhook (outgoing/feedback)."""

    NONE = "none", "None"
    SES = "ses", "Amazon SES via SNS"
    SENDGRID = "sendgrid", "SendGrid event webhook"
    MAILGUN = "mailgun", "Mailgun webhook"


def new_feedback_token() -> str:
    """The unguessable part of a server's webhook address (never its pk)."""
    return secrets.token_urlsafe(24)


class MailServer(MailServerBase):
    """An SMTP server the company sends through."""

    class Security(models.TextChoices):
        NONE = "none", "None (plain text — loopback relays only)"
        STARTTLS = "starttls", "STARTTLS"
        SSL = "ssl", "SSL/TLS (implicit)"

    class Auth(models.TextChoices):
        NONE = "none", "None"
        PASSWORD = "password", "Username and password"
        XOAUTH2 = "xoauth2", "OAuth 2 (Gmail / Microsoft 365)"
        CERTIFICATE = "certificate", "Client certificate"

    Status = ConnectionStatus

    host = models.CharField(max_length=255)
    port = models.PositiveIntegerField(default=587, validators=[MaxValueValidator(65535)])
    security = models.CharField(max_length=10, choices=Security.choices,
                                default=Security.STARTTLS)
    verify_certificate = models.BooleanField(
        default=True, help_text="Leave on. Turning it off lets anyone on the path read mail.")
    auth = models.CharField("authentication", max_length=12, choices=Auth.choices,
                            default=Auth.PASSWORD)
    client_certificate = models.TextField("client certificate (PEM)", blank=True)
    client_key = EncryptedTextField("client private key (PEM)", blank=True)
    from_filter = models.TextField(
        blank=True,
        help_text="Addresses or domains this server may send for, comma-separated "
                  "(e.g. 'billing@acme.com, acme.com'). Empty: any sender.",
    )
    sequence = models.PositiveIntegerField(
        "priority", default=10, help_text="Lower is tried first among matching servers.")
    purpose = models.CharField(max_length=14, choices=Purpose.choices, default=Purpose.BOTH)
    rate_per_minute = models.PositiveIntegerField(null=True, blank=True)
    rate_per_hour = models.PositiveIntegerField(null=True, blank=True)
    rate_per_day = models.PositiveIntegerField(null=True, blank=True)
    max_per_connection = models.PositiveIntegerField(
        default=100, validators=[MinValueValidator(1)],
        help_text="Reconnect after this many messages.")
    max_connections = models.PositiveIntegerField(
        default=4, validators=[MinValueValidator(1), MaxValueValidator(64)],
        help_text="Concurrent connections per worker.")
    max_message_size = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Bytes. Empty: the limit the server announces (SIZE).")
    # results of the last "Test connection"
    test_status = models.CharField(max_length=10, choices=ConnectionStatus.choices,
                                   default=ConnectionStatus.NOT_TESTED)
    tested_at = models.DateTimeField(null=True, blank=True)
    test_message = models.TextField(blank=True)
    announced_size_limit = models.PositiveBigIntegerField(null=True, blank=True)
    # circuit breaker, shared by all workers through the database (with consecutive_failures
    # and last_error from the base)
    circuit_open_until = models.DateTimeField(null=True, blank=True)
    # the provider's complaint and bounce webhook (outgoing/feedback): who posts, the key that
    # proves it (SendGrid: the ECDSA public key; Mailgun: the HTTP webhook signing key; SES:
    # none, SNS messages carry a certificate) and the token in the address they post to
    feedback_kind = models.CharField(
        "provider feedback webhook", max_length=10, choices=FeedbackKind.choices,
        default=FeedbackKind.NONE,
        help_text="When this server is a provider's relay: the provider posts spam complaints "
                  "and bounces to the webhook address shown below.")
    feedback_secret = EncryptedTextField("webhook verification key", blank=True)
    feedback_token = models.CharField(max_length=64, unique=True, default=new_feedback_token,
                                      editable=False)
    feedback_topic = models.CharField(
        "SNS topic", max_length=300, blank=True,
        help_text="Amazon SES: notifications are taken from this SNS topic only. The first "
                  "subscription Mailroom confirms sets it; empty it to let another topic "
                  "subscribe.")

    SECRET_FIELDS = (*MailServerBase.SECRET_FIELDS, "client_key", "feedback_secret")

    class Meta:
        ordering = ["sequence", "name"]
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="mailserver_unique_name"),
        ]

    def oauth_scope(self) -> str:
        if self.oauth_provider == self.OAuthProvider.MICROSOFT:
            return "https://outlook.office.com/SMTP.Send offline_access"
        return ""

    @property
    def size_limit(self) -> int | None:
        limits = [x for x in (self.max_message_size, self.announced_size_limit) if x]
        return min(limits) if limits else None

    def filter_entries(self) -> list[str]:
        return [e.strip().lower() for e in self.from_filter.replace(";", ",").split(",")
                if e.strip()]


class RateWindow(models.Model):
    """Messages sent by a server in one window; rate limits hold across workers and hosts."""

    class Unit(models.TextChoices):
        MINUTE = "minute"
        HOUR = "hour"
        DAY = "day"

    server = models.ForeignKey(MailServer, on_delete=models.CASCADE, related_name="+")
    unit = models.CharField(max_length=6, choices=Unit.choices)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["server", "unit", "window_start"],
                                    name="ratewindow_unique"),
        ]


class OutgoingMail(CompanyOwned):
    """One email. The Message-ID is fixed at creation and reused on every retry."""

    class State(models.TextChoices):
        OUTGOING = "outgoing", "Outgoing"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DEFERRED = "deferred", "Deferred"
        EXCEPTION = "exception", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        UNCERTAIN = "uncertain", "Uncertain"

    class Priority(models.IntegerChoices):
        IMMEDIATE = 0, "Immediate"
        HIGH = 1, "High"
        NORMAL = 2, "Normal"
        LOW = 3, "Low"

    WAITING_STATES = (State.OUTGOING, State.DEFERRED, State.UNCERTAIN)
    RETRYABLE_STATES = (State.DEFERRED, State.EXCEPTION, State.UNCERTAIN, State.CANCELLED)
    CANCELLABLE_STATES = (State.OUTGOING, State.DEFERRED, State.UNCERTAIN, State.EXCEPTION)

    state = models.CharField(max_length=10, choices=State.choices, default=State.OUTGOING)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices,
                                                default=Priority.NORMAL)
    purpose = models.CharField(max_length=14, choices=Purpose.choices[:2],
                               default=Purpose.TRANSACTIONAL)
    message_id = models.CharField(max_length=255, unique=True)
    email_from = models.CharField(max_length=320)
    reply_to = models.CharField(max_length=320, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    body_html = models.TextField(blank=True)
    body_text = models.TextField(blank=True)
    headers = models.JSONField(default=dict, blank=True)
    is_automatic = models.BooleanField(
        default=False, help_text="Sent with Auto-Submitted: auto-generated.")
    server = models.ForeignKey(MailServer, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="+", help_text="Explicit server; else chosen.")
    used_server = models.ForeignKey(MailServer, on_delete=models.SET_NULL, null=True,
                                    blank=True, related_name="+")
    content_type = models.ForeignKey(ContentType, on_delete=models.SET_NULL, null=True,
                                     blank=True, related_name="+")
    object_id = models.PositiveBigIntegerField(null=True, blank=True)
    record = GenericForeignKey("content_type", "object_id")
    chatter_message = models.ForeignKey("chatter.Message", on_delete=models.SET_NULL, null=True,
                                        blank=True, related_name="outgoing_mails")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                               blank=True, related_name="+")
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    created_at = models.DateTimeField(default=now, db_index=True)
    scheduled_at = models.DateTimeField(null=True, blank=True,
                                        help_text="Not sent before this time.")
    expires_at = models.DateTimeField(null=True, blank=True,
                                      help_text="Given up (expired) if not sent by then.")
    next_attempt_at = models.DateTimeField(default=now,
                                           help_text="When a worker may next pick it up.")
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempt_count = models.PositiveIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)
    failure_type = models.CharField(max_length=20, choices=FailureType.choices, blank=True)
    failure_reason = models.TextField(blank=True)
    was_uncertain = models.BooleanField(
        default=False, help_text="A worker died mid-send; it may have been delivered twice.")
    auto_delete = models.BooleanField(default=False)
    # a registered delivery hook (outgoing/hooks.py) run when the mail is sent, e.g. marking
    # the quotation it carries as sent
    on_sent = models.CharField(max_length=64, blank=True)
    author_notified = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "email"
        verbose_name_plural = "emails"
        indexes = [
            models.Index(fields=["state", "priority", "next_attempt_at"], name="outbox_claim"),
            models.Index(fields=["state", "lease_expires_at"], name="outbox_lease"),
            models.Index(fields=["content_type", "object_id"], name="outbox_record"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["company", "idempotency_key"],
                                    condition=Q(idempotency_key__isnull=False),
                                    name="outbox_idempotency"),
        ]

    def __str__(self) -> str:
        return self.subject or self.message_id


class OutgoingRecipient(models.Model):
    class Kind(models.TextChoices):
        TO = "to", "To"
        CC = "cc", "Cc"
        BCC = "bcc", "Bcc"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Accepted"
        FAILED = "failed", "Failed"
        BOUNCED = "bounced", "Bounced"

    mail = models.ForeignKey(OutgoingMail, on_delete=models.CASCADE, related_name="recipients")
    kind = models.CharField(max_length=3, choices=Kind.choices, default=Kind.TO)
    address = models.CharField(max_length=320)
    name = models.CharField(max_length=200, blank=True)
    partner = models.ForeignKey("contacts.Partner", on_delete=models.SET_NULL, null=True,
                                blank=True, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    failure_type = models.CharField(max_length=20, choices=FailureType.choices, blank=True)
    failure_reason = models.TextField(blank=True)
    smtp_code = models.PositiveSmallIntegerField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["mail", "status"]),
                   # the mail sent to an address, whatever its case (recipients_to): a
                   # bounce's count, a reply's thread by its subject
                   models.Index(Lower("address"), name="outbox_recipient_address")]

    def __str__(self) -> str:
        return self.address


def recipients_to(*addresses: str) -> Exact | In:
    """A filter for OutgoingRecipient rows to any of `addresses`, whatever their case:
    LOWER(address) = …, which the outbox_recipient_address index answers (address__iexact
    read every recipient row ever written, once per bounce and per reply without
    References)."""
    keys = sorted({a.lower() for a in addresses})
    if len(keys) == 1:
        return Exact(Lower("address"), keys[0])
    return In(Lower("address"), keys)  # none: matches nothing


class OutgoingAttachment(models.Model):
    """A file of a mail; bytes live in the content-addressed attachment store."""

    mail = models.ForeignKey(OutgoingMail, on_delete=models.CASCADE, related_name="attachments")
    name = models.CharField(max_length=255)
    mimetype = models.CharField(max_length=255, default="application/octet-stream")
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    content_id = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name


class SendAttempt(models.Model):
    """One SMTP conversation about a mail: what the server said and how long it took."""

    class Outcome(models.TextChoices):
        SENT = "sent", "Sent"
        PARTIAL = "partial", "Partly refused"
        DEFERRED = "deferred", "Deferred"
        FAILED = "failed", "Failed"

    mail = models.ForeignKey(OutgoingMail, on_delete=models.CASCADE, related_name="attempts")
    server = models.ForeignKey(MailServer, on_delete=models.SET_NULL, null=True, blank=True,
                               related_name="+")
    server_name = models.CharField(max_length=100, blank=True)
    started_at = models.DateTimeField(default=now)
    duration_ms = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    smtp_code = models.PositiveSmallIntegerField(null=True, blank=True)
    smtp_reply = models.TextField(blank=True)
    worker = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]


class DkimKey(CompanyOwned):
    """A DKIM key per sending domain; the private half is encrypted at rest."""

    domain = models.CharField(max_length=253)
    selector = models.CharField(max_length=63, default="mailroom")
    private_key = EncryptedTextField()
    dns_txt = models.TextField(help_text="Publish as TXT at <selector>._domainkey.<domain>.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        verbose_name = "DKIM key"
        constraints = [
            models.UniqueConstraint(fields=["company", "domain", "selector"],
                                    name="dkim_unique_selector"),
        ]

    def __str__(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"

    @property
    def dns_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"


class FeedbackEvent(models.Model):
    """One provider webhook event about one recipient, kept so a replayed event (providers
    retry) changes nothing the second time, and so unmatched events are counted."""

    class Outcome(models.TextChoices):
        COMPLAINT = "complaint", "Spam complaint recorded"
        BOUNCE = "bounce", "Bounce recorded"
        IGNORED = "ignored", "Ignored"
        UNMATCHED = "unmatched", "No such mail"

    server = models.ForeignKey(MailServer, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255, help_text="The provider's event id and recipient.")
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    mail = models.ForeignKey(OutgoingMail, on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+")
    address = models.CharField(max_length=320, blank=True)
    note = models.TextField(blank=True)
    received_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["server", "key"], name="feedbackevent_unique_key"),
        ]

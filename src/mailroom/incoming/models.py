"""Incoming mail: the mailboxes Mailroom fetches from and every message it received.

An InboundMail row exists for every message before anyone acknowledges it (SMTP 250, IMAP
\\Seen, POP DELE); its raw bytes sit in the content-addressed blob store. The router then
decides its fate and records the decision, the rule that took it and the trace of every rule.
"""

from __future__ import annotations

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.timezone import now

from mailroom.core.mail_servers import ConnectionStatus, MailServerBase
from mailroom.core.scoping import CompanyOwned


class IncomingServer(MailServerBase):
    """A mailbox to fetch from: IMAP, POP3 or a local maildir."""

    class Kind(models.TextChoices):
        IMAP = "imap", "IMAP"
        POP3 = "pop3", "POP3"
        MAILDIR = "maildir", "Local maildir"

    class Security(models.TextChoices):
        SSL = "ssl", "SSL/TLS (implicit)"
        STARTTLS = "starttls", "STARTTLS"
        NONE = "none", "None (plain text — loopback only)"

    class Auth(models.TextChoices):
        PASSWORD = "password", "Username and password"
        XOAUTH2 = "xoauth2", "OAuth 2 (Gmail / Microsoft 365)"

    Status = ConnectionStatus

    kind = models.CharField("type", max_length=8, choices=Kind.choices, default=Kind.IMAP)
    host = models.CharField(max_length=255, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True,
                                       validators=[MaxValueValidator(65535)],
                                       help_text="Empty: 993 for IMAP, 995 for POP3 over SSL.")
    security = models.CharField(max_length=10, choices=Security.choices, default=Security.SSL)
    verify_certificate = models.BooleanField(
        default=True, help_text="Refuse servers whose certificate does not verify.")
    ca_certificate = models.TextField(
        "CA certificate (PEM)", blank=True,
        help_text="Trust this CA too (a private mail server); the system CAs are always trusted.")
    auth = models.CharField("authentication", max_length=10, choices=Auth.choices,
                            default=Auth.PASSWORD)
    folder = models.CharField(max_length=255, default="INBOX",
                              help_text="IMAP folder to read; for maildir, the directory path.")
    move_to = models.CharField(
        max_length=255, blank=True,
        help_text="IMAP: move fetched mail to this folder. Empty: mark it read (\\Seen).")
    fetch_interval = models.PositiveIntegerField(
        "fetch every (minutes)", default=5, validators=[MinValueValidator(1)])
    fallback_record_type = models.CharField(
        max_length=100, blank=True,
        help_text="Mail that matches no alias and no thread creates a record of this type.")
    keep_attachments = models.BooleanField(default=True)
    keep_original = models.BooleanField(
        "keep the original .eml", default=False,
        help_text="Attach the original message to the record it lands on.")
    trusted_authserv_id = models.CharField(
        "trusted Authentication-Results", max_length=255, blank=True,
        help_text="The mailbox provider's authserv-id (e.g. mx.google.com) whose SPF/DKIM/DMARC "
                  "results Mailroom may trust for fetched mail.")
    # IMAP position: UIDs are only meaningful within one UIDVALIDITY
    uidvalidity = models.BigIntegerField(null=True, blank=True, editable=False)
    last_uid = models.BigIntegerField(default=0, editable=False)
    status = models.CharField(max_length=10, choices=ConnectionStatus.choices,
                              default=ConnectionStatus.NOT_TESTED)
    last_fetch_at = models.DateTimeField(null=True, blank=True)
    last_fetch_count = models.PositiveIntegerField(default=0)
    failure_notified = models.BooleanField(
        default=False, help_text="Mail Managers were told it fails; reset when it works again.")
    next_fetch_at = models.DateTimeField(default=now)
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["company", "name"], name="incomingserver_unique_name"),
        ]

    def oauth_scope(self) -> str:
        if self.oauth_provider != self.OAuthProvider.MICROSOFT:
            return ""
        if self.kind == self.Kind.POP3:
            return "https://outlook.office.com/POP.AccessAsUser.All offline_access"
        return "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"

    @property
    def effective_port(self) -> int:
        if self.port:
            return self.port
        if self.kind == self.Kind.IMAP:
            return 993 if self.security == self.Security.SSL else 143
        return 995 if self.security == self.Security.SSL else 110


ONE_ROUTING_PER_MESSAGE_ID = "incoming_one_routing_per_message_id"


class InboundMail(CompanyOwned):
    """One received message: raw bytes first, then the router's decision."""

    class Source(models.TextChoices):
        SMTP = "smtp", "SMTP gateway"
        LMTP = "lmtp", "LMTP gateway"
        DELIVER = "deliver", "MTA pipe (mailroom deliver)"
        IMAP = "imap", "IMAP"
        POP3 = "pop3", "POP3"
        MAILDIR = "maildir", "Maildir"
        API = "api", "API"

    class State(models.TextChoices):
        RECEIVED = "received", "Waiting to be routed"
        DONE = "done", "Routed"
        QUARANTINED = "quarantined", "Quarantined"

    class Decision(models.TextChoices):
        CREATED = "created", "Created a record"
        POSTED = "posted", "Posted on a record"
        BOUNCE = "bounce", "Delivery report"
        DUPLICATE = "duplicate", "Duplicate"
        DROPPED = "dropped", "Dropped (loop or flood)"
        REFUSED = "refused", "Refused"

    source = models.CharField(max_length=8, choices=Source.choices)
    server = models.ForeignKey(IncomingServer, on_delete=models.SET_NULL, null=True,
                               blank=True, related_name="messages")
    source_key = models.CharField(
        max_length=255, null=True, blank=True, unique=True,
        help_text="Where it came from (server, UIDVALIDITY and UID; POP UIDL): fetching the "
                  "same message twice stores it once.")
    envelope_from = models.CharField(max_length=320, blank=True)
    envelope_to = models.JSONField(default=list, blank=True)
    remote_ip = models.GenericIPAddressField(null=True, blank=True)
    helo = models.CharField(max_length=255, blank=True)
    raw_sha256 = models.CharField(max_length=64)
    raw_size = models.PositiveBigIntegerField()
    received_at = models.DateTimeField(default=now, db_index=True)
    # filled by the router from the headers
    message_id = models.CharField(max_length=998, blank=True, db_index=True)
    from_address = models.CharField(max_length=320, blank=True)
    subject = models.CharField(max_length=998, blank=True)
    is_automatic = models.BooleanField(default=False)
    auth_summary = models.CharField("sender authentication", max_length=300, blank=True)
    # outcome
    state = models.CharField(max_length=12, choices=State.choices, default=State.RECEIVED)
    decision = models.CharField(max_length=10, choices=Decision.choices, blank=True)
    rule = models.CharField(max_length=30, blank=True)
    reason = models.TextField(blank=True)
    trace = models.JSONField(default=list, blank=True)
    content_type = models.ForeignKey(ContentType, on_delete=models.SET_NULL, null=True,
                                     blank=True, related_name="+")
    object_id = models.PositiveBigIntegerField(null=True, blank=True)
    record = GenericForeignKey("content_type", "object_id")
    chatter_message = models.ForeignKey("chatter.Message", on_delete=models.SET_NULL, null=True,
                                        blank=True, related_name="+")
    bounce_reply = models.ForeignKey("outgoing.OutgoingMail", on_delete=models.SET_NULL,
                                     null=True, blank=True, related_name="+")
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["state", "received_at"]),
            models.Index(fields=["company", "from_address", "received_at"]),
            models.Index(fields=["company", "state", "-received_at"]),
        ]
        # A Message-ID is routed once per company: two copies of one message (split by the
        # sender's server into two deliveries) claimed by two routers at the same moment
        # would otherwise each pass the duplicate rule, neither seeing the other's yet
        # uncommitted routing, and make two records. The second to commit fails here and is
        # routed again, alone, as the duplicate it is (incoming.router.runner).
        constraints = [
            models.UniqueConstraint(
                fields=["company", "message_id"], name=ONE_ROUTING_PER_MESSAGE_ID,
                condition=(models.Q(state="done") & ~models.Q(message_id="")
                           & ~models.Q(decision__in=["duplicate", "refused"]))),
        ]

    def __str__(self) -> str:
        return self.subject or self.message_id or f"Inbound mail #{self.pk}"

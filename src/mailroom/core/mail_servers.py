"""What every mail server Mailroom connects to has in common, outgoing (SMTP) or incoming
(IMAP, POP3, maildir): a name, a login with an encrypted password or OAuth 2 tokens, a health
word in one vocabulary, and a failure counter.

The concrete models (`outgoing.MailServer`, `incoming.IncomingServer`) add what differs —
the host and port rules, the security default, which logins they offer — and say which OAuth
scope their protocol needs (`oauth_scope`), so one token module (`core.oauth`) serves both.
The shared columns are declared exactly as the two models declared them before: no migration.
"""

from __future__ import annotations

from django.db import models
from django.utils.timezone import now

from mailroom.core.scoping import CompanyOwned
from mailroom.core.secrets import EncryptedTextField


class ConnectionStatus(models.TextChoices):
    """How the last contact with a server went: a connection test or a fetch."""

    NOT_TESTED = "not_tested", "Not tested"
    OK = "ok", "Working"
    FAILING = "failing", "Failing"


# one colour per status word, for list chips and the change page's status box
STATUS_COLOURS = {ConnectionStatus.OK.value: "success",
                  ConnectionStatus.FAILING.value: "danger",
                  ConnectionStatus.NOT_TESTED.value: "warning"}


class OAuthProvider(models.TextChoices):
    GOOGLE = "google", "Google"
    MICROSOFT = "microsoft", "Microsoft 365"


class MailServerBase(CompanyOwned):
    """Abstract: the login and health columns shared by incoming and outgoing servers."""

    OAuthProvider = OAuthProvider

    name = models.CharField(max_length=100)
    username = models.CharField(max_length=255, blank=True)
    password = EncryptedTextField(blank=True)
    oauth_provider = models.CharField(max_length=10, choices=OAuthProvider.choices, blank=True)
    oauth_client_id = models.CharField(max_length=255, blank=True)
    oauth_client_secret = EncryptedTextField(blank=True)
    oauth_refresh_token = EncryptedTextField(blank=True)
    oauth_access_token = EncryptedTextField(blank=True)
    oauth_token_expires_at = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    last_error = models.TextField(blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(default=now, editable=False)

    # encrypted columns: never shown back, erased together by "Forget stored secrets"
    SECRET_FIELDS: tuple[str, ...] = ("password", "oauth_client_secret", "oauth_refresh_token",
                                      "oauth_access_token")

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return self.name

    def oauth_scope(self) -> str:
        """The scope a token refresh must ask for; "" when the provider keeps the scopes of
        the original grant (Google does, Microsoft wants them on every refresh)."""
        raise NotImplementedError

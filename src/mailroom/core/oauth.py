"""XOAUTH2 for Gmail and Microsoft 365: a valid access token for a server, and the SASL string.

One module for every kind of mail server: `server` is any `MailServerBase` row (an SMTP
server, an IMAP or POP3 mailbox); its model is where the tokens are read and stored, and its
`oauth_scope()` is the scope Microsoft wants on every refresh (SMTP.Send, IMAP or POP).

`access_token(server)` returns the stored access token while it is valid and otherwise
refreshes it at the provider's token endpoint (RFC 6749 §6: a form-encoded POST with
grant_type=refresh_token). Microsoft rotates the refresh token on every refresh, so the new
one must never be lost, even when several workers refresh the same server at once:

- threads of one process take a per-server lock and re-read the row before refreshing;
- the new tokens are stored with a conditional UPDATE that only matches if the tokens we
  refreshed from are still the stored ones. The encrypted columns hold Fernet tokens, which
  are different on every write, so their raw ciphertext is an exact version stamp;
- a worker that loses that race (or gets `invalid_grant` because another worker already
  used the old refresh token) re-reads the row and uses what the winner stored.

No transaction is open during the HTTP call. Errors are `OAuthError` subclasses carrying the
failure type the transport records (`outgoing.FailureType` values) and whether a later
retry can help.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models.functions import Cast
from django.db.models.lookups import Exact
from django.utils import timezone

from mailroom.core.mail_servers import MailServerBase, OAuthProvider
from mailroom.lib.netloc import secure_url

TOKEN_URLS = {
    OAuthProvider.GOOGLE: "https://oauth2.googleapis.com/token",
    OAuthProvider.MICROSOFT: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
}
PROVIDER_NAMES = {
    OAuthProvider.GOOGLE: "Google",
    OAuthProvider.MICROSOFT: "Microsoft",
}
# the failure types (values of outgoing.FailureType) a sending attempt records
AUTHENTICATION = "authentication"
UNREACHABLE = "unreachable"
# A token this close to expiry is refreshed first: AUTH happens when a connection opens.
EXPIRY_MARGIN = timedelta(seconds=120)
DEFAULT_EXPIRES_IN = 3600  # RFC 6749 §5.1 makes expires_in optional
HTTP_TIMEOUT = 20
MAX_RESPONSE_BYTES = 1024 * 1024
# After invalid_grant, watch the row this long for another worker that may have just used
# (and rotated) the same refresh token and is about to store the new one.
REVOKED_GRACE_SECONDS = 2.0
_GRACE_POLL = 0.05
_STORE_ATTEMPTS = 3


class OAuthError(Exception):
    """A token could not be obtained; `message` is in plain words for the hub."""

    failure_type = AUTHENTICATION
    temporary = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OAuthRevoked(OAuthError):
    """invalid_grant: the refresh token was revoked or expired; only reconnecting helps."""


class OAuthConfigError(OAuthError):
    """The server's OAuth settings are incomplete, or the provider refused the client."""


class OAuthUnavailable(OAuthError):
    """The token endpoint could not be reached or answered 5xx/429: retry later."""

    failure_type = UNREACHABLE
    temporary = True


@dataclass(frozen=True)
class _Stored:
    """The token columns of one server as read from the database (plaintext), and the raw
    ciphertext of the two token columns, which changes on every write."""

    access_token: str
    refresh_token: str
    expires_at: datetime | None
    raw_access: str
    raw_refresh: str

    def valid_token(self, now: datetime) -> str | None:
        if self.access_token and self.expires_at and self.expires_at - EXPIRY_MARGIN > now:
            return self.access_token
        return None


@dataclass(frozen=True)
class _Grant:
    access_token: str
    expires_at: datetime
    refresh_token: str  # "" when the provider did not rotate it


_locks: dict[tuple[str, int], threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(server: MailServerBase) -> threading.Lock:
    """One lock per server row (an SMTP server and a mailbox may share a primary key)."""
    with _locks_guard:
        return _locks.setdefault((server._meta.label, server.pk), threading.Lock())


def token_urls() -> dict[str, str]:
    """The token endpoints; settings.MAILROOM_OAUTH_TOKEN_URLS overrides some or all."""
    return {**TOKEN_URLS, **getattr(settings, "MAILROOM_OAUTH_TOKEN_URLS", {})}


def provider_name(server: MailServerBase) -> str:
    return PROVIDER_NAMES.get(server.oauth_provider, "OAuth")


def access_token(server: MailServerBase) -> str:
    """A valid access token for `server`, refreshing (and storing) it when needed.

    Updates the token attributes of `server` in memory too, so callers holding the object
    reuse the token without reading the row again.
    """
    now = timezone.now()
    if server.oauth_access_token and server.oauth_token_expires_at and (
            server.oauth_token_expires_at - EXPIRY_MARGIN > now):
        return server.oauth_access_token
    _check_config(server)
    with _lock_for(server):
        for _ in range(_STORE_ATTEMPTS):
            stored = _read(server)
            token = stored.valid_token(timezone.now())
            if token:
                return token  # another thread or worker refreshed it meanwhile
            if not stored.refresh_token:
                raise OAuthConfigError(
                    f"The {provider_name(server)} account is not connected (no refresh token): "
                    "connect the account again.")
            try:
                grant = _refresh(server, stored.refresh_token)
            except OAuthRevoked:
                if _changed_since(server, stored):
                    continue  # another worker rotated the token: use what it stored
                raise
            if _store(server, stored, grant):
                server.oauth_access_token = grant.access_token
                server.oauth_token_expires_at = grant.expires_at
                if grant.refresh_token:
                    server.oauth_refresh_token = grant.refresh_token
                return grant.access_token
            # lost the race to another worker: the next pass reads and reuses its token
    raise OAuthUnavailable(
        f"The {provider_name(server)} token kept changing while being refreshed; "
        "it will be tried again.")


def xoauth2_string(username: str, token: str) -> str:
    """The SASL XOAUTH2 initial response, base64-encoded, for `AUTH XOAUTH2 <this>`."""
    for value in (username, token):
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
            raise ValueError("The user name and token cannot contain control characters.")
    raw = f"user={username}\x01auth=Bearer {token}\x01\x01"
    return base64.b64encode(raw.encode("utf-8")).decode("ascii")


# --- the database side ---------------------------------------------------------------------

def _raw(column: str) -> Cast:
    """The stored ciphertext itself: cast to plain text, it skips the decrypting field."""
    return Cast(column, output_field=models.TextField())


def _rows(server: MailServerBase) -> models.QuerySet:
    return type(server)._default_manager.filter(pk=server.pk)


def _read(server: MailServerBase) -> _Stored:
    row = (_rows(server)
           .annotate(raw_access=_raw("oauth_access_token"),
                     raw_refresh=_raw("oauth_refresh_token"))
           .values("oauth_access_token", "oauth_refresh_token", "oauth_token_expires_at",
                   "raw_access", "raw_refresh")
           .first())
    if row is None:
        raise OAuthConfigError("The mail server was deleted.")
    stored = _Stored(
        access_token=row["oauth_access_token"] or "",
        refresh_token=row["oauth_refresh_token"] or "",
        expires_at=row["oauth_token_expires_at"],
        raw_access=row["raw_access"] or "",
        raw_refresh=row["raw_refresh"] or "",
    )
    server.oauth_access_token = stored.access_token
    server.oauth_refresh_token = stored.refresh_token
    server.oauth_token_expires_at = stored.expires_at
    return stored


def _unchanged(server: MailServerBase, stored: _Stored) -> models.QuerySet:
    return _rows(server).filter(
        Exact(_raw("oauth_access_token"), stored.raw_access),
        Exact(_raw("oauth_refresh_token"), stored.raw_refresh),
    )


def _is_unchanged(server: MailServerBase, stored: _Stored) -> bool:
    return _unchanged(server, stored).exists()


def _changed_since(server: MailServerBase, stored: _Stored) -> bool:
    deadline = time.monotonic() + REVOKED_GRACE_SECONDS
    while _is_unchanged(server, stored):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_GRACE_POLL)
    return True


def _store(server: MailServerBase, stored: _Stored, grant: _Grant) -> bool:
    """Save the new tokens unless another worker stored newer ones since we read the row."""
    values: dict[str, object] = {"oauth_access_token": grant.access_token,
                                 "oauth_token_expires_at": grant.expires_at}
    if grant.refresh_token:
        values["oauth_refresh_token"] = grant.refresh_token
    with transaction.atomic():
        return _unchanged(server, stored).update(**values) == 1


# --- the provider side ---------------------------------------------------------------------

def _check_config(server: MailServerBase) -> None:
    if server.oauth_provider not in TOKEN_URLS:
        raise OAuthConfigError("Choose the OAuth provider (Google or Microsoft 365) of this "
                               "server.")
    if not (server.oauth_client_id and server.oauth_client_secret):
        raise OAuthConfigError(f"The {provider_name(server)} client ID and client secret "
                               "of this server are missing.")


def _check_url(url: str) -> None:
    """Secrets travel only over HTTPS (plain HTTP only to a loopback test endpoint)."""
    if secure_url(url):
        return
    raise OAuthConfigError(f"The OAuth token endpoint {url!r} must use https.")


def _refresh(server: MailServerBase, refresh_token: str) -> _Grant:
    """POST grant_type=refresh_token to the provider; no database work here."""
    provider = server.oauth_provider
    name = provider_name(server)
    url = token_urls()[provider]
    _check_url(url)
    form = {
        "grant_type": "refresh_token",
        "client_id": server.oauth_client_id,
        "client_secret": server.oauth_client_secret,
        "refresh_token": refresh_token,
    }
    scope = server.oauth_scope()
    if scope:
        form["scope"] = scope
    request = urllib.request.Request(
        url, data=urllib.parse.urlencode(form).encode("ascii"), method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "Accept": "application/json", "User-Agent": "Mailroom"})
    started = timezone.now()
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT,
                                    context=ssl.create_default_context()) as response:
            body = response.read(MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as exc:
        raise _http_error(name, exc) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OAuthUnavailable(
            f"The {name} token endpoint could not be reached ({reason}).") from None
    try:
        data = json.loads(body)
        token = data["access_token"]
        if not isinstance(token, str) or not token:
            raise ValueError
        expires_in = int(data.get("expires_in") or DEFAULT_EXPIRES_IN)
        rotated = data.get("refresh_token") or ""
        if not isinstance(rotated, str):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise OAuthUnavailable(
            f"The {name} token endpoint sent an answer that is not a token.") from None
    expires_in = max(0, min(expires_in, 365 * 24 * 3600))
    return _Grant(access_token=token, expires_at=started + timedelta(seconds=expires_in),
                  refresh_token=rotated)


def _http_error(name: str, exc: urllib.error.HTTPError) -> OAuthError:
    try:
        data = json.loads(exc.read(MAX_RESPONSE_BYTES))
        code = str(data.get("error", ""))
        description = str(data.get("error_description", "")).strip()
    except (ValueError, AttributeError, OSError):
        code, description = "", ""
    detail = f" ({description.splitlines()[0][:300]})" if description else ""
    if code == "invalid_grant":
        return OAuthRevoked(f"The {name} authorization was revoked or expired: reconnect "
                            f"the account.{detail}")
    if code in ("invalid_client", "unauthorized_client"):
        return OAuthConfigError(f"{name} refused the client ID or client secret of this "
                                f"server: check them.{detail}")
    if exc.code == 429 or exc.code >= 500:
        return OAuthUnavailable(f"The {name} token endpoint answered HTTP {exc.code}; it "
                                "will be tried again.")
    return OAuthError(f"{name} refused to refresh the token: "
                      f"{code or f'HTTP {exc.code}'}.{detail}")

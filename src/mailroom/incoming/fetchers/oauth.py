"""XOAUTH2 tokens for incoming mailboxes: an adapter over `outgoing.oauth`.

`outgoing.oauth` reads and stores tokens on MailServer rows and asks Microsoft for the
SMTP.Send scope; a mailbox needs the same dance on IncomingServer rows with the IMAP or POP
scope. Everything else (errors, the expiry margin, the provider errors, the conditional store
that never loses a rotated refresh token, the SASL string) is reused as is.
"""

from __future__ import annotations

import json
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta

from django.db import models, transaction
from django.db.models.functions import Cast
from django.db.models.lookups import Exact
from django.utils import timezone

from mailroom.incoming.models import IncomingServer
from mailroom.outgoing import oauth as base
from mailroom.outgoing.oauth import (  # noqa: F401 - re-exported for the fetchers
    OAuthConfigError,
    OAuthError,
    OAuthRevoked,
    OAuthUnavailable,
    xoauth2_string,
)

# Google keeps the scopes of the original grant; Microsoft wants them on every refresh.
MICROSOFT_SCOPES = {
    IncomingServer.Kind.IMAP: "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
    IncomingServer.Kind.POP3: "https://outlook.office.com/POP.AccessAsUser.All offline_access",
}

_locks: dict[int, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(pk: int) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(pk, threading.Lock())


def access_token(server: IncomingServer) -> str:
    """A valid access token for the mailbox, refreshed (and stored) when needed."""
    now = timezone.now()
    if server.oauth_access_token and server.oauth_token_expires_at and (
            server.oauth_token_expires_at - base.EXPIRY_MARGIN > now):
        return server.oauth_access_token
    base._check_config(server)
    name = base.provider_name(server)
    with _lock_for(server.pk):
        for _ in range(base._STORE_ATTEMPTS):
            stored = _read(server)
            token = stored.valid_token(timezone.now())
            if token:
                return token
            if not stored.refresh_token:
                raise OAuthConfigError(f"The {name} account is not connected (no refresh "
                                       "token): connect the account again.")
            grant = _refresh(server, stored.refresh_token)
            if _store(server, stored, grant):
                server.oauth_access_token = grant.access_token
                server.oauth_token_expires_at = grant.expires_at
                if grant.refresh_token:
                    server.oauth_refresh_token = grant.refresh_token
                return grant.access_token
    raise OAuthUnavailable(f"The {name} token kept changing while being refreshed; "
                           "it will be tried again.")


def _raw(column: str) -> Cast:
    return Cast(column, output_field=models.TextField())


def _read(server: IncomingServer) -> base._Stored:
    row = (IncomingServer.objects.filter(pk=server.pk)
           .annotate(raw_access=_raw("oauth_access_token"),
                     raw_refresh=_raw("oauth_refresh_token"))
           .values("oauth_access_token", "oauth_refresh_token", "oauth_token_expires_at",
                   "raw_access", "raw_refresh").first())
    if row is None:
        raise OAuthConfigError("The incoming mail server was deleted.")
    return base._Stored(access_token=row["oauth_access_token"] or "",
                        refresh_token=row["oauth_refresh_token"] or "",
                        expires_at=row["oauth_token_expires_at"],
                        raw_access=row["raw_access"] or "", raw_refresh=row["raw_refresh"] or "")


def _store(server: IncomingServer, stored: base._Stored, grant: base._Grant) -> bool:
    values: dict[str, object] = {"oauth_access_token": grant.access_token,
                                 "oauth_token_expires_at": grant.expires_at}
    if grant.refresh_token:
        values["oauth_refresh_token"] = grant.refresh_token
    with transaction.atomic():
        return IncomingServer.objects.filter(
            Exact(_raw("oauth_access_token"), stored.raw_access),
            Exact(_raw("oauth_refresh_token"), stored.raw_refresh),
            pk=server.pk).update(**values) == 1


def _refresh(server: IncomingServer, refresh_token: str) -> base._Grant:
    name = base.provider_name(server)
    url = base.token_urls()[server.oauth_provider]
    base._check_url(url)
    form = {"grant_type": "refresh_token", "client_id": server.oauth_client_id,
            "client_secret": server.oauth_client_secret, "refresh_token": refresh_token}
    if server.oauth_provider == IncomingServer.OAuthProvider.MICROSOFT:
        form["scope"] = MICROSOFT_SCOPES[server.kind]
    request = urllib.request.Request(
        url, data=urllib.parse.urlencode(form).encode("ascii"), method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "Accept": "application/json", "User-Agent": "Mailroom"})
    started = timezone.now()
    try:
        with urllib.request.urlopen(request, timeout=base.HTTP_TIMEOUT,
                                    context=ssl.create_default_context()) as response:
            data = json.loads(response.read(base.MAX_RESPONSE_BYTES))
    except urllib.error.HTTPError as exc:
        raise base._http_error(name, exc) from None
    except (urllib.error.URLError, OSError) as exc:
        raise OAuthUnavailable(f"The {name} token endpoint could not be reached "
                               f"({getattr(exc, 'reason', exc)}).") from None
    except ValueError:
        data = None
    token = data.get("access_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token:
        raise OAuthUnavailable(f"The {name} token endpoint sent an answer that is not a token.")
    try:
        expires_in = int(data.get("expires_in") or base.DEFAULT_EXPIRES_IN)
    except (TypeError, ValueError):
        expires_in = base.DEFAULT_EXPIRES_IN
    rotated = data.get("refresh_token") or ""
    return base._Grant(access_token=token,
                       expires_at=started + timedelta(seconds=max(0, min(expires_in, 31536000))),
                       refresh_token=rotated if isinstance(rotated, str) else "")

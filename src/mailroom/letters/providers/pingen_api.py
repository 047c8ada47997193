"""Pingen API v2 over HTTP: where it lives, the OAuth2 token, one request, errors in plain words.

- Base URLs come from the provider's settings: `environment` "production" (default) or
  "staging", or explicit `api_url` / `identity_url` (a plain-http URL is refused unless its
  host is loopback: the tests' fake Pingen listens on 127.0.0.1). TLS is always verified.
- The token: OAuth2 client credentials at `{identity}/auth/access-tokens`, kept in this
  process until shortly before it expires (one token for many letters), per client and
  scope. A 401 on an API call drops it and asks once more with a fresh one.
- Every failure is a `ProviderError` with a plain-words message and what to do: 429 and 5xx,
  time-outs and network errors are transient (the worker retries with backoff); a missing
  credit pauses the provider's queue; bad credentials, an unreadable PDF or an address
  Pingen refuses put the letter in error with the reason.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass

import httpx

from mailroom.letters.providers.base import ProviderError
from mailroom.lib.netloc import secure_url

ENVIRONMENTS = {
    "production": ("https://api.pingen.com", "https://identity.pingen.com"),
    "staging": ("https://api-staging.pingen.com", "https://identity-staging.pingen.com"),
}
DEFAULT_SCOPE = "letter organisation_read"
JSON_API = "application/vnd.api+json"
TIMEOUT = httpx.Timeout(30.0, connect=10.0)
UPLOAD_TIMEOUT = httpx.Timeout(120.0, connect=10.0)
# a token is renewed this long before Pingen says it expires
TOKEN_MARGIN_SECONDS = 60

_tokens: dict[tuple[str, str, str, str], tuple[str, float]] = {}
_tokens_lock = threading.Lock()

SETTINGS_ACTION = "Check the Pingen settings in Letters › Postal providers."
CREDENTIALS_ACTION = ("Enter the Pingen client ID and secret again in Letters › Postal "
                      "providers, then press Test connection and Retry.")


def _checked_url(url: str, what: str) -> str:
    if secure_url(url):
        return url.rstrip("/")
    raise ProviderError("BAD_SETTINGS", f"The Pingen {what} {url!r} is not an https:// address "
                        "(plain http is allowed on this machine's loopback only).",
                        action=SETTINGS_ACTION)


@dataclass(frozen=True)
class PingenConfig:
    api_url: str
    identity_url: str
    organisation_id: str
    client_id: str
    client_secret: str
    webhook_signing_key: str
    scope: str

    @classmethod
    def from_row(cls, row) -> PingenConfig:
        settings = row.settings or {}
        environment = str(settings.get("environment") or "production")
        if environment not in ENVIRONMENTS:
            raise ProviderError("BAD_SETTINGS", f"The Pingen environment {environment!r} is "
                                "unknown: use production or staging.", action=SETTINGS_ACTION)
        api_default, identity_default = ENVIRONMENTS[environment]
        try:
            secrets = json.loads(row.credentials) if row.credentials else {}
        except ValueError:
            secrets = None
        if not isinstance(secrets, dict):
            raise ProviderError("BAD_CREDENTIALS", "The stored Pingen credentials are not a "
                                'JSON object such as {"client_id": "…", "client_secret": "…", '
                                '"webhook_signing_key": "…"}.', action=CREDENTIALS_ACTION)
        return cls(api_url=_checked_url(str(settings.get("api_url") or api_default), "API URL"),
                   identity_url=_checked_url(str(settings.get("identity_url")
                                                 or identity_default), "identity URL"),
                   organisation_id=str(settings.get("organisation_id") or ""),
                   client_id=str(secrets.get("client_id") or ""),
                   client_secret=str(secrets.get("client_secret") or ""),
                   webhook_signing_key=str(secrets.get("webhook_signing_key") or ""),
                   scope=str(settings.get("scope") or DEFAULT_SCOPE))

    def require_api(self) -> None:
        if not (self.client_id and self.client_secret):
            raise ProviderError("BAD_CREDENTIALS", "The Pingen client ID and secret are not set.",
                                action=CREDENTIALS_ACTION)
        if not self.organisation_id:
            raise ProviderError("BAD_SETTINGS", "The Pingen organisation ID is not set "
                                "(settings: organisation_id).", action=SETTINGS_ACTION)

    @property
    def token_key(self) -> tuple[str, str, str, str]:
        secret = hashlib.sha256(self.client_secret.encode()).hexdigest()
        return (self.identity_url, self.client_id, secret, self.scope)


# ------------------------------------------------------------------ errors


def _errors(response: httpx.Response) -> list[dict]:
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _detail(response: httpx.Response) -> str:
    parts = []
    for error in _errors(response)[:3]:
        text = str(error.get("detail") or error.get("title") or error.get("code") or "")
        if text and text not in parts:
            parts.append(text)
    return "; ".join(parts)[:300]


def _retry_after(response: httpx.Response) -> str:
    value = response.headers.get("Retry-After", "").strip()
    return f" It asks to wait {value} seconds." if value.isdigit() else ""


def _words(response: httpx.Response) -> str:
    """Everything Pingen said about the error, lower-case, to tell kinds of 4xx apart."""
    bits = []
    for error in _errors(response):
        source = error.get("source")
        source = source if isinstance(source, dict) else {}
        bits += [str(error.get(k) or "") for k in ("code", "title", "detail")]
        bits += [str(source.get("pointer") or ""), str(source.get("parameter") or "")]
    return " ".join(bits).lower()


def error_for(response: httpx.Response, doing: str) -> ProviderError:
    """The plain-words ProviderError for Pingen's error answer while `doing` something."""
    status = response.status_code
    said = _detail(response)
    told = f" Pingen said: {said}" if said else ""
    if status == 401:
        # every letter would fail the same way: pause the queue and tell the managers once
        return ProviderError("BAD_CREDENTIALS", f"Pingen refused the client ID and secret while "
                             f"{doing}.{told}", action=CREDENTIALS_ACTION, credit=True)
    if status == 429:
        return ProviderError("RATE_LIMITED", f"Pingen is receiving too many requests from this "
                             f"account (rate limit) while {doing}.{_retry_after(response)}",
                             transient=True, action="Nothing: Mailroom tries again by itself.")
    if status >= 500:
        return ProviderError("PINGEN_UNAVAILABLE", f"Pingen had a problem of its own "
                             f"(HTTP {status}) while {doing}.", transient=True,
                             action="Nothing: Mailroom tries again by itself.")
    if status == 409:  # the same Idempotency-Key is still being handled by Pingen
        return ProviderError("IN_PROGRESS", f"Pingen is still handling an earlier attempt at "
                             f"this letter while {doing}.", transient=True,
                             action="Nothing: Mailroom asks again by itself and gets the same "
                                    "letter.")
    words = _words(response)
    if status == 402 or any(w in words for w in ("credit", "balance", "insufficient", "funds")):
        return ProviderError("INSUFFICIENT_CREDIT", f"The Pingen account has not enough credit "
                             f"to post letters.{told}", credit=True,
                             action="Top up the Pingen balance, then press Resume on the "
                                    "provider (or wait: Mailroom tries again in an hour).")
    if status == 403:
        return ProviderError("FORBIDDEN", f"Pingen does not let this client act for the "
                             f"organisation while {doing}.{told}",
                             action="Check the organisation ID and the client's access in "
                                    "Pingen.")
    if status == 404:
        return ProviderError("NOT_FOUND", f"Pingen does not know what Mailroom asked for while "
                             f"{doing} (wrong organisation ID, or the letter was deleted "
                             f"there).{told}", action=SETTINGS_ACTION)
    if "address" in words or "country" in words:
        return ProviderError("INVALID_ADDRESS", f"Pingen refused the recipient's address.{told}",
                             action="Correct the postal address on the contact, then send "
                                    "the letter again.")
    if any(w in words for w in ("file", "pdf", "page")):
        return ProviderError("PDF_REJECTED", f"Pingen cannot print the letter's PDF.{told}",
                             action="Check the document's layout (A4 portrait, the address in "
                                    "the window, nothing in the margins), then send again.")
    return ProviderError("REJECTED", f"Pingen refused the request (HTTP {status}) while "
                         f"{doing}.{told}", action="Correct what Pingen names, then press "
                                                   "Retry on the letter.")


def network_error(exc: httpx.HTTPError, doing: str) -> ProviderError:
    if isinstance(exc, httpx.TimeoutException):
        message = f"Pingen did not answer in time while {doing}."
        code = "TIMEOUT"
    else:
        message = f"Mailroom could not reach Pingen while {doing} ({exc.__class__.__name__})."
        code = "NETWORK"
    return ProviderError(code, message, transient=True,
                         action="Nothing: Mailroom tries again by itself. If it lasts, check "
                                "this server's internet access.")


# ------------------------------------------------------------------ the client


class PingenClient:
    """Requests to one Pingen organisation, with the shared token."""

    def __init__(self, config: PingenConfig):
        self.config = config
        self.http = httpx.Client(timeout=TIMEOUT, verify=True, follow_redirects=False,
                                 headers={"User-Agent": "Mailroom"})

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> PingenClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- token

    def token(self, fresh: bool = False) -> str:
        key = self.config.token_key
        with _tokens_lock:
            cached = _tokens.get(key)
            if cached and not fresh and cached[1] > time.monotonic():
                return cached[0]
            _tokens.pop(key, None)
        doing = "getting an access token"
        try:
            response = self.http.post(
                f"{self.config.identity_url}/auth/access-tokens",
                data={"grant_type": "client_credentials", "client_id": self.config.client_id,
                      "client_secret": self.config.client_secret, "scope": self.config.scope})
        except httpx.HTTPError as exc:
            raise network_error(exc, doing) from None
        if response.status_code in (400, 401):  # OAuth2: invalid_client, invalid_scope …
            try:
                said = response.json()
            except ValueError:
                said = {}
            reason = (said.get("error_description") or said.get("message") or said.get("error")
                      or "") if isinstance(said, dict) else ""
            raise ProviderError("BAD_CREDENTIALS", "Pingen refused the client ID and secret"
                                + (f": {str(reason)[:200]}" if reason else "."),
                                action=CREDENTIALS_ACTION, credit=True)
        if response.status_code != 200:
            raise error_for(response, doing)
        try:
            body = response.json()
            token, expires_in = str(body["access_token"]), int(body.get("expires_in") or 0)
        except (ValueError, KeyError, TypeError):
            raise ProviderError("PINGEN_UNAVAILABLE", "Pingen answered the token request with "
                                "something Mailroom cannot read.", transient=True) from None
        lifetime = max(expires_in - TOKEN_MARGIN_SECONDS, 0)
        with _tokens_lock:
            if lifetime:
                _tokens[key] = (token, time.monotonic() + lifetime)
        return token

    # -- requests

    def request(self, method: str, path: str, doing: str, *, body: dict | None = None,
                headers: dict | None = None, ok=(200, 201, 202, 204)) -> httpx.Response:
        """One API call (path below the API URL); the answer when its status is in `ok`."""
        self.config.require_api()
        url = f"{self.config.api_url}{path}"
        content = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):
            sent = {"Authorization": f"Bearer {self.token(fresh=attempt == 2)}",
                    "Accept": JSON_API, **(headers or {})}
            if content is not None:
                sent["Content-Type"] = JSON_API
            try:
                response = self.http.request(method, url, content=content, headers=sent)
            except httpx.HTTPError as exc:
                raise network_error(exc, doing) from None
            if response.status_code != 401:
                break  # a 401 with a cached token: it may have been revoked; once more, fresh
        if response.status_code not in ok:
            raise error_for(response, doing)
        return response

    def data(self, response: httpx.Response, doing: str):
        try:
            return response.json()["data"]
        except (ValueError, KeyError, TypeError):
            raise ProviderError("PINGEN_UNAVAILABLE", f"Pingen answered with something Mailroom "
                                f"cannot read while {doing}.", transient=True) from None

    def upload(self, pdf: bytes) -> tuple[str, str]:
        """Ask for a signed upload URL, PUT the PDF there: (file_url, file_url_signature)."""
        doing = "preparing the PDF upload"
        data = self.data(self.request("GET", "/file-upload", doing), doing)
        try:
            url, signature = str(data["attributes"]["url"]), str(data["attributes"]
                                                                 ["url_signature"])
        except (KeyError, TypeError):
            raise ProviderError("PINGEN_UNAVAILABLE", "Pingen did not give an upload address "
                                "for the PDF.", transient=True) from None
        doing = "uploading the PDF"
        try:  # a pre-signed storage URL: no Pingen token goes there
            response = self.http.put(_checked_url(url, "upload URL"), content=pdf,
                                     timeout=UPLOAD_TIMEOUT)
        except httpx.HTTPError as exc:
            raise network_error(exc, doing) from None
        if response.status_code >= 300:
            raise error_for(response, doing)
        return url, signature

    def org_path(self, suffix: str = "") -> str:
        return f"/organisations/{self.config.organisation_id}{suffix}"

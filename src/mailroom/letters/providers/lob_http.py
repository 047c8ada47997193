"""Lob's HTTP edge: one request helper and the map from Lob's error answers to ProviderError.

Lob answers errors as `{"error": {"message", "status_code", "code"}}` (docs.lob.com, "Error
reference"). Each is turned into a plain-words ProviderError that says what happened and what to
do, and whether the worker retries it (transient: 429, 408, 5xx, network trouble) or pauses the
provider's queue (account problems every letter would hit: no verified payment method, no
billing address, a key Lob does not accept).
"""

from __future__ import annotations

import httpx

from mailroom.letters.providers.base import ProviderError
from mailroom.lib.netloc import secure_url

DEFAULT_BASE_URL = "https://api.lob.com"
TIMEOUT_SECONDS = 30.0  # settings `timeout_seconds` may change it (0.1 to 120)

# Lob's error codes (lower case on the wire) grouped by what the user has to do
ACCOUNT_CODES = {"payment_method_unverified", "billing_address_required", "email_required",
                 "feature_limit_reached"}
KEY_CODES = {"unauthorized", "unauthorized_token", "invalid_api_key",
             "publishable_key_not_allowed"}
FILE_CODES = {"invalid_file", "file_pages_below_min", "file_pages_exceed_max",
              "file_size_exceeds_limit", "inconsistent_page_dimensions",
              "invalid_file_dimensions", "pdf_encrypted", "unembedded_fonts",
              "invalid_image_dpi"}
ADDRESS_CODES = {"failed_deliverability_strictness", "address_length_exceeds_limit",
                 "foreign_return_address", "invalid_international_feature",
                 "invalid_country_covid"}

RETRY_ACTION = "Nothing to do: Mailroom tries again by itself."
RESUME_ACTION = ("Fix it in the Lob dashboard (or enter another key in Letters › Postal "
                 "providers), then press Resume on the provider.")


def base_url(settings: dict) -> str:
    """The API root from the provider's settings (`base_url`), https only — plain http only to
    a loopback address (a local test double)."""
    url = str((settings or {}).get("base_url") or DEFAULT_BASE_URL).rstrip("/")
    if secure_url(url):
        return url
    raise ProviderError("INSECURE_URL", f"The Lob address {url} is not an https:// address; "
                        "Mailroom sends letters and the API key over TLS only.",
                        action="Clear base_url in the provider's settings (Lob's own address "
                               "is used) or give an https:// address.")


def timeout(settings: dict) -> httpx.Timeout:
    try:
        seconds = float((settings or {}).get("timeout_seconds") or TIMEOUT_SECONDS)
    except (TypeError, ValueError):
        seconds = TIMEOUT_SECONDS
    seconds = min(max(seconds, 0.1), 120.0)
    return httpx.Timeout(seconds, connect=min(seconds, 10.0))


def _lob_error(response: httpx.Response) -> tuple[str, str]:
    """(code, message) from Lob's error body; tolerant of bodies that are not Lob's."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    code = str(error.get("code") or "").lower()
    message = str(error.get("message") or "").strip()[:300]
    return code, message


def _wait_hint(response: httpx.Response) -> str:
    wait = response.headers.get("Retry-After", "").strip()
    if wait.isdigit():
        return f" Lob asks to wait {wait} second(s)."
    return ""


def error_for(response: httpx.Response, doing: str) -> ProviderError:
    """The ProviderError for a non-2xx answer; `doing` names the request in plain words
    ("accept the letter", "cancel the letter")."""
    status = response.status_code
    code, said = _lob_error(response)
    said_text = f" Lob said: {said}" if said else ""
    if status == 429:
        return ProviderError("RATE_LIMITED", "Lob is receiving too many requests from this "
                             f"account right now and asked Mailroom to slow down."
                             f"{_wait_hint(response)}", transient=True, action=RETRY_ACTION)
    if status >= 500 or status == 408:
        return ProviderError("LOB_UNAVAILABLE", f"Lob could not {doing} because of a problem on "
                             f"its side (HTTP {status}).{said_text}", transient=True,
                             action=RETRY_ACTION)
    if status == 402 or code in ACCOUNT_CODES:
        return ProviderError("LOB_ACCOUNT", "Lob refuses new letters until the account is in "
                             f"order (payment method, billing address or plan).{said_text}",
                             credit=True, action=RESUME_ACTION)
    if status in (401, 403) or code in KEY_CODES:
        return ProviderError("BAD_CREDENTIALS", "Lob does not accept the API key saved for this "
                             f"provider.{said_text}", credit=True,
                             action="Enter a secret API key (it starts with test_ or live_) in "
                                    "Letters › Postal providers, then press Resume.")
    if code in ("not_deletable", "conflict"):
        return ProviderError("NOT_CANCELLABLE", "Lob is already printing or has mailed this "
                             f"letter: it can no longer be cancelled.{said_text}",
                             action="Tell the recipient to disregard it, or wait for it to "
                                    "come back.")
    if code in FILE_CODES or "file" in code:
        return ProviderError("REJECTED_FILE", f"Lob refused the letter's PDF.{said_text}",
                             action="Check the document (page size US Letter, fonts embedded, "
                                    "not encrypted, not too many pages), then send it again.")
    if code in ADDRESS_CODES or "address" in said.lower() or any(
            key in said for key in ("to.", "from.", "address_")):
        return ProviderError("INVALID_ADDRESS", f"Lob refused the address.{said_text}",
                             action="Correct the postal address (the contact's, or the "
                                    "company's return address), cancel this letter and send "
                                    "it again.")
    if code == "unrecognized_endpoint":
        return ProviderError("BAD_URL", "The Lob address in the provider's settings (base_url) "
                             f"does not lead to Lob's letters API.{said_text}", credit=True,
                             action="Clear base_url (Lob's own address is used) or correct it, "
                                    "then press Resume on the provider.")
    if status == 404:
        return ProviderError("NOT_FOUND", f"Lob does not know this letter.{said_text}",
                             action="Check in the Lob dashboard that the letter exists in this "
                                    "account (test and live keys see different letters).")
    return ProviderError("LOB_REFUSED", f"Lob could not {doing} (HTTP {status}).{said_text}",
                         action="Correct what Lob names, then press Retry on the letter.")


def request(settings: dict, api_key: str, method: str, path: str, doing: str,
            **kwargs) -> dict:
    """One call to Lob with HTTP Basic auth (the API key as user name), TLS verified and
    explicit timeouts. Returns the JSON answer or raises ProviderError."""
    url = f"{base_url(settings)}{path}"
    try:
        with httpx.Client(timeout=timeout(settings), verify=True,
                          follow_redirects=False) as client:
            response = client.request(method, url, auth=(api_key, ""), **kwargs)
    except httpx.TimeoutException:
        # Lob may have done it all the same: the retry carries the same idempotency key
        raise ProviderError("LOB_TIMEOUT", f"Lob did not answer in time when asked to {doing}.",
                            transient=True, action=RETRY_ACTION) from None
    except httpx.HTTPError as exc:
        raise ProviderError("LOB_UNREACHABLE", f"Mailroom could not reach Lob to {doing} "
                            f"({exc.__class__.__name__}: {exc}).", transient=True,
                            action=RETRY_ACTION) from None
    if response.status_code >= 300:
        raise error_for(response, doing)
    try:
        data = response.json()
    except ValueError:
        raise ProviderError("LOB_BAD_ANSWER", f"Lob answered something that is not JSON when "
                            f"asked to {doing} (HTTP {response.status_code}).", transient=True,
                            action=RETRY_ACTION) from None
    if not isinstance(data, dict):
        raise ProviderError("LOB_BAD_ANSWER", f"Lob answered an unexpected shape when asked to "
                            f"{doing}.", transient=True, action=RETRY_ACTION)
    return data

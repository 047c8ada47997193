"""Lob (lob.com): US letters printed and posted through Lob's REST API.

- Credentials (encrypted at rest, never shown back): a JSON object
  `{"api_key": "test_…" or "live_…", "webhook_secret": "…"}`; a bare string is the API key.
  Test keys make Lob render letters without posting them.
- Settings: `base_url` (default https://api.lob.com; Lob has no separate staging host — test
  keys are its sandbox), `mail_type` (usps_first_class, the default, or usps_standard),
  `registered_service` (the extra service for registered postage: certified, the default,
  certified_return_receipt or registered), and the price estimate: `price_per_letter`,
  `price_per_sheet`, `price_color_per_sheet`, `price_extra_service` (US dollars; Lob has no
  price endpoint, so the estimate comes from the settings), `timeout_seconds` (default 30).
- Lob posts letters from and to US addresses only here: another country is said in plain words
  at preview (the price check) and at submit.
- Never twice: every POST /v1/letters carries the letter's idempotency key in the
  `Idempotency-Key` header; Lob answers a repeated key with the letter it already made.
- Webhooks: HMAC-SHA256 of `timestamp + "." + body` with the webhook secret, in the
  `Lob-Signature` header, the timestamp in `Lob-Signature-Timestamp`; an old timestamp is refused
  (a captured webhook replayed later), a missing secret refuses every webhook.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.utils import timezone

from mailroom.letters.providers.base import (
    Provider,
    ProviderError,
    StatusEvent,
    SubmitResult,
    register_provider,
)
from mailroom.letters.providers.lob_http import request

CURRENCY = "USD"
MAIL_TYPES = ("usps_first_class", "usps_standard")
EXTRA_SERVICES = ("certified", "certified_return_receipt", "registered")
# how old a webhook's timestamp may be (either way: clocks drift)
WEBHOOK_TOLERANCE_SECONDS = 300

# Lob's webhook event types and tracking event names → Letter.State and plain words
EVENT_STATES = {
    "letter.created": ("submitted", "Lob accepted the letter."),
    "letter.rendered_pdf": ("submitted", "Lob rendered the letter's proof."),
    "letter.rendered_thumbnails": ("submitted", "Lob rendered the letter's thumbnails."),
    "letter.mailed": ("dispatched", "Handed to USPS."),
    "letter.in_transit": ("dispatched", "In transit with USPS."),
    "letter.in_local_area": ("dispatched", "In the recipient's local area."),
    "letter.processed_for_delivery": ("dispatched", "Processed for delivery."),
    "letter.re-routed": ("dispatched", "Re-routed (forwarded) by USPS."),
    "letter.delivered": ("delivered", "Delivered."),
    "letter.returned_to_sender": ("returned", "Returned to the sender."),
    "letter.deleted": ("cancelled", "Cancelled at Lob."),
    "letter.cancelled": ("cancelled", "Cancelled at Lob."),
    "letter.failed": ("error", "Lob could not produce the letter."),
    "letter.rejected": ("error", "Lob rejected the letter."),
}
TRACKING_STATES = {
    "mailed": "letter.mailed", "in transit": "letter.in_transit",
    "in local area": "letter.in_local_area",
    "processed for delivery": "letter.processed_for_delivery",
    "pickup available": "letter.processed_for_delivery",
    "re-routed": "letter.re-routed", "delivered": "letter.delivered",
    "returned to sender": "letter.returned_to_sender",
}


def _decimal(value) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _address_problem(parts: dict, whose: str, direction: str) -> str:
    """A plain sentence naming what Lob would refuse in an address, or ""."""
    country = str(parts.get("country") or "").upper()
    if country != "US":
        return (f"Lob posts letters only {direction} addresses in the United States; "
                f"{whose} address is in {country or 'no country'}.")
    missing = [label for key, label in (("street", "street"), ("city", "city"),
                                        ("state", "state"), ("zip", "ZIP code"))
               if not str(parts.get(key) or "").strip()]
    if missing:
        return (f"{whose[:1].upper()}{whose[1:]} address has no {', no '.join(missing)}: Lob needs "
                f"them for US mail.")
    return ""


def _lob_address(parts: dict) -> dict[str, str]:
    """Lob's address object from Mailroom's parts (name, organisation, street, street2, zip,
    city, state, country)."""
    address = {"name": parts.get("name", ""), "company": parts.get("organisation", ""),
               "address_line1": parts.get("street", ""),
               "address_line2": parts.get("street2", ""),
               "address_city": parts.get("city", ""), "address_state": parts.get("state", ""),
               "address_zip": parts.get("zip", ""), "address_country": "US"}
    return {key: str(value).strip() for key, value in address.items() if str(value).strip()}


def _company_parts(company) -> dict[str, str]:
    return {"name": "", "organisation": company.name, "street": company.street,
            "street2": company.street2, "city": company.city, "state": company.state,
            "zip": company.zip, "country": str(company.country or "")}


def _tracking_event(event: dict, ref: str, tracking_number: str) -> StatusEvent | None:
    event_type = TRACKING_STATES.get(str(event.get("name") or "").strip().lower())
    if event_type is None:
        return None
    state, words = EVENT_STATES[event_type]
    location = str(event.get("location") or "").strip()
    return StatusEvent(state, f"{words}{' (' + location + ')' if location else ''}",
                       external_id=str(event.get("id") or f"{ref}:{event_type}")[:120],
                       tracking_number=tracking_number,
                       payload={"lob_event": event_type, "time": event.get("time", "")})


@register_provider
class LobProvider(Provider):
    kind = "lob"

    # ---------------------------------------------------------------- configuration

    def _settings(self) -> dict:
        return self.row.settings or {}

    def _credentials(self) -> dict[str, str]:
        raw = (self.row.credentials or "").strip()
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            return {"api_key": raw}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def _api_key(self) -> str:
        key = self._credentials().get("api_key", "").strip()
        if not key:
            raise ProviderError("NO_CREDENTIALS", "No Lob API key is saved for this provider.",
                                credit=True,
                                action='Enter {"api_key": "test_…" or "live_…", '
                                       '"webhook_secret": "…"} as the credentials in Letters › '
                                       'Postal providers, then press Resume.')
        return key

    def _call(self, method: str, path: str, doing: str, **kwargs) -> dict:
        return request(self._settings(), self._api_key(), method, path, doing, **kwargs)

    # ---------------------------------------------------------------- letter

    def _addresses(self, letter) -> tuple[dict, dict]:
        parts = letter.address_parts or {}
        if not parts:
            raise ProviderError("INVALID_ADDRESS", "This letter was queued before Mailroom kept "
                                "addresses field by field, which Lob needs.",
                                action="Cancel it and send the record by post again.")
        sender = _company_parts(letter.company)
        problem = (_address_problem(parts, f"{letter.address_name}'s", "to")
                   or _address_problem(sender, "the company's return", "from"))
        if problem:
            raise ProviderError("INVALID_ADDRESS", problem,
                                action="Correct the contact's (or the company's) postal address, "
                                       "or send it through another postal provider.")
        return _lob_address(parts), _lob_address(sender)

    def _mail_options(self, letter) -> dict[str, str]:
        settings = self._settings()
        mail_type = str(settings.get("mail_type") or "usps_first_class")
        if mail_type not in MAIL_TYPES:
            raise ProviderError("BAD_SETTINGS", f"The Lob mail type {mail_type!r} is unknown.",
                                action=f"Set mail_type to one of {', '.join(MAIL_TYPES)}.")
        options = {"mail_type": mail_type}
        if letter.postage != "standard":  # priority and registered go first class
            options["mail_type"] = "usps_first_class"
        if letter.postage == "registered":
            service = str(settings.get("registered_service") or "certified")
            if service not in EXTRA_SERVICES:
                raise ProviderError("BAD_SETTINGS", f"The Lob extra service {service!r} is "
                                    "unknown.", action="Set registered_service to one of "
                                                       f"{', '.join(EXTRA_SERVICES)}.")
            options["extra_service"] = service
        return options

    def _form(self, letter) -> dict[str, str]:
        to, sender = self._addresses(letter)
        form = {
            "description": f"Mailroom letter {letter.pk}: {letter.record_label}"[:255],
            "color": "true" if letter.color else "false",
            "double_sided": "true" if letter.duplex else "false",
            # our PDFs print the address in the US #10 window: Lob prints its own there
            # only when the layout was made for another window standard
            "address_placement": ("top_first_page" if self.row.window_standard == "us10"
                                  else "insert_blank_page"),
            "use_type": "operational",
            "metadata[mailroom_letter]": str(letter.pk),
            **self._mail_options(letter),
        }
        form.update({f"to[{key}]": value for key, value in to.items()})
        form.update({f"from[{key}]": value for key, value in sender.items()})
        return form

    def submit(self, letter, pdf: bytes) -> SubmitResult:
        answer = self._call(
            "POST", "/v1/letters", "accept the letter", data=self._form(letter),
            files={"file": (f"letter-{letter.pk}.pdf", pdf, "application/pdf")},
            headers={"Idempotency-Key": str(letter.idempotency_key)})
        letter_id = str(answer.get("id") or "")
        if not letter_id.startswith("ltr_"):
            raise ProviderError("LOB_BAD_ANSWER", "Lob accepted the request but named no letter.",
                                transient=True,
                                action="Nothing to do: Mailroom asks again with the same key, "
                                       "so Lob cannot post it twice.")
        message = f"Accepted by Lob as {letter_id}."
        if answer.get("expected_delivery_date"):
            message += f" Expected delivery: {answer['expected_delivery_date']}."
        if self._api_key().startswith("test_"):
            message += " Test key: Lob renders it but does not post it."
        price, currency = self.price(letter)
        return SubmitResult(provider_id=letter_id, price=price, currency=currency,
                            message=message)

    def cancel(self, letter) -> None:
        if not letter.provider_ref:
            return  # Lob never accepted it: nothing to take back there
        self._call("DELETE", f"/v1/letters/{letter.provider_ref}", "cancel the letter")

    def status(self, letter) -> list[StatusEvent]:
        if not letter.provider_ref:
            return []
        ref = letter.provider_ref
        answer = self._call("GET", f"/v1/letters/{ref}", "tell where the letter is")
        return _letter_events(answer, ref)

    def price(self, letter) -> tuple[Decimal | None, str]:
        self._addresses(letter)  # a letter Lob cannot post has no price: say why at preview
        settings = self._settings()
        base = _decimal(settings.get("price_per_letter"))
        if base is None:
            return None, CURRENCY
        sheets = max(letter.sheets, 1)
        total = base + (_decimal(settings.get("price_per_sheet")) or 0) * sheets
        if letter.color:
            total += (_decimal(settings.get("price_color_per_sheet")) or 0) * sheets
        if letter.postage == "registered":
            total += _decimal(settings.get("price_extra_service")) or 0
        return total.quantize(Decimal("0.01")), CURRENCY

    def test_connection(self) -> str:
        key = self._api_key()
        self._call("GET", "/v1/addresses", "list addresses", params={"limit": 1})
        mode = ("test key: Lob renders letters but never posts them" if key.startswith("test_")
                else "live key: letters are printed and posted")
        words = f"Lob accepts the API key ({mode})."
        if not self._credentials().get("webhook_secret"):
            words += (" No webhook secret is saved: Mailroom learns where letters are only by "
                      "asking Lob every 30 minutes.")
        return words

    # ---------------------------------------------------------------- webhooks

    def parse_webhook(self, request_) -> list[tuple[str, StatusEvent]]:
        self._verify(request_)
        try:
            event = json.loads(request_.body)
        except ValueError:
            raise ProviderError("BAD_WEBHOOK", "The webhook body is not JSON.") from None
        if not isinstance(event, dict):
            raise ProviderError("BAD_WEBHOOK", "The webhook body is not a Lob event.")
        kind = event.get("event_type")
        event_type = str(kind.get("id") or "") if isinstance(kind, dict) else str(kind or "")
        body: dict = event["body"] if isinstance(event.get("body"), dict) else {}
        ref = str(body.get("id") or event.get("reference_id") or "")
        if event_type not in EVENT_STATES or not ref.startswith("ltr_"):
            return []  # another resource or an event that moves no letter: acknowledged
        state, words = EVENT_STATES[event_type]
        external_id = str(event.get("id") or "")
        # a tracking event carries Lob's tracking event id, the same one a status poll sees:
        # the timeline gets one line for it however the news arrives
        tracked = body.get("tracking_events")
        for tracking in reversed(tracked if isinstance(tracked, list) else []):
            if (isinstance(tracking, dict) and TRACKING_STATES.get(
                    str(tracking.get("name") or "").lower()) == event_type and tracking.get("id")):
                external_id = str(tracking["id"])
                break
        if state in ("cancelled", "error"):
            external_id = f"{ref}:{state}"
        if state == "error" and body.get("failure_reason"):
            words = f"{words} {_failure(body)}"
        return [(ref, StatusEvent(state, words, external_id=external_id[:120],
                                  tracking_number=str(body.get("tracking_number") or ""),
                                  payload={"lob_event": event_type}))]

    def _verify(self, request_) -> None:
        secret = self._credentials().get("webhook_secret", "")
        if not secret:
            raise ProviderError("BAD_SIGNATURE", "No webhook secret is saved for this Lob "
                                "provider, so Mailroom trusts none of its webhooks.",
                                action="Copy the secret of the webhook from the Lob dashboard "
                                       "into the provider's credentials.")
        stamp = request_.headers.get("Lob-Signature-Timestamp", "").strip()
        signature = request_.headers.get("Lob-Signature", "").strip().lower()
        if not stamp.isdigit() or not signature:
            raise ProviderError("BAD_SIGNATURE", "The webhook is not signed by Lob.")
        seconds = int(stamp) / 1000 if len(stamp) > 11 else int(stamp)  # Lob sends milliseconds
        if abs(time.time() - seconds) > WEBHOOK_TOLERANCE_SECONDS:
            raise ProviderError("BAD_SIGNATURE", "The webhook's signature is too old (a replay "
                                "of an old webhook, or this server's clock is wrong).")
        expected = hmac.new(secret.encode(), stamp.encode() + b"." + request_.body,
                            hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise ProviderError("BAD_SIGNATURE", "The webhook signature does not match.")


def _failure(body: dict) -> str:
    reason = body.get("failure_reason")
    if isinstance(reason, dict):
        return str(reason.get("message") or reason.get("code") or "")[:200]
    return str(reason or "")[:200]


def _letter_events(answer: dict, ref: str) -> list[StatusEvent]:
    """Events from Lob's letter object (GET /v1/letters/{id})."""
    tracking_number = str(answer.get("tracking_number") or "")
    events = [event for event in (
        _tracking_event(item, ref, tracking_number)
        for item in answer.get("tracking_events") or [] if isinstance(item, dict))
        if event is not None]
    if answer.get("deleted"):
        events.append(StatusEvent("cancelled", EVENT_STATES["letter.deleted"][1],
                                  external_id=f"{ref}:cancelled"))
    elif answer.get("status") == "failed":
        events.append(StatusEvent("error", f"Lob could not produce the letter. "
                                           f"{_failure(answer)}".strip(),
                                  external_id=f"{ref}:error"))
    elif not events and _sent(answer.get("send_date")):
        events.append(StatusEvent("printed", "In production at Lob (it can no longer be "
                                             "cancelled).", external_id=f"{ref}:printed"))
    return events


def _sent(send_date) -> bool:
    """Lob's send date (ISO 8601) has passed: the letter is in production."""
    if not send_date:
        return False
    text = str(send_date)
    try:
        if len(text) == 10:
            return date.fromisoformat(text) <= timezone.now().date()
        return datetime.fromisoformat(text.replace("Z", "+00:00")) <= timezone.now()
    except ValueError:
        return False

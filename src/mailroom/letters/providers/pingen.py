"""Pingen (pingen.com) prints and posts the letters: API v2, JSON:API, OAuth2 client credentials.

Configuration of a PostalProvider of kind "pingen":
- settings: `{"organisation_id": "<uuid>", "environment": "production" | "staging"}`
  (optionally `api_url` / `identity_url` instead of the environment, `scope`, and
  `delivery_products` to override the postage mapping, e.g. `{"standard": "bulk"}`);
- credentials (encrypted, write-only): `{"client_id": "…", "client_secret": "…",
  "webhook_signing_key": "…"}`;
- in Pingen, a webhook for the categories issues, sent and undeliverable pointing at
  `https://<mailroom>/letters/webhooks/<provider id>/`, signed with that key.

Submitting: a signed upload URL, the PDF PUT there, then the letter created in the
organisation with `auto_send` and the letter's idempotency key as `Idempotency-Key`: a worker
that crashed after Pingen accepted asks again with the same key and gets the same letter.
The address is read by Pingen from the PDF's window: left, or right for the Swiss SN 010130
window standard.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from decimal import Decimal, InvalidOperation

from mailroom.letters.models import WindowStandard
from mailroom.letters.providers.base import (
    Provider,
    ProviderError,
    StatusEvent,
    SubmitResult,
    register_provider,
)
from mailroom.letters.providers.pingen_api import PingenClient, PingenConfig

# Letter.postage → Pingen delivery product (cheap: B-Post/economy, fast: A-Post/priority)
DELIVERY_PRODUCTS = {"standard": "cheap", "priority": "fast", "registered": "registered"}

# Pingen letter status → Letter.State
STATUS_STATES = {
    "validating": "submitted", "valid": "submitted", "submitted": "submitted",
    "accepted": "submitted", "awaiting_credits": "submitted", "fixing": "submitted",
    "inspection": "submitted", "transferring": "submitted",
    "printing": "printed", "processing": "printed",
    "sent": "dispatched", "delivered": "delivered", "undeliverable": "returned",
    "invalid": "error", "action_required": "error", "unprintable": "error",
    "rejected": "error", "expired": "error",
    "cancelling": "cancelled", "cancelled": "cancelled",
}
# Pingen letter event code → Letter.State (codes not named here say nothing about the state)
EVENT_STATES = {
    "transferred_to_printcenter": "submitted", "processing": "printed",
    "transferred_to_distributor": "dispatched", "receival_confirmed_by_distributor":
    "dispatched", "track_and_trace": "dispatched", "delivered": "delivered",
    "undeliverable": "returned", "cancellation_completed": "cancelled",
    "file_not_a4_portrait": "error", "file_not_found": "error", "file_not_readable": "error",
    "file_size_over_limit": "error", "file_too_many_pages": "error",
    "invalid_pdf_binary_content": "error", "content_failed_inspection": "error",
    "rejected_from_printcenter": "error", "shipping_country_blocked": "error",
    "shipping_organization_country_blocked": "error",
    "unable_to_find_delivery_product": "error", "waiting_for_funds_expired": "error",
    "waiting_for_legitimacy_expired": "error",
}
# webhook category (data.type) → Letter.State, when the body carries no letter status
WEBHOOK_STATES = {"webhook_sent": "dispatched", "webhook_undeliverable": "returned",
                  "webhook_issues": "error", "webhook_delivered": "delivered"}
CANCELLABLE = frozenset({"validating", "valid", "submitted", "accepted", "awaiting_credits",
                         "action_required", "invalid", "fixing"})


def _decimal(value) -> Decimal | None:
    try:
        return Decimal(str(value)).quantize(Decimal("0.01")) if value not in (None, "") else None
    except InvalidOperation:
        return None


@register_provider
class PingenProvider(Provider):
    kind = "pingen"

    def __init__(self, row):
        super().__init__(row)
        self._config: PingenConfig | None = None

    @property
    def config(self) -> PingenConfig:
        if self._config is None:
            self._config = PingenConfig.from_row(self.row)
        return self._config

    def client(self) -> PingenClient:
        return PingenClient(self.config)

    # -- what a letter asks for

    def delivery_product(self, letter) -> str:
        overrides = (self.row.settings or {}).get("delivery_products") or {}
        products = {**DELIVERY_PRODUCTS, **(overrides if isinstance(overrides, dict) else {})}
        return str(products.get(letter.postage, DELIVERY_PRODUCTS["standard"]))

    def address_position(self) -> str:
        return "right" if self.row.window_standard == WindowStandard.SN010130 else "left"

    def attributes(self, letter) -> dict:
        return {"address_position": self.address_position(), "auto_send": True,
                "delivery_product": self.delivery_product(letter),
                "print_mode": "duplex" if letter.duplex else "simplex",
                "print_spectrum": "color" if letter.color else "grayscale"}

    # -- the interface

    def submit(self, letter, pdf: bytes) -> SubmitResult:
        with self.client() as api:
            file_url, signature = api.upload(pdf)
            doing = "creating the letter"
            body = {"data": {"type": "letters", "attributes": {
                "file_original_name": f"letter-{letter.pk}.pdf", "file_url": file_url,
                "file_url_signature": signature, **self.attributes(letter)}}}
            response = api.request("POST", api.org_path("/letters"), doing, body=body,
                                   headers={"Idempotency-Key": str(letter.idempotency_key)})
            data = api.data(response, doing)
        if not isinstance(data, dict) or not data.get("id"):
            raise ProviderError("PINGEN_UNAVAILABLE", "Pingen accepted the letter but did not "
                                "say its id.", transient=True,
                                action="Nothing: Mailroom asks again with the same key and "
                                       "gets the same letter.")
        attributes = data.get("attributes") or {}
        status = str(attributes.get("status") or "")
        state = STATUS_STATES.get(status, "submitted")
        if state not in ("submitted", "printed", "dispatched"):
            state = "submitted"  # a refusal comes as a letter event: the webhook or poll says it
        replayed = response.headers.get("Idempotent-Replayed", "").lower() == "true"
        message = (f"{'Already accepted' if replayed else 'Accepted'} by Pingen "
                   f"(status: {status or 'unknown'}).")
        if status == "awaiting_credits":  # Pingen keeps it and posts it once the balance is up
            message += " Pingen waits for credit: top up the Pingen balance to have it posted."
        return SubmitResult(
            provider_id=str(data["id"]), price=_decimal(attributes.get("price_value")),
            currency=str(attributes.get("price_currency") or ""), state=state, message=message)

    def cancel(self, letter) -> None:
        if not letter.provider_ref:
            return  # Pingen never gave an id: nothing there to cancel
        with self.client() as api:
            try:
                api.request("PATCH", api.org_path(f"/letters/{letter.provider_ref}/cancel"),
                            "cancelling the letter")
            except ProviderError as exc:
                if exc.transient or exc.code in ("BAD_CREDENTIALS", "BAD_SETTINGS"):
                    raise
                raise ProviderError("CANNOT_CANCEL", "Pingen no longer lets this letter be "
                                    "cancelled: it is being printed or is already posted. "
                                    + exc.message, action="Ask Pingen's support, or tell the "
                                    "recipient to disregard the letter.") from None

    def status(self, letter) -> list[StatusEvent]:
        if not letter.provider_ref:
            return []
        path = f"/letters/{letter.provider_ref}"
        with self.client() as api:
            doing = "reading the letter's status"
            data = api.data(api.request("GET", api.org_path(path), doing), doing)
            events = api.data(api.request("GET", api.org_path(f"{path}/events"), doing), doing)
        attributes = data.get("attributes") or {}
        tracking = str(attributes.get("tracking_number") or "")
        found = []
        for event in events if isinstance(events, list) else []:
            code = str((event.get("attributes") or {}).get("code") or "")
            if code in EVENT_STATES:
                found.append(self._event(event, EVENT_STATES[code], tracking))
        status = str(attributes.get("status") or "")
        if status in STATUS_STATES:  # the letter's status, once per status
            found.append(StatusEvent(STATUS_STATES[status], f"Pingen: {status}.",
                                     external_id=f"status:{data.get('id')}:{status}",
                                     tracking_number=tracking, payload={"status": status}))
        return found

    def _event(self, event: dict, state: str, tracking: str = "") -> StatusEvent:
        attributes = event.get("attributes") or {}
        name = str(attributes.get("name") or attributes.get("code") or "")
        where = str(attributes.get("location") or "")
        return StatusEvent(state, f"Pingen: {name}{f' ({where})' if where else ''}.",
                           external_id=str(event.get("id") or ""), tracking_number=tracking,
                           payload={"code": attributes.get("code", ""),
                                    "emitted_at": attributes.get("emitted_at", "")})

    def price(self, letter) -> tuple[Decimal | None, str]:
        """Pingen's price calculator; when Pingen cannot be asked, the estimate from the
        settings (`price_per_letter`, `price_per_sheet`) or nothing."""
        attributes = self.attributes(letter)
        body = {"data": {"type": "letter_price_calculator", "attributes": {
            "country": letter.address_country or "CH",
            "paper_types": ["normal"] * max(letter.pages or 1, 1),
            "print_mode": attributes["print_mode"],
            "print_spectrum": attributes["print_spectrum"],
            "delivery_product": attributes["delivery_product"]}}}
        try:
            with self.client() as api:
                doing = "asking the price"
                data = api.data(api.request("POST", api.org_path("/letters/price-calculator"),
                                            doing, body=body), doing)
            price = _decimal((data.get("attributes") or {}).get("price"))
            currency = str((data.get("attributes") or {}).get("currency") or "")
            if price is not None:
                return price, currency
        except ProviderError:
            pass
        return self._estimate(letter)

    def _estimate(self, letter) -> tuple[Decimal | None, str]:
        settings = self.row.settings or {}
        per_letter = _decimal(settings.get("price_per_letter"))
        per_sheet = _decimal(settings.get("price_per_sheet"))
        if per_letter is None and per_sheet is None:
            return None, ""
        total = (per_letter or Decimal(0)) + (per_sheet or Decimal(0)) * (letter.sheets or 1)
        return total.quantize(Decimal("0.01")), str(settings.get("currency")
                                                     or letter.company.currency)

    def test_connection(self) -> str:
        with self.client() as api:
            api.token(fresh=True)
            doing = "reading the organisation"
            data = api.data(api.request("GET", api.org_path(), doing), doing)
        attributes = data.get("attributes") or {}
        name = attributes.get("name") or self.config.organisation_id
        balance = attributes.get("billing_balance")
        money = (f" Balance: {balance} {attributes.get('billing_currency', '')}.".rstrip()
                 if balance is not None else "")
        hooks = ("" if self.config.webhook_signing_key else " No webhook signing key is set: "
                 "status news comes only from the half-hourly poll.")
        return f"Connected to the Pingen organisation {name}.{money}{hooks}"

    def parse_webhook(self, request) -> list[tuple[str, StatusEvent]]:
        try:
            key = self.config.webhook_signing_key
        except ProviderError:  # unreadable settings: say no more to an anonymous caller
            key = ""
        if not key:
            raise ProviderError("BAD_SIGNATURE", "This Pingen provider has no webhook signing "
                                "key, so Mailroom cannot trust webhooks for it.")
        expected = hmac.new(key.encode(), request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("Signature", "").strip()):
            raise ProviderError("BAD_SIGNATURE", "The webhook signature does not match.")
        try:
            body = json.loads(request.body)
            data = body["data"]
            relationships = data.get("relationships") or {}
            letter_id = str(relationships["letter"]["data"]["id"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ProviderError("BAD_PAYLOAD", "The webhook is not a Pingen letter event.") \
                from None
        event_ref = ((relationships.get("event") or {}).get("data") or {}).get("id")
        included = {(item.get("type"), str(item.get("id"))): item
                    for item in body.get("included") or [] if isinstance(item, dict)}
        letter = (included.get(("letters", letter_id)) or {}).get("attributes") or {}
        event = included.get(("letters_events", str(event_ref))) or {"id": event_ref,
                                                                     "attributes": {}}
        code = str((event.get("attributes") or {}).get("code") or "")
        state = (STATUS_STATES.get(str(letter.get("status") or ""))
                 or EVENT_STATES.get(code) or WEBHOOK_STATES.get(str(data.get("type")), ""))
        if not state:
            return []
        found = self._event({**event, "id": event_ref or data.get("id")}, state,
                            str(letter.get("tracking_number") or ""))
        if not (event.get("attributes") or {}).get("name"):
            reason = (data.get("attributes") or {}).get("reason") or data.get("type")
            found = StatusEvent(found.state, f"Pingen: {reason}.", external_id=found.external_id,
                                tracking_number=found.tracking_number, payload=found.payload)
        return [(letter_id, found)]

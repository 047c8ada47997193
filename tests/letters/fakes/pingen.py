"""A fake Pingen API v2 on 127.0.0.1, speaking its documented wire protocol.

- `POST /auth/access-tokens` (form: grant_type=client_credentials, client_id, client_secret,
  scope) → `{"token_type": "Bearer", "expires_in": …, "access_token": …}`; 401 invalid_client.
- JSON:API (`application/vnd.api+json`) with `Authorization: Bearer …`:
  `GET /file-upload` → a signed upload URL (`PUT` the PDF there, no token);
  `POST /organisations/{org}/letters` (honours `Idempotency-Key`: the same key gives the
  same letter and `Idempotent-Replayed: true`); `GET …/letters/{id}` and `…/letters/{id}/events`;
  `PATCH …/letters/{id}/cancel` (202 while Pingen still allows it, else 422);
  `POST …/letters/price-calculator`; `GET /organisations/{org}`.
- Webhooks: JSON:API bodies signed with HMAC-SHA256 of the body, hex, in `Signature`.

It counts letters created and token requests, can be told to answer the next API request with
an error (`fail_next`), moves letters on (`advance`) and builds signed webhooks (`webhook`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

JSON_API = "application/vnd.api+json"
CANCELLABLE = {"validating", "valid", "submitted", "accepted", "awaiting_credits",
               "action_required", "invalid"}
PRICES = {"cheap": 0.95, "fast": 1.25, "registered": 6.50, "bulk": 0.85, "premium": 1.60}


def _error(status: int, code: str, title: str, detail: str = "", pointer: str = "") -> tuple:
    error = {"code": code, "title": title, "detail": detail or title}
    if pointer:
        error["source"] = {"pointer": pointer}
    return status, {"errors": [error]}, {}


# the error answers the tests ask for, as Pingen words them
INVALID_ADDRESS = _error(422, "validation_failed", "The given data was invalid.",
                         "The recipient address could not be recognised in the address window.",
                         "/data/attributes/address_position")
NO_CREDIT = _error(422, "insufficient_credits", "Insufficient credits",
                   "The organisation's balance is too low to send this letter.")
REJECTED_PDF = _error(422, "validation_failed", "The given data was invalid.",
                      "The file is not a valid PDF document.", "/data/attributes/file_url")
RATE_LIMITED = (429, {"errors": [{"code": "too_many_requests", "title": "Too Many Attempts."}]},
                {"Retry-After": "30"})
SERVER_ERROR = (503, {"errors": [{"code": "service_unavailable",
                                  "title": "Service Unavailable"}]}, {})
IN_PROGRESS = (409, {"errors": [{"code": "idempotency_key_in_use",
                                  "title": "A request with this Idempotency-Key is in progress."}]},
               {})
UNAUTHENTICATED = (401, {"errors": [{"code": "unauthenticated",
                                     "title": "Unauthenticated."}]}, {})


class FakePingen:
    def __init__(self) -> None:
        self.client_id = "mailroom-client"
        self.client_secret = secrets.token_hex(16)
        self.organisation_id = str(uuid.uuid4())
        self.webhook_key = secrets.token_hex(16)
        self.currency = "EUR"
        # what a new letter's status is ("awaiting_credits": a prepaid balance too low)
        self.initial_status = "validating"
        self.lock = threading.Lock()
        self.tokens: set[str] = set()
        self.token_requests = 0
        self.uploads: dict[str, dict] = {}  # upload id → {"signature", "pdf"}
        self.letters: dict[str, dict] = {}
        self.events: dict[str, list[dict]] = {}
        self.by_key: dict[str, str] = {}  # Idempotency-Key → letter id
        self.created = 0
        self.create_requests = 0
        self.failures: list[tuple[tuple[str, str], tuple]] = []
        self.requests: list[tuple[str, str, dict]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakePingen:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what tests use

    @property
    def settings(self) -> dict:
        return {"organisation_id": self.organisation_id, "api_url": self.url,
                "identity_url": self.url}

    @property
    def credentials(self) -> str:
        return json.dumps({"client_id": self.client_id, "client_secret": self.client_secret,
                           "webhook_signing_key": self.webhook_key})

    def fail_next(self, answer: tuple, times: int = 1, on: tuple[str, str] = ("", "")) -> None:
        """Answer the next `times` API requests (not token requests) with `answer`:
        (status, JSON body, headers); `on` = (method, path ending) picks which requests."""
        with self.lock:
            self.failures += [(on, answer)] * times

    def _failure(self, method: str, path: str) -> tuple | None:
        with self.lock:
            for i, ((want_method, want_end), answer) in enumerate(self.failures):
                if want_method in ("", method) and path.endswith(want_end):
                    del self.failures[i]
                    return answer
        return None

    def advance(self, letter_id: str, status: str, code: str, name: str,
                tracking_number: str = "") -> dict:
        """Move a letter on at Pingen, as its print centre does; the new letter event."""
        with self.lock:
            letter = self.letters[letter_id]
            letter["attributes"]["status"] = status
            if tracking_number:
                letter["attributes"]["tracking_number"] = tracking_number
            return self._add_event(letter_id, code, name)

    def webhook(self, letter_id: str, category: str, event: dict) -> tuple[bytes, dict]:
        """A signed webhook body for `event` (category: issues, sent, undeliverable) and the
        headers Pingen sends with it."""
        with self.lock:
            letter = json.loads(json.dumps(self.letters[letter_id]))
        body = json.dumps({
            "data": {"type": f"webhook_{category}", "id": str(uuid.uuid4()),
                     "attributes": {"reason": event["attributes"]["name"],
                                    "url": "https://mailroom.example/letters/webhooks/1/",
                                    "created_at": event["attributes"]["emitted_at"]},
                     "relationships": {
                         "organisation": {"data": {"type": "organisations",
                                                   "id": self.organisation_id}},
                         "letter": {"data": {"type": "letters", "id": letter_id}},
                         "event": {"data": {"type": "letters_events", "id": event["id"]}}}},
            "included": [self._organisation(), letter, event]}).encode()
        signature = hmac.new(self.webhook_key.encode(), body, hashlib.sha256).hexdigest()
        return body, {"Content-Type": JSON_API, "Signature": signature}

    # -- the service

    def _organisation(self) -> dict:
        return {"type": "organisations", "id": self.organisation_id,
                "attributes": {"name": "Acme Print", "status": "active",
                               "billing_mode": "prepaid", "billing_currency": self.currency,
                               "billing_balance": 120.5, "default_country": "FR"}}

    def _add_event(self, letter_id: str, code: str, name: str) -> dict:
        event = {"type": "letters_events", "id": str(uuid.uuid4()),
                 "attributes": {"code": code, "name": name, "producer": "Pingen",
                                "location": "", "has_image": False, "data": [],
                                "emitted_at": "2026-12-06T10:00:00+0100"}}
        self.events.setdefault(letter_id, []).append(event)
        return event

    def create_letter(self, attributes: dict, key: str) -> tuple:
        with self.lock:
            self.create_requests += 1
            if key and key in self.by_key:
                return 201, {"data": self.letters[self.by_key[key]]}, {
                    "Idempotent-Replayed": "true"}
            upload_id = urlsplit(str(attributes.get("file_url", ""))).path.rsplit("/", 1)[-1]
            upload = self.uploads.get(upload_id)
            if (upload is None or upload.get("pdf") is None
                    or upload["signature"] != attributes.get("file_url_signature")):
                return _error(422, "validation_failed", "The given data was invalid.",
                              "The file_url_signature does not match an uploaded file.",
                              "/data/attributes/file_url_signature")
            for name, allowed in (("address_position", {"left", "right"}),
                                  ("print_mode", {"simplex", "duplex"}),
                                  ("print_spectrum", {"grayscale", "color"}),
                                  ("delivery_product", set(PRICES))):
                if attributes.get(name) not in allowed:
                    return _error(422, "validation_failed", "The given data was invalid.",
                                  f"The selected {name} is invalid.", f"/data/attributes/{name}")
            letter_id = str(uuid.uuid4())
            self.letters[letter_id] = {
                "type": "letters", "id": letter_id,
                "attributes": {
                    "status": self.initial_status,
                    "file_original_name": attributes.get("file_original_name", ""),
                    "file_pages": None, "address": "", "country": "FR",
                    "address_position": attributes["address_position"],
                    "delivery_product": attributes["delivery_product"],
                    "print_mode": attributes["print_mode"],
                    "print_spectrum": attributes["print_spectrum"],
                    "auto_send": attributes.get("auto_send"),
                    "price_currency": self.currency,
                    "price_value": PRICES[attributes["delivery_product"]],
                    "paper_types": ["normal"], "tracking_number": None},
                "links": {"self": f"{self.url}/organisations/{self.organisation_id}/letters/"
                                  f"{letter_id}"}}
            self._add_event(letter_id, "created", "Letter created")
            if key:
                self.by_key[key] = letter_id
            self.created += 1
            return 201, {"data": self.letters[letter_id]}, {}

    def cancel_letter(self, letter_id: str) -> tuple:
        with self.lock:
            letter = self.letters.get(letter_id)
            if letter is None:
                return _error(404, "not_found", "Not Found")
            if letter["attributes"]["status"] not in CANCELLABLE:
                return _error(422, "letter_not_cancellable", "Letter cannot be cancelled.",
                              "The letter is already being processed and cannot be cancelled.")
            letter["attributes"]["status"] = "cancelled"
            self._add_event(letter_id, "cancellation_completed", "Cancellation completed")
            return 202, None, {}


def _handler(fake: FakePingen):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _answer(self, status: int, body=None, headers=None, content_type=JSON_API) -> None:
            payload = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            if body is not None:
                self.send_header("Content-Type", content_type)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _handle(self, method: str) -> None:
            raw = self._body()
            path = urlsplit(self.path).path
            fake.requests.append((method, path, dict(self.headers)))
            if method == "POST" and path == "/auth/access-tokens":
                return self._token(raw)
            if method == "PUT" and path.startswith("/uploads/"):
                return self._upload(path.rsplit("/", 1)[-1], raw)
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if token not in fake.tokens:
                return self._answer(*UNAUTHENTICATED)
            failure = fake._failure(method, path)
            if failure is not None:
                return self._answer(*failure)
            return self._answer(*self._route(method, path, raw))

        def _token(self, raw: bytes) -> None:
            form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
            with fake.lock:
                fake.token_requests += 1
            if (form.get("grant_type") != "client_credentials"
                    or form.get("client_id") != fake.client_id
                    or form.get("client_secret") != fake.client_secret):
                return self._answer(401, {"error": "invalid_client",
                                          "error_description": "Client authentication failed",
                                          "message": "Client authentication failed"},
                                    content_type="application/json")
            token = secrets.token_urlsafe(24)
            with fake.lock:
                fake.tokens.add(token)
            self._answer(200, {"token_type": "Bearer", "expires_in": 43200,
                               "access_token": token}, content_type="application/json")

        def _upload(self, upload_id: str, raw: bytes) -> None:
            with fake.lock:
                upload = fake.uploads.get(upload_id)
                if upload is None:
                    return self._answer(403, None)
                upload["pdf"] = raw
            self._answer(200, None)

        def _route(self, method: str, path: str, raw: bytes) -> tuple:
            parts = path.strip("/").split("/")
            if method == "GET" and parts == ["file-upload"]:
                upload_id = uuid.uuid4().hex
                signature = secrets.token_hex(32)
                with fake.lock:
                    fake.uploads[upload_id] = {"signature": signature, "pdf": None}
                return 200, {"data": {"id": upload_id, "type": "file_uploads", "attributes": {
                    "url": f"{fake.url}/uploads/{upload_id}", "url_signature": signature,
                    "expires_at": "2026-12-06T11:00:00+0100"}}}, {}
            if len(parts) < 2 or parts[0] != "organisations" or parts[1] != fake.organisation_id:
                return _error(404, "not_found", "Not Found")
            rest = parts[2:]
            if method == "GET" and not rest:
                return 200, {"data": fake._organisation()}, {}
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                return _error(400, "bad_request", "The request body is not JSON.")
            if method == "POST" and rest == ["letters"]:
                return fake.create_letter(body["data"]["attributes"],
                                          self.headers.get("Idempotency-Key", ""))
            if method == "POST" and rest == ["letters", "price-calculator"]:
                attributes = body["data"]["attributes"]
                price = PRICES.get(attributes.get("delivery_product"), 1.0) + 0.10 * len(
                    attributes.get("paper_types") or [])
                return 200, {"data": {"id": str(uuid.uuid4()), "type": "letter_price_calculator",
                                      "attributes": {"currency": fake.currency,
                                                     "price": round(price, 2)}}}, {}
            if len(rest) >= 2 and rest[0] == "letters":
                letter = fake.letters.get(rest[1])
                if letter is None:
                    return _error(404, "not_found", "Not Found")
                if method == "GET" and len(rest) == 2:
                    return 200, {"data": letter}, {}
                if method == "GET" and rest[2:] == ["events"]:
                    return 200, {"data": list(fake.events.get(rest[1], []))}, {}
                if method == "PATCH" and rest[2:] == ["cancel"]:
                    return fake.cancel_letter(rest[1])
            return _error(404, "not_found", "Not Found")

        def do_GET(self) -> None:  # noqa: N802
            self._handle("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._handle("POST")

        def do_PUT(self) -> None:  # noqa: N802
            self._handle("PUT")

        def do_PATCH(self) -> None:  # noqa: N802
            self._handle("PATCH")

    return Handler


@pytest.fixture
def pingen_fake():
    fake = FakePingen().start()
    yield fake
    fake.stop()


@pytest.fixture
def pingen_provider_fields(pingen_fake):
    """What the contract suite needs to make a "pingen" provider talk to the fake."""
    return {"settings": pingen_fake.settings, "credentials": pingen_fake.credentials}


class PingenDriver:
    """Moves a letter on at the fake Pingen, as its print centre would."""

    def __init__(self, fake: FakePingen):
        self.fake = fake

    def printed(self, letter) -> None:
        self.fake.advance(letter.provider_ref, "printing", "processing", "Letter is printing")


@pytest.fixture
def pingen_driver(pingen_fake):
    return PingenDriver(pingen_fake)

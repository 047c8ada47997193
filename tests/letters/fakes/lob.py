"""A fake Lob on 127.0.0.1, speaking Lob's documented wire protocol (docs.lob.com):

- HTTP Basic auth, the secret API key as the user name and no password; a wrong key is a 401
  `{"error": {"message", "status_code", "code": "unauthorized"}}`.
- POST /v1/letters, multipart/form-data with `to[…]`/`from[…]` address fields, `file` (the PDF),
  `color`, `double_sided`, `address_placement`, `mail_type`, `extra_service`, `use_type`,
  `metadata[…]`; the `Idempotency-Key` header: the same key again answers the letter already
  made (counted in `created` once). The letter object has `id` ltr_…, `send_date` (the end of
  the cancellation window), `tracking_events`, `tracking_number`.
- GET /v1/letters/{id}; DELETE /v1/letters/{id} while the send date has not passed, else 422
  `not_deletable`; GET /v1/addresses (Test connection).
- Errors answered on demand (`fail_next`), and signed webhooks (`webhook`): an event object
  `{"id": "evt_…", "event_type": {"id": "letter.mailed", …}, "reference_id", "body": letter}`
  with `Lob-Signature` = hex HMAC-SHA256 of `timestamp + "." + body` under the webhook secret
  and `Lob-Signature-Timestamp` in milliseconds.

Fixtures: `lob_fake`, `lob_us` (Acme and its customer in the United States: Lob posts letters
only there), `lob_provider_fields` and `lob_driver` (for the contract suite), `lob_row`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

PLACEMENTS = ("top_first_page", "insert_blank_page", "bottom_first_page_center",
              "bottom_first_page")
MAIL_TYPES = ("usps_first_class", "usps_standard")
EXTRA_SERVICES = ("certified", "certified_return_receipt", "registered")
US_REQUIRED = ("address_line1", "address_city", "address_state", "address_zip")


def error(status: int, code: str, message: str, headers: dict | None = None) -> tuple:
    """An answer in Lob's error shape: (status, body, headers)."""
    return (status, {"error": {"message": message, "status_code": status, "code": code}},
            headers or {})


UNAUTHORIZED = error(401, "unauthorized", "Your API key is not valid. Please sign up on lob.com "
                                          "to get a valid api key.")


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _form(content_type: str, raw: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    """multipart/form-data → (fields, files)."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if part.get_filename() is not None:
            files[name] = payload
        else:
            fields[name] = payload.decode()
    return fields, files


def _nested(fields: dict[str, str], prefix: str) -> dict[str, str]:
    start = f"{prefix}["
    return {key[len(start):-1]: value for key, value in fields.items()
            if key.startswith(start) and key.endswith("]")}


class FakeLob:
    def __init__(self) -> None:
        self.api_key = f"test_{secrets.token_hex(12)}"
        self.webhook_secret = secrets.token_hex(16)
        self.currency = "USD"
        self.lock = threading.Lock()
        self.letters: dict[str, dict] = {}
        self.by_key: dict[str, str] = {}  # Idempotency-Key → letter id
        self.created = 0  # letters really made (a repeated key makes none)
        self.create_requests = 0
        self.failures: list[tuple] = []
        self.stalls: list[float] = []  # seconds to wait before the next answers
        self.requests: list[dict] = []  # {"method", "path", "headers", "fields", "files"}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeLob:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- what tests use

    @property
    def settings(self) -> dict:
        return {"base_url": self.url, "price_per_letter": "0.85", "price_per_sheet": "0.10"}

    @property
    def credentials(self) -> str:
        return json.dumps({"api_key": self.api_key, "webhook_secret": self.webhook_secret})

    def fail_next(self, answer: tuple, times: int = 1) -> None:
        """Answer the next `times` requests with `answer`: (status, JSON body, headers)."""
        with self.lock:
            self.failures += [answer] * times

    def stall_next(self, seconds: float) -> None:
        """Do the next request's work at once but answer only after `seconds` (a client that
        gave up earlier never hears that it worked)."""
        with self.lock:
            self.stalls.append(seconds)

    def mail(self, letter_id: str) -> None:
        """The cancellation window closes: Lob has the letter in production."""
        with self.lock:
            self.letters[letter_id]["send_date"] = _iso(_now() - timedelta(minutes=1))

    def track(self, letter_id: str, name: str, location: str = "") -> dict:
        """USPS scans the letter: a tracking event ("Mailed", "In Transit", "Delivered", …)."""
        with self.lock:
            letter = self.letters[letter_id]
            letter["send_date"] = min(letter["send_date"], _iso(_now()))
            event = {"id": f"evnt_{secrets.token_hex(8)}", "type": "normal", "name": name,
                     "location": location or None, "time": _iso(_now()),
                     "date_created": _iso(_now()), "date_modified": _iso(_now()),
                     "object": "tracking_event"}
            letter["tracking_events"].append(event)
            return event

    def webhook(self, letter_id: str, event_type: str, timestamp_ms: int | None = None
                ) -> tuple[bytes, dict]:
        """The signed webhook Lob posts for `event_type` ("letter.mailed", …): (body, headers)."""
        with self.lock:
            event = {"id": f"evt_{secrets.token_hex(8)}", "reference_id": letter_id,
                     "body": json.loads(json.dumps(self.letters[letter_id])),
                     "event_type": {"id": event_type, "enabled_for_test": True,
                                    "resource": "letters", "object": "event_type"},
                     "date_created": _iso(_now()), "object": "event"}
        body = json.dumps(event).encode()
        return body, self.sign(body, timestamp_ms)

    def sign(self, body: bytes, timestamp_ms: int | None = None) -> dict:
        """The headers Lob sends with a webhook `body`."""
        stamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
        signature = hmac.new(self.webhook_secret.encode(), stamp.encode() + b"." + body,
                             hashlib.sha256).hexdigest()
        return {"Lob-Signature": signature, "Lob-Signature-Timestamp": stamp,
                "Content-Type": "application/json"}

    # -- Lob's behaviour

    def _address(self, fields: dict, prefix: str) -> tuple[dict | None, tuple | None]:
        address = _nested(fields, prefix)
        country = address.get("address_country", "US").upper()
        if prefix == "from" and country != "US":
            return None, error(422, "foreign_return_address",
                               "from.address_country must be US for letters.")
        if not (address.get("name") or address.get("company")):
            return None, error(422, "invalid", f"{prefix}.name or {prefix}.company is required")
        if country == "US":
            for key in US_REQUIRED:
                if not address.get(key):
                    return None, error(422, "invalid", f"{prefix}.{key} is required")
        if len(address.get("address_line1", "") + address.get("address_line2", "")) > 50:
            return None, error(422, "address_length_exceeds_limit",
                               f"The sum of {prefix}.address_line1 and {prefix}.address_line2 "
                               "cannot surpass 50 characters.")
        return {"id": f"adr_{secrets.token_hex(8)}", **address, "address_country": country,
                "object": "address"}, None

    def create_letter(self, fields: dict, files: dict, key: str) -> tuple:
        with self.lock:
            self.create_requests += 1
            if key and key in self.by_key:
                return 200, self.letters[self.by_key[key]], {}
        to, problem = self._address(fields, "to")
        sender, problem = (None, problem) if problem else self._address(fields, "from")
        if problem:
            return problem
        pdf = files.get("file", b"")
        if not pdf.startswith(b"%PDF-"):
            return error(422, "invalid_file", "file is not a valid PDF")
        for name, allowed in (("color", ("true", "false")),
                              ("double_sided", ("true", "false", None)),
                              ("address_placement", (*PLACEMENTS, None)),
                              ("mail_type", (*MAIL_TYPES, None)),
                              ("extra_service", (*EXTRA_SERVICES, None))):
            if fields.get(name) not in allowed:
                return error(422, "invalid", f"{name} must be one of {allowed}")
        if fields.get("use_type") not in ("marketing", "operational"):
            return error(422, "mail_use_type_can_not_be_null",
                         'use_type must be one of "marketing" or "operational"')
        now = _now()
        letter = {
            "id": f"ltr_{secrets.token_hex(8)}", "object": "letter",
            "description": fields.get("description"), "metadata": _nested(fields, "metadata"),
            "to": to, "from": sender, "color": fields["color"] == "true",
            "double_sided": fields.get("double_sided", "true") == "true",
            "address_placement": fields.get("address_placement", "top_first_page"),
            "mail_type": fields.get("mail_type", "usps_first_class"),
            "extra_service": fields.get("extra_service"), "use_type": fields["use_type"],
            "carrier": "USPS", "status": "processed", "tracking_events": [],
            "tracking_number": (f"9407{secrets.randbelow(10 ** 18):018d}"
                                if fields.get("extra_service") else None),
            "send_date": _iso(now + timedelta(minutes=5)),
            "expected_delivery_date": (now + timedelta(days=5)).date().isoformat(),
            "date_created": _iso(now), "date_modified": _iso(now),
            "url": f"{self.url}/files/{secrets.token_hex(8)}.pdf",
            "pdf_size": len(pdf),
        }
        with self.lock:
            if key and key in self.by_key:  # a concurrent twin won
                return 200, self.letters[self.by_key[key]], {}
            self.letters[letter["id"]] = letter
            if key:
                self.by_key[key] = letter["id"]
            self.created += 1
        return 200, letter, {}

    def cancel_letter(self, letter_id: str) -> tuple:
        with self.lock:
            letter = self.letters.get(letter_id)
            if letter is None or letter.get("deleted"):
                return error(404, "not_found", "letter not found")
            if letter["send_date"] <= _iso(_now()):
                return error(422, "not_deletable", "This letter has already been sent to "
                                                   "production and cannot be canceled.")
            letter["deleted"] = True
        return 200, {"id": letter_id, "deleted": True, "object": "letter_deleted"}, {}

    def get_letter(self, letter_id: str) -> tuple:
        with self.lock:
            letter = self.letters.get(letter_id)
            if letter is None:
                return error(404, "not_found", "letter not found")
            return 200, json.loads(json.dumps(letter)), {}


def _handler(fake: FakeLob):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _answer(self, status: int, body, headers: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            scheme, _, value = self.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "basic":
                return False
            try:
                user, _, _password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return False
            return hmac.compare_digest(user.encode(), fake.api_key.encode())

        def _handle(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = urlsplit(self.path).path.rstrip("/")
            fields: dict = {}
            files: dict = {}
            if self.headers.get("Content-Type", "").startswith("multipart/form-data"):
                fields, files = _form(self.headers["Content-Type"], raw)
            with fake.lock:
                fake.requests.append({"method": method, "path": path,
                                      "headers": {k.lower(): v for k, v in self.headers.items()},
                                      "fields": fields,
                                      "files": {k: len(v) for k, v in files.items()}})
                failure = fake.failures.pop(0) if fake.failures else None
            if failure is not None:
                self._answer(*failure)
                return
            if not self._authorised():
                self._answer(*UNAUTHORIZED)
                return
            answer = self._route(method, path, fields, files)
            with fake.lock:
                stall = fake.stalls.pop(0) if fake.stalls else 0
            if stall:
                time.sleep(stall)
            try:
                self._answer(*answer)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting

        def _route(self, method: str, path: str, fields: dict, files: dict) -> tuple:
            if method == "POST" and path == "/v1/letters":
                return fake.create_letter(fields, files, self.headers.get("Idempotency-Key", ""))
            if path.startswith("/v1/letters/ltr_"):
                letter_id = path.rsplit("/", 1)[1]
                if method == "GET":
                    return fake.get_letter(letter_id)
                if method == "DELETE":
                    return fake.cancel_letter(letter_id)
            if method == "GET" and path == "/v1/addresses":
                return 200, {"data": [], "object": "list", "next_url": None,
                             "previous_url": None, "count": 0}, {}
            return error(404, "unrecognized_endpoint", "The requested endpoint does not exist.")

        def do_GET(self) -> None:  # noqa: N802
            self._handle("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._handle("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._handle("DELETE")

    return Handler


@pytest.fixture
def lob_fake():
    fake = FakeLob().start()
    yield fake
    fake.stop()


@pytest.fixture
def lob_us(acme, customer):
    """Acme and its customer move to the United States: Lob posts letters only there."""
    acme.street, acme.street2, acme.city = "185 Berry Street", "Suite 6100", "San Francisco"
    acme.state, acme.zip, acme.country = "CA", "94107", "US"
    acme.save()
    customer.street, customer.street2, customer.city = "742 Evergreen Terrace", "", "Springfield"
    customer.state, customer.zip, customer.country = "OR", "97403", "US"
    customer.save()
    return acme, customer


@pytest.fixture
def lob_provider_fields(lob_fake, lob_us):
    """What the contract suite needs to make a "lob" provider talk to the fake (and the US
    addresses Lob needs)."""
    return {"settings": lob_fake.settings, "credentials": lob_fake.credentials}


class LobDriver:
    """Moves a letter on at the fake Lob, as its print and mail network would."""

    def __init__(self, fake: FakeLob):
        self.fake = fake

    def printed(self, letter) -> None:
        self.fake.mail(letter.provider_ref)


@pytest.fixture
def lob_driver(lob_fake):
    return LobDriver(lob_fake)


@pytest.fixture
def lob_row(acme, lob_fake, lob_us):
    from mailroom.letters.models import PostalProvider

    return PostalProvider.objects.create(
        company=acme, name="Lob", kind="lob", settings=lob_fake.settings,
        credentials=lob_fake.credentials, window_standard="us10")

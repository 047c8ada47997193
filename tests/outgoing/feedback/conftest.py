"""Fixtures for the provider feedback webhooks: real keys made in the test, the live server,
relay servers of acme and globex, and a loopback fake of Amazon SNS (certificate and
SubscribeURL) that speaks plain HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import datetime
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from mailroom.outgoing import server_services
from mailroom.outgoing.models import MailServer
from tests.campaigns.test_reputation import sent_campaign, traces

MAILGUN_KEY = "key-7a1e0c5d2b9f4e8a6c3d1b0f9e8d7c6b"


@pytest.fixture(scope="session")
def sendgrid_key():
    """The P-256 key pair a SendGrid account signs with; SendGrid shows base64 DER."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    return private, public


def make_relay(company, actor, name: str, kind: str, secret: str = "") -> MailServer:
    return server_services.save_server(
        MailServer(company=company, name=name, host=f"smtp.{kind}.example", purpose="transactional",
                   active=False, feedback_kind=kind, feedback_secret=secret), actor=actor)


@pytest.fixture
def campaign(acme, mia):
    return sent_campaign(acme, mia, n=2, guard_after=1000)


@pytest.fixture
def trace(campaign):
    return traces(campaign)[0]


class Hook:
    """POSTs to the live server: `post(server, body, headers)` → httpx.Response."""

    def __init__(self, base: str):
        self.base = base

    def url(self, server: MailServer) -> str:
        return f"{self.base}/hooks/feedback/{server.feedback_token}/"

    def post(self, server, body: bytes, headers: dict | None = None) -> httpx.Response:
        return httpx.post(self.url(server), content=body, headers=headers or {}, timeout=20)


@pytest.fixture
def hook(live_server, transactional_db):
    return Hook(live_server.url)


TOPIC = "arn:aws:sns:eu-west-1:123456789012:ses-feedback"


def sign_sendgrid(private, body: bytes, timestamp: int) -> dict:
    """What SendGrid adds: a base64 DER ECDSA-SHA256 signature over timestamp + raw body."""
    signature = private.sign(str(timestamp).encode() + body, ec.ECDSA(hashes.SHA256()))
    return {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": str(timestamp),
            "Content-Type": "application/json"}


# --- a fake Amazon SNS on loopback ----------------------------------------------------------

class FakeSns:
    """Serves the signing certificate at /SimpleNotificationService-test.pem and records the
    visits to /confirm (the SubscribeURL)."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert_pem = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                         .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                         .not_valid_before(now - datetime.timedelta(days=1))
                         .not_valid_after(now + datetime.timedelta(days=30))
                         .sign(self.key, hashes.SHA256())
                         .public_bytes(serialization.Encoding.PEM))
        self.hits: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                fake.hits.append(self.path)
                if self.path.endswith(".pem"):
                    body, kind = fake.cert_pem, "application/x-pem-file"
                elif self.path.startswith("/confirm"):
                    body, kind = (b"<ConfirmSubscriptionResponse><ConfirmSubscriptionResult>"
                                  b"<SubscriptionArn>arn:aws:sns:eu-west-1:123:t:1</SubscriptionArn>"
                                  b"</ConfirmSubscriptionResult></ConfirmSubscriptionResponse>",
                                  "text/xml")
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def cert_url(self) -> str:
        return f"{self.base}/SimpleNotificationService-test.pem"

    def sign(self, message: dict, version: str = "1") -> dict:
        """Sign as SNS does: "Name\\nvalue\\n" over the documented fields, RSA PKCS#1 v1.5."""
        if message["Type"] == "Notification":
            fields = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
        else:
            fields = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn",
                      "Type")
        text = "".join(f"{k}\n{message[k]}\n" for k in fields if k in message).encode()
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(text, padding.PKCS1v15(), digest)
        return {**message, "SignatureVersion": version,
                "Signature": base64.b64encode(signature).decode(),
                "SigningCertURL": message.get("SigningCertURL", self.cert_url())}

    def notification(self, ses_event: dict, message_id: str = "5d0b8d1c-0001",
                     version: str = "2", topic: str = TOPIC) -> bytes:
        return json.dumps(self.sign({
            "Type": "Notification", "MessageId": message_id, "TopicArn": topic,
            "Message": json.dumps(ses_event), "Timestamp": "2026-12-06T14:00:00.000Z",
        }, version)).encode()


@pytest.fixture
def fake_sns(settings):
    fake = FakeSns()
    settings.MAILROOM_SNS_URL_PATTERN = rf"^http://127\.0\.0\.1:{fake.server.server_address[1]}/"
    yield fake
    fake.close()

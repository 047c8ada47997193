"""Two nodes of one installation: separate data dirs and processes, one PostgreSQL database,
one S3 bucket (moto's S3 server on loopback), the same keys.

Node A's gateway accepts a mail with an attachment; node B's router routes it and node B's
web serves the attachment. A file uploaded through node B's web goes out through node A's
sender, over the relay whose password was saved on node A; node B sends through the same
relay with that password. The delivery report to the VERP address node A signed is matched on
node B. No message, attachment or key is ever in a data dir.
"""

from __future__ import annotations

import base64
import email
import email.policy
import re
import smtplib
import textwrap
from pathlib import Path

import pytest
import requests
from bench.common import wait_for_port

from tests.conftest import NEEDS_POSTGRES
from tests.core.nodes import finish, node_env, run, start
from tests.core.test_processes import free_port
from tests.outgoing.smtp_peer import Certs, SmtpPeer
from tests.s3_server import CREDENTIALS, REGION, S3Server

pytestmark = [pytest.mark.slow, NEEDS_POSTGRES]

PDF = b"%PDF-1.4\n" + b"multi-node brief " * 400
UPLOAD = b"%PDF-1.4\n" + b"price list uploaded on B " * 300
PASSWORD = "correct horse battery staple"

SETUP_ON_A = """
from mailroom.core.models import Company, User
from mailroom.outgoing.models import MailServer
from mailroom.routing.models import AliasDomain
from mailroom.routing.services import ensure_default_aliases
from django.contrib.auth.models import Group
company = Company.objects.create(name="Acme", email="hello@acme.test")
ensure_default_aliases(AliasDomain.objects.create(company=company, name="acme.test"))
user = User.objects.create_user(username="bob", password=%(password)r, is_staff=True,
                                email="bob@acme.test", first_name="Bob")
user.companies.set([company])
user.current_company = company
user.save()
user.groups.add(Group.objects.get(name="User"))
MailServer.objects.create(company=company, name="relay", host="127.0.0.1", port=%(port)d,
                          security="starttls", username="acme", password="s3cret")
"""

ROUTE_ON_B = """
from mailroom.chatter.models import Attachment
from mailroom.incoming.models import InboundMail
from mailroom.incoming.router import route_pending
route_pending("node-b")
mail = InboundMail.objects.get()
attachment = Attachment.objects.get(name="brief.pdf")
print("ROUTED", mail.decision, mail.content_type.model, mail.object_id,
      mail.content_type_id, attachment.pk)
"""

SEND = """
from mailroom.outgoing.models import OutgoingMail
from mailroom.outgoing.sending.engine import send_step
while send_step("%(node)s"):
    pass
for mail in OutgoingMail.objects.order_by("pk"):
    print("MAIL", mail.pk, mail.state, mail.subject)
"""

ENQUEUE_ON_B = """
from mailroom.core.models import Company
from mailroom.outgoing.services import enqueue
company = Company.objects.get()
enqueue(company=company, email_from="sales@acme.test", to=["grace@client.example"],
        subject="Sent by node B", text="Through the relay saved on node A.")
"""

BOUNCED_ON_B = """
from mailroom.incoming.models import InboundMail
from mailroom.incoming.router import route_pending
from mailroom.outgoing.models import OutgoingRecipient
route_pending("node-b")
bounce = InboundMail.objects.order_by("-pk").first()
print("BOUNCE", bounce.decision)
for recipient in OutgoingRecipient.objects.filter(address="ada@client.example"):
    print("RECIPIENT", recipient.status)
"""


def _mime(boundary: str = "b1") -> bytes:
    lines = ["From: Ada <ada@client.example>", "To: sales@acme.test",
             "Subject: Our brief for the quote", "Message-ID: <brief-1@client.example>",
             "MIME-Version: 1.0", f'Content-Type: multipart/mixed; boundary="{boundary}"', "",
             f"--{boundary}", "Content-Type: text/plain; charset=utf-8", "",
             "Hello, the brief is attached.", f"--{boundary}",
             "Content-Type: application/pdf; name=brief.pdf",
             "Content-Disposition: attachment; filename=brief.pdf",
             "Content-Transfer-Encoding: base64", "",
             *base64.encodebytes(PDF).decode().splitlines(), f"--{boundary}--", ""]
    return "\r\n".join(lines).encode()


def _dsn(verp: str) -> bytes:
    return textwrap.dedent(f"""\
        From: MAILER-DAEMON@mx.client.example
        To: {verp}
        Subject: Undelivered Mail Returned to Sender
        Message-ID: <dsn-1@mx.client.example>
        MIME-Version: 1.0
        Content-Type: multipart/report; report-type=delivery-status; boundary="r"

        --r
        Content-Type: text/plain

        Your message could not be delivered.
        --r
        Content-Type: message/delivery-status

        Reporting-MTA: dns; mx.client.example

        Final-Recipient: rfc822; ada@client.example
        Action: failed
        Status: 5.1.1
        Diagnostic-Code: smtp; 550 5.1.1 No such user

        --r--
        """).replace("\n", "\r\n").encode()


def _shell(env: dict, code: str) -> str:
    done = run(env, "shell", "--no-imports", "-c", code)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _line(out: str, tag: str) -> list[str]:
    return next(line.split()[1:] for line in out.splitlines() if line.startswith(tag + " "))


def _wait_for_port(port: int, proc) -> None:
    try:
        wait_for_port(port, timeout=180)  # a Django start-up on a busy machine
    except RuntimeError:
        raise AssertionError(finish(proc)[1]) from None


def _login(base: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/login/", timeout=60)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    done = session.post(f"{base}/login/?next=/", timeout=60, data={
        "username": "bob", "password": PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/login/"})
    assert "sessionid" in session.cookies, done.text[:500]
    return session


def test_two_nodes_share_mail_files_keys_and_bounces(tmp_path, node_database):
    certs = Certs()
    ca_file = tmp_path / "ca.pem"
    certs.ca.cert_pem.write_to_path(str(ca_file))
    with S3Server() as s3, SmtpPeer(starttls=certs.server_context(),
                                    users={"acme": "s3cret"}) as relay:
        s3.create_bucket("mailroom")
        shared = {"MAILROOM_BLOB_URL": "s3://mailroom/blobs",
                  "MAILROOM_S3_ENDPOINT_URL": s3.endpoint, "MAILROOM_S3_REGION": REGION,
                  "SSL_CERT_FILE": str(ca_file), **CREDENTIALS}
        env_a = {**node_env(tmp_path, "a", node_database), **shared}
        env_b = {**node_env(tmp_path, "b", node_database), **shared}
        _shell(env_a, SETUP_ON_A % {"password": PASSWORD, "port": relay.port})

        # node A's gateway accepts the mail with its attachment
        gateway_port, web_port = free_port(), free_port()
        gateway = start(env_a, "gateway", "--smtp", f"127.0.0.1:{gateway_port}", "--lmtp", "")
        web = start(env_b, "web", "--host", "127.0.0.1", "--port", str(web_port))
        try:
            _wait_for_port(gateway_port, gateway)
            with smtplib.SMTP("127.0.0.1", gateway_port, timeout=60) as client:
                assert client.sendmail("ada@client.example", ["sales@acme.test"],
                                       _mime()) == {}

            # node B's router routes it; node B's web serves the attachment
            decision, model, record_id, content_type_id, attachment_id = _line(
                _shell(env_b, ROUTE_ON_B), "ROUTED")
            assert (decision, model) == ("created", "lead")
            _wait_for_port(web_port, web)
            base = f"http://127.0.0.1:{web_port}"
            browser = _login(base)
            download = browser.get(f"{base}/chatter/attachments/{attachment_id}/download/",
                                   timeout=60)
            assert download.status_code == 200, download.url
            assert download.content == PDF

            # a file uploaded through node B's web, in a message to the record's follower
            posted = browser.post(
                f"{base}/chatter/{content_type_id}/{record_id}/post/",
                data={"kind": "message", "body": "Here is our price list."},
                files={"files": ("prices.pdf", UPLOAD, "application/pdf")},
                headers={"HX-Request": "true", "X-CSRFToken": browser.cookies["csrftoken"],
                         "Referer": base + "/"}, timeout=60)
            assert posted.status_code == 200, posted.text[:500]
        finally:
            for proc in (gateway, web):
                proc.terminate()
                finish(proc)

        # node A's sender sends it, through the relay whose password node A saved
        sent_a = _shell(env_a, SEND % {"node": "node-a"})
        assert "sent" in _line(sent_a, "MAIL")
        (delivered,) = relay.messages
        assert delivered.rcpt_tos == ["ada@client.example"]
        parsed = email.message_from_bytes(delivered.data, policy=email.policy.default)
        assert [part.get_content() for part in parsed.iter_attachments()] == [UPLOAD]
        verp = delivered.mail_from
        assert verp.startswith("bounce+")  # signed with the installation's key by node A

        # node B sends through the same relay with the password node A saved
        _shell(env_b, ENQUEUE_ON_B)
        sent_b = _shell(env_b, SEND % {"node": "node-b"})
        assert [line.split()[2] for line in sent_b.splitlines()
                if line.startswith("MAIL ")] == ["sent", "sent"]
        logins = [auth for session in relay.sessions for auth in session.auth]
        assert len(logins) == 2 and all(encrypted for _, encrypted in logins)

        # a delivery report to node A's VERP address, through node A's gateway, is matched
        # by node B's router
        gateway = start(env_a, "gateway", "--smtp", f"127.0.0.1:{gateway_port}", "--lmtp", "")
        try:
            _wait_for_port(gateway_port, gateway)
            with smtplib.SMTP("127.0.0.1", gateway_port, timeout=60) as client:
                assert client.sendmail("", [verp], _dsn(verp)) == {}
        finally:
            gateway.terminate()
            finish(gateway)
        bounced = _shell(env_b, BOUNCED_ON_B)
        assert _line(bounced, "BOUNCE") == ["bounce"]
        assert _line(bounced, "RECIPIENT") == ["bounced"]

    # nothing of it in either node's data dir: mail and files are in the bucket
    for env in (env_a, env_b):
        data = Path(env["MAILROOM_DATA_DIR"])
        files = [p for p in data.rglob("*") if p.is_file()]
        assert not [p for p in files if any(mark in p.read_bytes() for mark in (
            PDF[:40], UPLOAD[:40], b"Our brief for the quote", b"Sent by node B"))], files
        assert not (data / "secret_key").exists() and not (data / "fernet.key").exists()

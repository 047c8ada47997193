"""The SMTP/LMTP gateway against real clients on loopback: refuse at RCPT what is not ours,
store before 250, refuse smuggling and oversize mail, and say 451 when storing fails."""

from __future__ import annotations

import re
import smtplib
import socket
import subprocess

import pytest

from mailroom.incoming.gateway import start_gateway
from mailroom.incoming.models import InboundMail
from mailroom.incoming.services import raw_bytes

pytestmark = pytest.mark.django_db(transaction=True)

MESSAGE = (b"From: Ada <ada@client.example>\r\n"
           b"To: sales@acme.test\r\n"
           b"Subject: A quote please\r\n"
           b"Message-ID: <quote-1@client.example>\r\n"
           b"\r\n"
           b"Hello,\r\n"
           b".a line that starts with a dot\r\n"
           b"..and one with two\r\n"
           b"\r\n"
           b"Ada\r\n")


_STAMP = re.compile(rb"Received: [^\r\n]*(?:\r\n[ \t][^\r\n]*)*\r\n")


def stamp_and_rest(mail: InboundMail) -> tuple[bytes, bytes]:
    """(our Received line, the message as the client sent it) of a stored message."""
    raw = raw_bytes(mail)
    stamp = _STAMP.match(raw)
    assert stamp is not None, raw[:200]
    return stamp.group(0), raw[stamp.end():]


def as_sent(mail: InboundMail) -> bytes:
    return stamp_and_rest(mail)[1]


def message(n: int = 1, subject: str = "A quote please") -> bytes:
    return MESSAGE.replace(b"quote-1", f"quote-{n}".encode()).replace(
        b"A quote please", subject.encode())


@pytest.fixture
def gateway(domains):
    with start_gateway() as running:
        yield running


def smtp(gateway) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", gateway.smtp_port, timeout=10)
    client.ehlo("client.example")
    return client


def lmtp_send(gateway, sender: str, recipients: list[str], data: bytes):
    """(RCPT replies, DATA replies): LMTP answers DATA once per accepted recipient, which
    smtplib does not read by itself."""
    client = smtplib.LMTP("127.0.0.1", gateway.lmtp_port, timeout=10)
    try:
        client.ehlo("mx.client.example")  # smtplib's LMTP sends LHLO
        client.mail(sender)
        rcpt = [client.rcpt(r) for r in recipients]
        accepted = sum(1 for code, _ in rcpt if code == 250)
        replies = [client.data(data)]
        replies += [client.getreply() for _ in range(accepted - 1)]
        client.quit()
    finally:
        client.close()
    return rcpt, replies


# --- accepting ---------------------------------------------------------------------------------

def test_mail_for_an_alias_is_stored_byte_for_byte_with_its_envelope(gateway, acme):
    with smtp(gateway) as client:
        refused = client.sendmail("ada@client.example", ["Sales@ACME.test"], MESSAGE)
        code, reply = client.noop()
    assert refused == {}
    mail = InboundMail.objects.get()
    assert mail.company == acme
    assert mail.source == "smtp"
    assert mail.envelope_from == "ada@client.example"
    assert mail.envelope_to == ["Sales@ACME.test"]
    assert mail.remote_ip == "127.0.0.1"
    assert mail.helo == "client.example"
    assert mail.state == InboundMail.State.RECEIVED
    assert as_sent(mail) == MESSAGE  # dot-stuffing undone, only our Received added


def test_the_250_names_the_stored_row(gateway):
    with smtp(gateway) as client:
        client.mail("ada@client.example")
        client.rcpt("sales@acme.test")
        code, reply = client.data(MESSAGE)
    assert code == 250
    mail = InboundMail.objects.get()
    assert reply.decode() == f"2.0.0 Ok: queued as {mail.pk}"


def test_unknown_recipient_refused_at_rcpt_while_a_known_one_is_accepted(gateway, acme):
    with smtp(gateway) as client:
        refused = client.sendmail("ada@client.example",
                                  ["nobody@acme.test", "sales@acme.test"], MESSAGE)
        assert refused == {"nobody@acme.test":
                           (550, b"5.1.1 <nobody@acme.test>: no such address here")}
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refusal:
            client.sendmail("ada@client.example", ["nobody@acme.test", "x@elsewhere.test"],
                            MESSAGE)
    assert {code for code, _ in refusal.value.recipients.values()} == {550}
    mail = InboundMail.objects.get()
    assert mail.envelope_to == ["sales@acme.test"]


def test_catchall_bounce_and_unknown_on_an_accept_unknown_domain_are_accepted(gateway, globex):
    with smtp(gateway) as client:
        for address in ("anyone@globex.test", "catchall@acme.test",
                        "bounce+12-34-abcdef@acme.test", "bounce@acme.test"):
            assert client.sendmail("mailer-daemon@client.example", [address], MESSAGE) == {}
    assert InboundMail.objects.count() == 4
    assert InboundMail.objects.get(envelope_to=["anyone@globex.test"]).company == globex


def test_null_sender_is_stored_as_the_null_path(gateway):
    with smtp(gateway) as client:
        client.sendmail("<>", ["bounce@acme.test"], MESSAGE)
    assert InboundMail.objects.get().envelope_from == "<>"


def test_smtp_recipients_of_two_companies_make_one_row_each_and_one_reply(gateway, acme,
                                                                          globex):
    with smtp(gateway) as client:
        client.mail("ada@client.example")
        for address in ("sales@acme.test", "support@acme.test", "sales@globex.test"):
            assert client.rcpt(address)[0] == 250
        code, reply = client.data(MESSAGE)
    assert code == 250
    rows = {m.company: m for m in InboundMail.objects.all()}
    assert set(rows) == {acme, globex}
    assert rows[acme].envelope_to == ["sales@acme.test", "support@acme.test"]
    assert rows[globex].envelope_to == ["sales@globex.test"]
    assert reply.decode() == (f"2.0.0 Ok: queued as {rows[acme].pk},{rows[globex].pk}")


def test_many_messages_over_one_connection(gateway):
    with smtp(gateway) as client:
        for n in range(20):
            client.sendmail("ada@client.example", ["sales@acme.test"], message(n))
    assert InboundMail.objects.count() == 20


def test_starttls_is_offered_when_a_certificate_is_configured(domains):
    from tests.outgoing.smtp_peer import Certs

    certs = Certs()
    with start_gateway(lmtp=None, tls=certs.server_context()) as running:
        with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=10) as client:
            client.ehlo("client.example")
            assert client.has_extn("starttls")
            client.starttls(context=certs.client_context())
            client.ehlo("client.example")
            client.sendmail("ada@client.example", ["sales@acme.test"], MESSAGE)
    assert as_sent(InboundMail.objects.get()) == MESSAGE


def test_no_starttls_without_a_certificate(gateway):
    with smtp(gateway) as client:
        assert not client.has_extn("starttls")


# --- LMTP ----------------------------------------------------------------------------------------

def test_lmtp_answers_once_per_recipient_and_stores_one_row_per_company(gateway, acme, globex):
    rcpt, replies = lmtp_send(gateway, "ada@client.example",
                              ["sales@acme.test", "nobody@acme.test", "sales@globex.test"],
                              MESSAGE)
    assert [code for code, _ in rcpt] == [250, 550, 250]
    assert [code for code, _ in replies] == [250, 250]
    rows = {m.company: m for m in InboundMail.objects.all()}
    assert set(rows) == {acme, globex}
    assert all(m.source == "lmtp" for m in rows.values())
    assert replies[0][1].decode() == f"2.0.0 Ok: queued as {rows[acme].pk}"
    assert replies[1][1].decode() == f"2.0.0 Ok: queued as {rows[globex].pk}"
    assert as_sent(rows[globex]) == MESSAGE


def test_lmtp_recipients_of_one_company_share_one_row(gateway, acme):
    rcpt, replies = lmtp_send(gateway, "ada@client.example",
                              ["sales@acme.test", "support@acme.test"], MESSAGE)
    assert [code for code, _ in replies] == [250, 250]
    mail = InboundMail.objects.get()
    assert mail.envelope_to == ["sales@acme.test", "support@acme.test"]
    assert replies[0] == replies[1]


def test_lmtp_on_a_unix_socket(domains, tmp_path):
    path = str(tmp_path / "lmtp.sock")
    with start_gateway(smtp=None, lmtp=path):
        client = smtplib.LMTP(path, timeout=10)
        client.ehlo("mx.client.example")
        assert client.sendmail("ada@client.example", ["sales@acme.test"], MESSAGE) == {}
        client.quit()
    mail = InboundMail.objects.get()
    assert mail.source == "lmtp" and mail.remote_ip is None


# --- refusing ----------------------------------------------------------------------------------

def test_size_is_advertised_and_oversize_mail_refused_with_552(domains, settings):
    settings.MAILROOM_INBOUND_MAX_BYTES = 2000
    big = MESSAGE + b"x" * 70 + b"\r\n"
    big = big * (3000 // len(big) + 1)
    with start_gateway() as running:
        with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=10) as client:
            client.ehlo("client.example")
            # the limit less the room kept for our Received line
            assert client.esmtp_features["size"] == str(2000 - 1024)
            # smtplib declares SIZE= in MAIL FROM: refused before any data is sent
            with pytest.raises(smtplib.SMTPSenderRefused) as refusal:
                client.sendmail("ada@client.example", ["sales@acme.test"], big)
            assert refusal.value.smtp_code == 552
            # a client that does not declare the size: refused after DATA, nothing kept
            client.rset()
            client.mail("ada@client.example")
            client.rcpt("sales@acme.test")
            code, reply = client.data(big)
            assert (code, reply[:5]) == (552, b"5.3.4")
            # the session goes on
            assert client.sendmail("ada@client.example", ["sales@acme.test"], MESSAGE) == {}
        rcpt, replies = lmtp_send(running, "ada@client.example",
                                  ["sales@acme.test", "support@acme.test"], big)
        assert [code for code, _ in replies] == [552, 552]  # one per recipient, as LMTP wants
    assert InboundMail.objects.count() == 1


def converse(port: int, lines: list[bytes], data: bytes) -> list[str]:
    """Send commands and DATA content over a raw socket; return every reply line."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        reader = sock.makefile("rb")

        def reply() -> list[str]:
            got = []
            while True:
                line = reader.readline().decode().rstrip("\r\n")
                got.append(line)
                if len(line) < 4 or line[3] != "-":
                    return got

        replies = reply()  # greeting
        for line in lines:
            sock.sendall(line + b"\r\n")
            replies += reply()
        sock.sendall(data)
        replies += reply()
        sock.sendall(b"QUIT\r\n")
        replies += reply()
        sock.settimeout(1)
        rest = reader.read()  # anything a smuggled command would have produced
        if rest:
            replies += rest.decode().splitlines()
    return replies


SMUGGLED = (b"MAIL FROM:<ceo@acme.test>\r\n"
            b"RCPT TO:<sales@acme.test>\r\n"
            b"DATA\r\n"
            b"From: ceo@acme.test\r\nSubject: smuggled\r\n\r\nwire the money\r\n")


@pytest.mark.parametrize("end", [b"\n.\r\n", b"\r\n.\n", b"\n.\n", b"\r.\r\n", b"\r\n.\r"])
def test_smtp_smuggling_probe_is_refused_and_injects_nothing(gateway, end):
    data = b"Subject: first\r\n\r\nhello" + end + SMUGGLED + b".\r\n"
    replies = converse(gateway.smtp_port,
                       [b"EHLO probe.example", b"MAIL FROM:<ada@client.example>",
                        b"RCPT TO:<sales@acme.test>", b"DATA"], data)
    after_data = replies[replies.index(next(r for r in replies if r.startswith("354"))) + 1:]
    assert after_data[0] == ("550 5.5.2 bare LF/CR in message refused "
                             "(SMTP smuggling protection)")
    assert [r[:3] for r in after_data[1:]] == ["221"], replies  # QUIT, and nothing else
    assert InboundMail.objects.count() == 0


def test_a_clean_message_over_the_raw_socket_is_one_message(gateway):
    data = b"Subject: first\r\n\r\nhello\r\n" + SMUGGLED + b".\r\n"
    replies = converse(gateway.smtp_port,
                       [b"EHLO probe.example", b"MAIL FROM:<ada@client.example>",
                        b"RCPT TO:<sales@acme.test>", b"DATA"], data)
    assert [r[:3] for r in replies[-2:]] == ["250", "221"]
    mail = InboundMail.objects.get()  # the MAIL FROM inside the data is only data
    assert as_sent(mail) == b"Subject: first\r\n\r\nhello\r\n" + SMUGGLED


def test_storage_failure_answers_451_and_keeps_nothing(gateway, monkeypatch):
    from mailroom.incoming import services

    def broken_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(services, "accept", broken_disk)
    with smtp(gateway) as client:
        with pytest.raises(smtplib.SMTPDataError) as failure:
            client.sendmail("ada@client.example", ["sales@acme.test"], MESSAGE)
    assert failure.value.smtp_code == 451
    assert failure.value.smtp_error == b"4.3.0 could not store the message, try again later"
    monkeypatch.undo()
    assert InboundMail.objects.count() == 0


def test_a_broken_blob_store_answers_451(gateway, settings, tmp_path):
    not_a_directory = tmp_path / "attachments"
    not_a_directory.write_bytes(b"")  # store_blob cannot create its directory (even as root)
    settings.ATTACHMENT_DIR = not_a_directory
    with smtp(gateway) as client:
        client.mail("ada@client.example")
        client.rcpt("sales@acme.test")
        assert client.data(MESSAGE)[0] == 451
    assert InboundMail.objects.count() == 0


def test_a_failure_for_one_company_keeps_the_other_companys_row_out_too(gateway, monkeypatch,
                                                                        globex):
    """Over SMTP one reply covers all recipients: store all companies' rows or none."""
    from mailroom.incoming import services

    real_accept = services.accept

    def fails_for_globex(raw, *, company, **kwargs):
        if company == globex:
            raise OSError("disk full")
        return real_accept(raw, company=company, **kwargs)

    monkeypatch.setattr(services, "accept", fails_for_globex)
    with smtp(gateway) as client:
        with pytest.raises(smtplib.SMTPDataError):
            client.sendmail("ada@client.example", ["sales@acme.test", "sales@globex.test"],
                            MESSAGE)
    assert InboundMail.objects.count() == 0


def test_a_database_error_at_rcpt_answers_451(gateway, monkeypatch):
    from django.db import OperationalError

    from mailroom.routing import services

    def down(address):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "resolve", down)
    with smtp(gateway) as client:
        client.mail("ada@client.example")
        assert client.rcpt("sales@acme.test") == (
            451, b"4.3.0 temporary failure, try again later")


def test_too_many_recipients(gateway):
    with smtp(gateway) as client:
        client.mail("ada@client.example")
        codes = [client.rcpt(f"x{n}@globex.test")[0] for n in range(101)]
    assert codes == [250] * 100 + [452]


# --- the process -------------------------------------------------------------------------------

def test_a_taken_port_is_one_clear_line_not_a_traceback(tmp_path):
    from tests.core.test_processes import REPO, mailroom, mailroom_env

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            mailroom("gateway", "--smtp", f"127.0.0.1:{port}", "--lmtp", ""),
            env=mailroom_env(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}"), cwd=REPO,
            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert f"Cannot listen for SMTP on 127.0.0.1:{port}: Address already in use" in \
        result.stderr
    assert "Traceback" not in result.stderr


# --- end to end: the router turns them into leads ---------------------------------------------

def test_200_messages_to_sales_become_200_leads(gateway, acme):
    from mailroom.business.crm.models import Lead
    from mailroom.incoming.router import route_pending

    with smtp(gateway) as client:
        for n in range(200):
            client.sendmail(f"customer{n}@client.example", ["sales@acme.test"],
                            message(n, f"Quote request {n}").replace(
                                b"ada@client.example", f"customer{n}@client.example".encode()))
    assert InboundMail.objects.count() == 200
    for _ in range(50):
        if route_pending("test") == 0:
            break
    assert Lead.objects.filter(company=acme).count() == 200
    assert not InboundMail.objects.exclude(state=InboundMail.State.DONE).exists()


def test_a_utf8_sender_over_smtputf8_becomes_a_lead_with_its_author(gateway, acme):
    """RFC 6531/6532: a UTF-8 local part in the envelope and the headers. Building the author
    line ("Name <address>") used to raise UnicodeEncodeError and quarantine the message."""
    from mailroom.business.crm.models import Lead
    from mailroom.chatter.models import Message
    from mailroom.incoming.router import route_pending

    raw = ("From: Jürgen Müller <jürgen@müller.example>\r\n"
           "To: sales@acme.test\r\n"
           "Subject: Angebot für 40 Lizenzen\r\n"
           "Message-ID: <utf8-1@müller.example>\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n"
           "\r\n"
           "Grüße\r\n").encode()
    with smtp(gateway) as client:
        assert client.has_extn("smtputf8")
        refused = client.sendmail("jürgen@müller.example", ["sales@acme.test"], raw,
                                  mail_options=["SMTPUTF8"])
    assert refused == {}
    mail = InboundMail.objects.get()
    assert mail.envelope_from == "jürgen@müller.example" and as_sent(mail) == raw

    assert route_pending("test") == 1

    mail.refresh_from_db()
    assert mail.state == InboundMail.State.DONE, mail.error
    lead = Lead.objects.get(company=acme)
    assert lead.name == "Angebot für 40 Lizenzen"
    assert lead.partner.email == "jürgen@müller.example"
    message = Message.objects.get(pk=mail.chatter_message_id)
    assert message.email_from == "Jürgen Müller <jürgen@müller.example>"


def test_rcpt_is_answered_from_the_alias_cache_and_reloaded_after_a_change(gateway, acme):
    """While the cached aliases are fresh the event loop answers RCPT itself; once they are
    cleared (an alias saved) or old, a database thread loads them again, and a new alias is
    known at the next RCPT."""
    from mailroom.routing.models import Alias, AliasDomain
    from mailroom.routing.services import clear_cache

    lookups = []
    real_run = gateway.gateway.db.run

    async def counting(func, *args, **kwargs):
        lookups.append(getattr(func, "__name__", func))
        return await real_run(func, *args, **kwargs)

    gateway.gateway.db.run = counting
    client = smtp(gateway)
    try:
        client.mail("ada@client.example")
        assert client.rcpt("sales@acme.test")[0] == 250  # loads the cache (or it was fresh)
        before = lookups.count("resolve")
        assert [client.rcpt(a)[0] for a in ("support@acme.test", "sales@acme.test",
                                            "nobody@acme.test")] == [250, 250, 550]
        assert lookups.count("resolve") == before  # answered from the cache
        Alias.objects.create(company=acme, domain=AliasDomain.objects.get(name="acme.test"),
                             local_part="jobs", record_type="crm.lead")
        clear_cache()  # what saving an alias through the service does
        assert client.rcpt("jobs@acme.test")[0] == 250
        assert lookups.count("resolve") == before + 1  # loaded again, in a database thread
    finally:
        client.close()

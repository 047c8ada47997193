"""Gateway hygiene against the real gateway on loopback: connection caps (in total and per
client IP), a per-connection message limit, idle timeouts — each a 421 that closes the
connection — and the Received line on top of what is stored (RFC 5321 4.4)."""

from __future__ import annotations

import smtplib
import socket
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import pytest

from mailroom.incoming.gateway import Limits, limits_from_settings, start_gateway
from mailroom.incoming.models import InboundMail
from tests.incoming.test_gateway import (
    MESSAGE,
    lmtp_send,
    message,
    stamp_and_rest,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("domains")]


class Peer:
    """A raw client socket that reads whole replies (multi-line ones included)."""

    def __init__(self, port: int, source: str = "127.0.0.1", timeout: float = 10) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0))
        self.reader = self.sock.makefile("rb")

    def reply(self) -> str:
        lines = []
        while True:
            line = self.reader.readline().decode()
            if not line:
                return "\n".join(lines)  # the connection closed
            lines.append(line.rstrip("\r\n"))
            if len(line) < 4 or line[3] != "-":
                return "\n".join(lines)

    def send(self, line: bytes) -> str:
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def closed(self) -> bool:
        """True when the server has closed the connection (EOF, or reset)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


# --- connection caps ------------------------------------------------------------------------

def test_connections_over_the_per_ip_cap_get_421_and_are_closed(settings):
    settings.MAILROOM_GATEWAY_MAX_CONNECTIONS_PER_IP = 2
    peers = []
    with start_gateway(lmtp=None) as running:
        try:
            for _ in range(2):
                peers.append(Peer(running.smtp_port))
                assert peers[-1].reply().startswith("220 ")
            third = Peer(running.smtp_port)
            assert third.reply() == ("421 4.7.0 mx.mailroom.test too many connections from "
                                     "127.0.0.1 (2); try again later")
            assert third.closed()
            third.close()
            # another address is not held to 127.0.0.1's count
            other = Peer(running.smtp_port, source="127.0.0.2")
            assert other.reply().startswith("220 ")
            other.close()
            # a session that ends frees its place
            assert peers[0].send(b"QUIT").startswith("221")
            peers.pop(0).close()
            time.sleep(0.2)
            with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=10) as client:
                client.ehlo("client.example")
                assert client.sendmail("ada@client.example", ["sales@acme.test"],
                                       MESSAGE) == {}
        finally:
            for peer in peers:
                peer.close()
    assert InboundMail.objects.count() == 1


def test_connections_over_the_total_cap_get_421_and_are_closed():
    peers = []
    limits = Limits(max_connections=3, max_connections_per_ip=0)
    with start_gateway(lmtp=None, limits=limits) as running:
        try:
            for source in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
                peers.append(Peer(running.smtp_port, source=source))
                assert peers[-1].reply().startswith("220 ")
            fourth = Peer(running.smtp_port, source="127.0.0.4")
            assert fourth.reply() == ("421 4.7.0 mx.mailroom.test too many connections (3); "
                                      "try again later")
            assert fourth.closed()
            fourth.close()
            # a refused connection took no place: after one session ends, one more fits
            peers.pop().close()
            time.sleep(0.2)
            again = Peer(running.smtp_port, source="127.0.0.4")
            assert again.reply().startswith("220 ")
            again.close()
        finally:
            for peer in peers:
                peer.close()


# --- messages per connection --------------------------------------------------------------------

def test_after_the_message_limit_the_next_mail_gets_421_and_a_reconnect_works(settings):
    settings.MAILROOM_GATEWAY_MAX_MESSAGES_PER_CONNECTION = 3
    with start_gateway(lmtp=None) as running:
        client = smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=10)
        client.ehlo("client.example")
        for n in range(3):
            assert client.sendmail("ada@client.example", ["sales@acme.test"], message(n)) == {}
        client.rset()  # a reset does not start the count again
        with pytest.raises(smtplib.SMTPSenderRefused) as refusal:
            client.sendmail("ada@client.example", ["sales@acme.test"], message(4))
        assert refusal.value.smtp_code == 421
        assert b"3 messages on one connection is the limit here; please reconnect" in \
            refusal.value.smtp_error
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.noop()  # smtplib closed on 421, as the server did
        with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=10) as again:
            again.ehlo("client.example")
            assert again.sendmail("ada@client.example", ["sales@acme.test"], message(4)) == {}
    assert InboundMail.objects.count() == 4


# --- idle timeout -----------------------------------------------------------------------------

def test_an_idle_client_is_told_421_and_disconnected(settings):
    settings.MAILROOM_GATEWAY_IDLE_TIMEOUT = "1"
    with start_gateway(lmtp=None) as running:
        peer = Peer(running.smtp_port)
        try:
            assert peer.reply().startswith("220 ")
            assert peer.send(b"EHLO client.example").startswith("250")
            started = time.monotonic()
            assert peer.reply() == ("421 4.4.2 mx.mailroom.test idle for too long (1 s); "
                                    "closing connection")
            assert 0.8 < time.monotonic() - started < 5
            assert peer.closed()
        finally:
            peer.close()


def test_a_client_that_stops_in_the_middle_of_data_is_disconnected_and_nothing_kept(settings):
    settings.MAILROOM_GATEWAY_IDLE_TIMEOUT = 1
    with start_gateway(lmtp=None) as running:
        peer = Peer(running.smtp_port)
        try:
            peer.reply()
            for line in (b"EHLO client.example", b"MAIL FROM:<ada@client.example>",
                         b"RCPT TO:<sales@acme.test>"):
                assert peer.send(line).startswith("250")
            assert peer.send(b"DATA").startswith("354")
            peer.sock.sendall(b"Subject: half\r\n\r\nthe first line\r\n")
            assert peer.reply().startswith("421 4.4.2 ")
            assert peer.closed()
        finally:
            peer.close()
    assert InboundMail.objects.count() == 0


def test_a_slow_client_that_keeps_sending_is_not_idle(settings):
    """The timer counts silence, not the length of a session or of one DATA."""
    settings.MAILROOM_GATEWAY_IDLE_TIMEOUT = 1
    with start_gateway(lmtp=None) as running:
        peer = Peer(running.smtp_port)
        try:
            peer.reply()
            for line in (b"EHLO client.example", b"MAIL FROM:<ada@client.example>",
                         b"RCPT TO:<sales@acme.test>"):
                time.sleep(0.5)
                assert peer.send(line).startswith("250")
            assert peer.send(b"DATA").startswith("354")
            peer.sock.sendall(b"Subject: slow\r\n\r\n")
            for n in range(5):  # 2.5 s of DATA, never 1 s of silence
                time.sleep(0.5)
                peer.sock.sendall(f"line {n}\r\n".encode())
            assert peer.send(b".").startswith("250 2.0.0 Ok: queued as")
        finally:
            peer.close()
    assert InboundMail.objects.count() == 1


def test_limits_come_from_the_settings_and_wrong_values_are_named(settings):
    settings.MAILROOM_GATEWAY_MAX_CONNECTIONS = "20"
    settings.MAILROOM_GATEWAY_MAX_CONNECTIONS_PER_IP = 0
    settings.MAILROOM_GATEWAY_MAX_MESSAGES_PER_CONNECTION = 7
    settings.MAILROOM_GATEWAY_IDLE_TIMEOUT = "2.5"
    assert limits_from_settings() == Limits(max_connections=20, max_connections_per_ip=0,
                                            messages_per_connection=7, idle_timeout=2.5)
    settings.MAILROOM_GATEWAY_IDLE_TIMEOUT = "soon"
    with pytest.raises(ValueError, match="MAILROOM_GATEWAY_IDLE_TIMEOUT must be a number"):
        limits_from_settings()
    settings.MAILROOM_GATEWAY_IDLE_TIMEOUT = 300
    settings.MAILROOM_GATEWAY_MAX_CONNECTIONS = -1
    with pytest.raises(ValueError, match="MAILROOM_GATEWAY_MAX_CONNECTIONS must be 0"):
        limits_from_settings()


# --- the Received line --------------------------------------------------------------------------

def _stamp_date(stamp: str) -> datetime:
    return parsedate_to_datetime(stamp.rpartition("; ")[2].strip())


def test_what_is_stored_starts_with_a_received_line():
    before = datetime.now(UTC).replace(microsecond=0)
    with start_gateway(lmtp=None) as running:
        with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=10) as client:
            client.ehlo("client.example")
            client.sendmail("ada@client.example", ["sales@acme.test"], MESSAGE)
            client.sendmail("ada@client.example", ["sales@acme.test", "support@acme.test"],
                            message(2))
    one, two = InboundMail.objects.order_by("pk")
    stamp, rest = stamp_and_rest(one)
    assert rest == MESSAGE
    text = stamp.decode()
    assert text.startswith("Received: from client.example ([127.0.0.1])\r\n"
                           "\tby mx.mailroom.test (Mailroom) with ESMTP\r\n"
                           "\tfor <sales@acme.test>; ")
    assert text.endswith("\r\n") and text.count("\r\n") == 3
    assert before <= _stamp_date(text) <= datetime.now(UTC)
    # two recipients: neither is named
    stamp_two = stamp_and_rest(two)[0].decode()
    assert " for <" not in stamp_two and "\tby mx.mailroom.test (Mailroom) with ESMTP; " \
        in stamp_two


def test_over_starttls_the_received_line_says_esmtps_with_the_tls_version_and_cipher():
    from tests.outgoing.smtp_peer import Certs

    certs = Certs()
    with start_gateway(lmtp=None, tls=certs.server_context()) as running:
        with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=10) as client:
            client.ehlo("client.example")
            client.starttls(context=certs.client_context())
            version, (cipher, _protocol, bits) = client.sock.version(), client.sock.cipher()
            client.ehlo("client.example")
            client.sendmail("ada@client.example", ["sales@acme.test"], MESSAGE)
    stamp, rest = stamp_and_rest(InboundMail.objects.get())
    assert rest == MESSAGE
    assert stamp.decode().startswith(
        "Received: from client.example ([127.0.0.1])\r\n"
        "\tby mx.mailroom.test (Mailroom) with ESMTPS\r\n"
        f"\t({version} {cipher} {bits} bits)\r\n"
        "\tfor <sales@acme.test>; ")


def test_lmtp_and_helo_sessions_are_named_and_an_odd_helo_is_only_a_comment():
    with start_gateway() as running:
        lmtp_send(running, "ada@client.example", ["sales@acme.test"], MESSAGE)
        with smtplib.SMTP("127.0.0.1", running.smtp_port, timeout=10) as client:
            client.helo("my laptop (home)")
            client.sendmail("ada@client.example", ["sales@acme.test"], message(2))
    lmtp, helo = (stamp_and_rest(m)[0].decode() for m in InboundMail.objects.order_by("pk"))
    assert lmtp.startswith("Received: from mx.client.example ([127.0.0.1])\r\n"
                           "\tby mx.mailroom.test (Mailroom) with LMTP\r\n"
                           "\tfor <sales@acme.test>; ")
    assert helo.startswith("Received: from [127.0.0.1] (HELO my?laptop??home?)\r\n"
                           "\tby mx.mailroom.test (Mailroom) with SMTP\r\n")

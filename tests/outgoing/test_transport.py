"""The SMTP transport against real SMTP peers on loopback: TLS, AUTH, failures in plain words.

No database: the servers are unsaved MailServer objects.
"""

from __future__ import annotations

import pytest

from mailroom.outgoing.models import FailureType, MailServer
from mailroom.outgoing.smtp.probe import test_connection
from mailroom.outgoing.smtp.smtp_errors import SmtpError
from mailroom.outgoing.smtp.transport import SmtpConnection
from tests.outgoing import smtp_peer
from tests.outgoing.smtp_peer import SmtpPeer, refused_port

# fixtures
certs = smtp_peer.certs
starttls_peer, tls_peer = smtp_peer.starttls_peer, smtp_peer.tls_peer

RAW = (b"From: billing@acme.example\r\nTo: ada@client.example\r\nSubject: Hi\r\n"
       b"Message-ID: <1@acme.example>\r\n\r\nHello\r\n")


@pytest.fixture(params=[True, False], ids=["pipelining", "lockstep"])
def sink(request):
    """A plain sink, with and without PIPELINING: both ways of talking must give the same
    results, faults included."""
    with SmtpPeer(pipelining=request.param) as peer:
        yield peer


def server_for(peer_or_port, security="none", auth="none", **fields) -> MailServer:
    port = peer_or_port if isinstance(peer_or_port, int) else peer_or_port.port
    return MailServer(name="peer", host=fields.pop("host", "127.0.0.1"), port=port,
                      security=security, auth=auth, **fields)


def connection(server, certs=None, **kwargs) -> SmtpConnection:
    return SmtpConnection(server, timeout=kwargs.pop("timeout", 5),
                          ssl_context=certs.client_context if certs else None, **kwargs)


def nothing_sent(peer) -> bool:
    return not peer.messages and all("MAIL" not in s.commands for s in peer.sessions)


def no_auth_seen(peer) -> bool:
    return all(not s.auth for s in peer.sessions)


# --- sending -------------------------------------------------------------------------------

def test_plain_sink_accepts_every_recipient_on_one_reused_connection(sink):
    with connection(server_for(sink)) as conn:
        first = conn.send("bounce@acme.example", ["a@x.example", "b@x.example"], RAW)
        second = conn.send("bounce@acme.example", ["c@x.example"], RAW)
    assert [r.accepted for r in first.recipients + second.recipients] == [True, True, True]
    assert len(sink.sessions) == 1
    assert [m.rcpt_tos for m in sink.messages] == [["a@x.example", "b@x.example"],
                                                    ["c@x.example"]]
    assert sink.messages[0].data.rstrip(b"\r\n") == RAW.rstrip(b"\r\n")


def test_commands_are_batched_only_where_the_server_offers_pipelining(sink):
    sink.faults.rcpt["nobody@x.example"] = "550 5.1.1 No such user"
    with connection(server_for(sink)) as conn:
        for _ in range(3):
            result = conn.send("b@acme.example", ["a@x.example", "nobody@x.example"], RAW)
            assert [r.accepted for r in result.recipients] == [True, False]
    assert sink.sessions[0].batched == (3 if sink.pipelining else 0)
    assert len(sink.messages) == 3 and all(m.rcpt_tos == ["a@x.example"] for m in sink.messages)


def test_internationalised_recipients_in_one_transaction(sink):
    """IDN domains go as A-labels; a UTF-8 local part fails alone without SMTPUTF8, and with
    it the UTF-8 copy of the message goes instead, saying SMTPUTF8 — both ways of talking."""
    utf8_raw = RAW.replace(b"ada@client.example", "jö@x.example".encode())
    rcpts = ["a@x.example", "jö@x.example", "c@exämple.example"]
    with connection(server_for(sink)) as conn:
        result = conn.send("b@acme.example", rcpts, RAW, utf8_raw=utf8_raw)
    assert [(r.address, r.accepted) for r in result.recipients] == [
        ("a@x.example", True), ("jö@x.example", False), ("c@exämple.example", True)]
    assert "does not accept internationalised addresses" in result.recipients[1].reason
    assert not result.recipients[1].temporary
    [received] = sink.messages
    assert received.rcpt_tos == ["a@x.example", "c@xn--exmple-cua.example"]
    assert received.data.isascii() and "SMTPUTF8" not in received.mail_options
    with SmtpPeer(pipelining=sink.pipelining, smtputf8=True) as utf8_sink:
        with connection(server_for(utf8_sink)) as conn:
            result = conn.send("b@acme.example", rcpts, RAW, utf8_raw=utf8_raw)
        assert all(r.accepted for r in result.recipients)
        [received] = utf8_sink.messages
        assert received.rcpt_tos == ["a@x.example", "jö@x.example", "c@xn--exmple-cua.example"]
        assert "SMTPUTF8" in received.mail_options and "jö@x.example".encode() in received.data


def test_a_server_closing_during_pipelined_recipients_leaves_all_of_them_waiting(sink):
    sink.faults.rcpt["b@x.example"] = "421 4.3.2 Shutting down"
    with connection(server_for(sink)) as conn:
        result = conn.send("b@acme.example", ["a@x.example", "b@x.example", "c@x.example"], RAW)
        assert not conn.is_open
    assert [r.accepted for r in result.recipients] == [False, False, False]
    assert all(r.temporary for r in result.recipients) and result.code == 421
    assert not sink.messages


def test_starttls_with_password_auth_encrypts_before_authenticating(starttls_peer, certs):
    server = server_for(starttls_peer, "starttls", "password", username="acme",
                        password="s3cret")
    with connection(server, certs) as conn:
        result = conn.send("bounce@acme.example", ["ada@client.example"], RAW)
    assert result.accepted and result.code == 250
    [session] = starttls_peer.sessions
    assert session.tls and session.auth == [("PLAIN", True)]


def test_implicit_tls_with_password_auth(tls_peer, certs):
    server = server_for(tls_peer, "ssl", "password", username="acme", password="s3cret")
    with connection(server, certs) as conn:
        assert conn.send("b@acme.example", ["ada@client.example"], RAW).accepted
    assert tls_peer.sessions[0].tls and tls_peer.sessions[0].auth == [("PLAIN", True)]


def test_xoauth2_uses_the_token_from_the_oauth_module(starttls_peer, certs, monkeypatch):
    from mailroom.core import oauth

    starttls_peer.oauth_tokens["acme@gmail.test"] = "ya29.token"
    monkeypatch.setattr(oauth, "access_token", lambda server: "ya29.token")
    server = server_for(starttls_peer, "starttls", "xoauth2", username="acme@gmail.test")
    with connection(server, certs) as conn:
        assert conn.send("b@acme.example", ["ada@client.example"], RAW).accepted
    assert starttls_peer.sessions[0].auth == [("XOAUTH2", True)]

    monkeypatch.setattr(oauth, "access_token", lambda server: "expired")
    with pytest.raises(SmtpError) as info:
        connection(server, certs).open()
    assert info.value.stage == "auth" and info.value.server_fault
    assert "not accepted" in info.value.message


def test_client_certificate_authentication(certs):
    client = certs.ca.issue_cert("client.acme.example")
    server_ctx = certs.requiring_client_cert()
    with SmtpPeer(implicit_tls=server_ctx) as peer:
        server = server_for(peer, "ssl", "certificate",
                            client_certificate=client.cert_chain_pems[0].bytes().decode(),
                            client_key=client.private_key_pem.bytes().decode())
        with connection(server, certs) as conn:
            assert conn.send("b@acme.example", ["ada@client.example"], RAW).accepted
        without = server_for(peer, "ssl", "none")
        with pytest.raises(SmtpError) as info:
            connection(without, certs).open()
        assert info.value.stage in ("tls", "tcp") and info.value.server_fault


# --- refusing to leak ----------------------------------------------------------------------

@pytest.mark.parametrize("bad,words", [
    ("self_signed", "certificate verify failed"),
    ("expired", "expired"),
    ("wrong_host", "mismatch"),
])
@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_bad_certificates_stop_everything_with_a_clear_error(certs, bad, words, security):
    context = getattr(certs, bad)()
    tls = {"starttls": context} if security == "starttls" else {"implicit_tls": context}
    with SmtpPeer(**tls, users={"acme": "s3cret"}) as peer:
        server = server_for(peer, security, "password", username="acme", password="s3cret")
        with pytest.raises(SmtpError) as info:
            connection(server, certs).open()
        error = info.value
        assert error.stage == "tls" and error.failure_type == FailureType.TLS
        assert error.server_fault
        assert words in error.message.lower() or bad.split("_")[0] in error.message.lower()
        assert error.message.startswith("The certificate of 127.0.0.1 could not be verified")
        assert nothing_sent(peer) and no_auth_seen(peer)


def test_verification_is_only_off_when_the_server_says_so(certs):
    with SmtpPeer(starttls=certs.self_signed()) as peer:
        server = server_for(peer, "starttls", verify_certificate=False)
        with connection(server, certs) as conn:
            assert conn.send("b@acme.example", ["ada@client.example"], RAW).accepted
        assert peer.sessions[0].tls


def test_starttls_required_but_not_offered_sends_nothing(sink):
    sink.users = {"acme": "s3cret"}  # would even offer AUTH in clear (if the peer allowed it)
    server = server_for(sink, "starttls", "password", username="acme", password="s3cret")
    with pytest.raises(SmtpError) as info:
        connection(server).open()
    assert info.value.stage == "tls" and "does not offer STARTTLS" in info.value.message
    assert nothing_sent(sink) and no_auth_seen(sink)


def test_credentials_never_travel_in_clear(sink):
    server = server_for(sink, "none", "password", username="acme", password="s3cret")
    with pytest.raises(SmtpError) as info:
        connection(server).open()
    assert info.value.stage == "auth" and "unencrypted" in info.value.message
    assert no_auth_seen(sink) and nothing_sent(sink)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls_below_1_2_is_refused(certs):
    import ssl

    old = certs.server_context()
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with SmtpPeer(implicit_tls=old) as peer:
        with pytest.raises(SmtpError) as info:
            connection(server_for(peer, "ssl"), certs).open()
    assert info.value.stage == "tls"


# --- failures, classified ------------------------------------------------------------------

def test_dns_failure():
    with pytest.raises(SmtpError) as info:
        connection(server_for(25, host="no-such-host.invalid")).open()
    assert info.value.stage == "dns" and "could not be found" in info.value.message


def test_connection_refused():
    with pytest.raises(SmtpError) as info:
        connection(server_for(refused_port())).open()
    error = info.value
    assert error.stage == "tcp" and error.failure_type == FailureType.UNREACHABLE
    assert error.temporary and error.server_fault and "refused the connection" in error.message


def test_421_at_greeting_is_a_temporary_server_fault(sink):
    sink.faults.greeting = "421 4.3.2 Too busy, come back later"
    with pytest.raises(SmtpError) as info:
        connection(server_for(sink)).open()
    assert info.value.code == 421 and info.value.temporary and info.value.server_fault
    assert "Too busy" in info.value.message


def test_wrong_password(starttls_peer, certs):
    server = server_for(starttls_peer, "starttls", "password", username="acme", password="no")
    with pytest.raises(SmtpError) as info:
        connection(server, certs).open()
    error = info.value
    assert error.stage == "auth" and error.failure_type == FailureType.AUTHENTICATION
    assert not error.temporary and "535" in error.message and nothing_sent(starttls_peer)


def test_one_refused_recipient_fails_alone(sink):
    sink.faults.rcpt["nobody@x.example"] = "550 5.1.1 No such user"
    with connection(server_for(sink)) as conn:
        result = conn.send("b@acme.example", ["a@x.example", "nobody@x.example", "c@x.example"],
                           RAW)
    by_address = {r.address: r for r in result.recipients}
    assert by_address["a@x.example"].accepted and by_address["c@x.example"].accepted
    refused = by_address["nobody@x.example"]
    assert not refused.accepted and not refused.temporary and refused.code == 550
    assert refused.failure_type == FailureType.INVALID_RECIPIENT
    assert "nobody@x.example" in refused.reason and "No such user" in refused.reason
    assert sink.messages[0].rcpt_tos == ["a@x.example", "c@x.example"]


@pytest.mark.parametrize("fault,value,stage_type", [
    ("rcpt", {"*": "451 4.3.0 Try again later"}, FailureType.REJECTED),
    ("data", "451 4.3.0 Queue full", FailureType.REJECTED),
    ("mail_from", "451 4.3.0 Later", FailureType.REFUSED_SENDER),
])
def test_4xx_replies_are_temporary_results(sink, fault, value, stage_type):
    setattr(sink.faults, fault, value)
    with connection(server_for(sink)) as conn:
        result = conn.send("b@acme.example", ["a@x.example"], RAW)
        assert conn.is_open  # the session is reset and reusable
        sink.faults.clear()
        assert conn.send("b@acme.example", ["a@x.example"], RAW).accepted
    [recipient] = result.recipients
    assert not recipient.accepted and recipient.temporary and recipient.code == 451
    assert recipient.failure_type == stage_type
    assert len(sink.messages) == 1


def test_sender_refused_permanently(sink):
    sink.faults.mail_from = "553 5.7.1 Sender not allowed"
    with connection(server_for(sink)) as conn:
        [recipient] = conn.send("b@acme.example", ["a@x.example"], RAW).recipients
    assert recipient.failure_type == FailureType.REFUSED_SENDER and not recipient.temporary


def test_too_large_is_refused_before_any_smtp_traffic(sink):
    sink.size_limit = 100  # announced as SIZE 100
    with connection(server_for(sink)) as conn:
        assert conn.size_limit == 100
        [recipient] = conn.send("b@acme.example", ["a@x.example"], RAW).recipients
    assert recipient.failure_type == FailureType.TOO_LARGE and "Nothing was sent" in \
        recipient.reason
    assert nothing_sent(sink)


def test_server_max_message_size_applies_too(sink):
    with connection(server_for(sink, max_message_size=50)) as conn:
        [recipient] = conn.send("b@acme.example", ["a@x.example"], RAW).recipients
    assert recipient.failure_type == FailureType.TOO_LARGE and nothing_sent(sink)


def test_timeout_and_disconnect_mid_data_raise_and_close(sink):
    conn = connection(server_for(sink), timeout=0.5)
    sink.faults.stall_data = 10
    conn.open()
    with pytest.raises(SmtpError) as info:
        conn.send("b@acme.example", ["a@x.example"], RAW)
    assert info.value.temporary and not info.value.server_fault and not conn.is_open
    assert "did not answer within 0.5 s" in info.value.message

    sink.faults.clear()
    sink.faults.disconnect_in_data = True
    conn.open()
    with pytest.raises(SmtpError) as info:
        conn.send("b@acme.example", ["a@x.example"], RAW)
    assert info.value.temporary and not conn.is_open
    assert not sink.messages


# --- test_connection -----------------------------------------------------------------------

def test_test_connection_reports_success_with_size_and_a_transcript_without_secrets(
        starttls_peer, certs):
    starttls_peer.size_limit = 10_000_000
    server = server_for(starttls_peer, "starttls", "password", username="acme",
                        password="s3cret", from_filter="billing@acme.example")
    report = test_connection(server, ssl_context=certs.client_context)
    assert report.ok and report.stage == "ok" and report.size_limit == 10_000_000
    assert "billing@acme.example" in report.message and "encrypted" in report.message
    text = "\n".join(report.transcript)
    assert "STARTTLS" in text and "AUTH PLAIN acme ****" in text and "RSET" in text
    assert "s3cret" not in text
    assert not starttls_peer.messages  # MAIL FROM / RCPT TO / RSET only


@pytest.mark.parametrize("setup,stage", [
    ("refused", "tcp"), ("dns", "dns"), ("bad_cert", "tls"), ("password", "auth"),
    ("sender", "sender"), ("recipient", "recipient"),
])
def test_test_connection_names_the_failing_stage(certs, setup, stage):
    with SmtpPeer(starttls=certs.expired() if setup == "bad_cert" else certs.server_context(),
                  users={"acme": "s3cret"}) as peer:
        server = server_for(peer, "starttls", "password", username="acme", password="s3cret")
        if setup == "refused":
            server.port = refused_port()
        elif setup == "dns":
            server.host = "no-such-host.invalid"
        elif setup == "password":
            server.password = "wrong"
        elif setup == "sender":
            peer.faults.mail_from = "550 5.7.1 Not your domain"
        elif setup == "recipient":
            peer.faults.rcpt["*"] = "550 5.1.1 Unknown"
        report = test_connection(server, ssl_context=certs.client_context, timeout=5)
    assert not report.ok and report.stage == stage, report
    assert report.message and report.transcript is not None

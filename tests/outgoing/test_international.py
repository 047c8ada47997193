"""Internationalised mail (RFC 6530-6532) and mails that break Mailroom itself, sent by the
real sender to real aiosmtpd peers on loopback.

- a domain always goes out as its IDNA A-label, so it needs nothing from the server;
- a non-ASCII local part goes out with SMTPUTF8 (and UTF-8 headers) to a server that offers
  it, and fails alone, in plain words, where the server does not;
- whatever raises while one mail is built or sent fails that mail alone, with a reason and an
  attempt row: the mails sharing its connection all go out in the same pass.
"""

from __future__ import annotations

import email
import email.policy

import pytest

from mailroom.lib.dkim import generate_key
from mailroom.outgoing.models import DkimKey, FailureType, OutgoingRecipient, SendAttempt
from tests.outgoing import test_sender
from tests.outgoing.smtp_peer import SmtpPeer
from tests.outgoing.test_sender import enqueue, fresh, make_sender, make_server

# fixtures
clock, _close_senders = test_sender.clock, test_sender._close_senders


@pytest.fixture
def plain_peer():
    """Offers neither SMTPUTF8 nor PIPELINING: every command is its own round trip."""
    with SmtpPeer(pipelining=False) as peer:
        yield peer


@pytest.fixture
def utf8_peer():
    with SmtpPeer(pipelining=False, smtputf8=True) as peer:
        yield peer


def around(company, bad_to, **kwargs):
    """20 healthy mails, the one under test, 20 more: one connection sends them in order."""
    before = [enqueue(company, to=[f"before{n}@client.example"]) for n in range(20)]
    bad = enqueue(company, to=bad_to, **kwargs)
    after = [enqueue(company, to=[f"after{n}@client.example"]) for n in range(20)]
    return bad, before + after


def assert_all_sent(healthy, peer) -> None:
    assert {fresh(m).state for m in healthy} == {"sent"}
    delivered = {r for m in peer.messages for r in m.rcpt_tos}
    assert {f"{w}{n}@client.example" for w in ("before", "after") for n in range(20)} <= delivered


def parsed(received):
    # the bytes parser reads headers as ASCII; UTF-8 headers (RFC 6532) are read as text
    return email.message_from_string(received.data.decode(), policy=email.policy.SMTPUTF8)


def dkim_key(company) -> bytes:
    """A DKIM key for acme.example; returns its DNS TXT record."""
    private_pem, txt = generate_key(1024)
    DkimKey.objects.create(company=company, domain="acme.example", selector="s1",
                           private_key=private_pem.decode(), dns_txt=txt)
    return txt.encode()


def verifies(received, txt: bytes) -> bool:
    import dkim

    return dkim.verify(received.data, dnsfunc=lambda name, timeout=5: txt)


def test_with_smtputf8_a_non_ascii_local_part_goes_out_next_to_40_mails(acme, clock,
                                                                         utf8_peer):
    make_server(acme, utf8_peer, max_connections=1)
    txt = dkim_key(acme)
    bad, healthy = around(acme, [("Jürgen", "jürgen@example.com")])

    # one pass must reach all 41, however loaded the machine: a budget that never cuts it
    make_sender(clock, pass_budget=60).run_once()

    assert_all_sent(healthy, utf8_peer)
    bad = fresh(bad)
    assert bad.state == "sent" and bad.attempts.get().outcome == SendAttempt.Outcome.SENT
    [received] = [m for m in utf8_peer.messages if m.rcpt_tos == ["jürgen@example.com"]]
    assert "SMTPUTF8" in received.mail_options
    # RFC 6532: the address is written in UTF-8 in the header, not as encoded-words
    assert "<jürgen@example.com>".encode() in received.data
    assert parsed(received)["To"].addresses[0].username == "jürgen"
    assert parsed(received)["To"].addresses[0].display_name == "Jürgen"
    assert verifies(received, txt)  # the UTF-8 copy is signed as it is sent
    # the ASCII mails around it did not need SMTPUTF8
    assert all("SMTPUTF8" not in m.mail_options for m in utf8_peer.messages
               if m is not received)


def test_without_smtputf8_the_non_ascii_recipient_fails_alone_in_plain_words(acme, clock,
                                                                             plain_peer):
    make_server(acme, plain_peer, max_connections=1)
    txt = dkim_key(acme)
    bad, healthy = around(acme, [("Jürgen", "jürgen@example.com")],
                          cc=["boss@client.example"])

    make_sender(clock).run_once()

    assert_all_sent(healthy, plain_peer)
    bad = fresh(bad)
    # the mail reached its ASCII recipient; the other one failed, saying why
    assert bad.state == "sent" and "1 of 2 recipients not reached" in bad.failure_reason
    jurgen = bad.recipients.get(address="jürgen@example.com")
    assert jurgen.status == OutgoingRecipient.Status.FAILED
    assert jurgen.failure_reason == (
        "The receiving server does not accept internationalised addresses (no SMTPUTF8), so "
        "jürgen@example.com cannot be reached through it.")
    assert bad.recipients.get(address="boss@client.example").status == "sent"
    assert bad.attempts.get().outcome == SendAttempt.Outcome.PARTIAL
    # the copy for the boss went through a server without SMTPUTF8: ASCII headers only, the
    # internationalised address written as an encoded group that still names it
    [received] = [m for m in plain_peer.messages if m.rcpt_tos == ["boss@client.example"]]
    assert received.data.isascii()
    assert "SMTPUTF8" not in received.mail_options
    to = parsed(received)["To"]
    assert to.groups[0].display_name == "Jürgen <jürgen@example.com>"
    assert not to.groups[0].addresses and not to.defects
    assert verifies(received, txt)
    assert not any("jürgen" in r for m in plain_peer.messages for r in m.rcpt_tos)


def test_a_non_ascii_recipient_alone_fails_with_a_reason_and_an_attempt(acme, clock,
                                                                        plain_peer):
    make_server(acme, plain_peer, max_connections=1)
    bad, healthy = around(acme, ["üser@example.com"])

    make_sender(clock).run_once()

    assert_all_sent(healthy, plain_peer)
    bad = fresh(bad)
    assert bad.state == "exception" and bad.failure_type == FailureType.REJECTED
    assert "does not accept internationalised addresses" in bad.failure_reason
    attempt = bad.attempts.get()
    assert attempt.outcome == SendAttempt.Outcome.FAILED
    assert "does not accept internationalised addresses" in attempt.smtp_reply


def test_an_idn_domain_goes_out_as_its_a_label_without_smtputf8(acme, clock, plain_peer):
    make_server(acme, plain_peer)
    mail = enqueue(acme, to=[("Ana", "user@exämple.com")])

    make_sender(clock).run_once()

    assert fresh(mail).state == "sent"
    [received] = plain_peer.messages
    assert received.rcpt_tos == ["user@xn--exmple-cua.com"]
    assert received.data.isascii() and "SMTPUTF8" not in received.mail_options
    assert parsed(received)["To"].addresses[0].domain == "xn--exmple-cua.com"


# --- an exception on one mail stays with that mail ---------------------------------------------

def _corrupt(mail, address: str) -> None:
    """A recipient row no enqueue would write (an old row, a manual fix in the database)."""
    OutgoingRecipient.objects.filter(mail=mail).update(address=address)


def test_an_exception_while_sending_one_mail_fails_only_that_mail(acme, clock, plain_peer):
    make_server(acme, plain_peer, max_connections=1)
    sending, healthy = around(acme, ["fine@client.example"])
    # the transport refuses to put an angle bracket on the wire: it raises, mid-lane
    _corrupt(sending, "x<y@client.example")

    make_sender(clock).run_once()

    assert_all_sent(healthy, plain_peer)
    sending = fresh(sending)
    assert sending.state == "exception" and sending.failure_type == FailureType.UNKNOWN
    assert "Mailroom failed while sending to x<y@client.example (ValueError" in \
        sending.failure_reason
    attempt = sending.attempts.get()
    assert attempt.outcome == SendAttempt.Outcome.FAILED and attempt.server_name == "sink"
    assert "ValueError" in attempt.smtp_reply


def test_a_mail_that_cannot_be_built_fails_alone_with_an_attempt(acme, clock, plain_peer):
    make_server(acme, plain_peer, max_connections=1)
    unbuildable, healthy = around(acme, ["fine@client.example"])
    _corrupt(unbuildable, "someone@exa mple.com")  # no domain can hold a space

    make_sender(clock).run_once()

    assert_all_sent(healthy, plain_peer)
    unbuildable = fresh(unbuildable)
    assert unbuildable.state == "exception"
    assert unbuildable.failure_reason.startswith("The message cannot be built")
    attempt = unbuildable.attempts.get()
    assert attempt.outcome == SendAttempt.Outcome.FAILED
    assert attempt.smtp_reply == unbuildable.failure_reason

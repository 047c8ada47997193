"""Delivery reports: hand-written real-world samples, classification, hostile input."""

from __future__ import annotations

import email
import email.policy
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.lib.bounces import (
    BounceReport,
    FailedRecipient,
    classify,
    looks_like_bounce,
    parse_bounce,
)

SAMPLES = Path(__file__).parent / "samples" / "bounces"


def raw(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


def headers(data: bytes) -> email.message.Message:
    return email.message_from_bytes(data, policy=email.policy.compat32)


# name, reporter, kind, address, status, original Message-ID, X-Mailroom-ID
CASES = [
    ("postfix_user_unknown.eml", "postfix", "hard", "jane.doe@customer.example", "5.1.1",
     "<original-1@example.com>", "AbC123xyz"),
    ("exim_failed.eml", "exim", "hard", "bob.smith@partner.example", "5.1.1",
     "<original-2@example.com>", "Exim42Qq"),
    ("exchange_o365_ndr.eml", "exchange", "hard", "m.mueller@contoso.com", "5.1.10",
     "<original-3@example.com>", "Xch365abc"),
    ("gmail_dsn.eml", "gmail", "hard", "nosuchuser@gmail.com", "5.1.1",
     "<original-4@example.com>", "GmL9k2pQ"),
    ("postfix_delayed.eml", "postfix", "delayed", "orders@slow-shop.example", "4.4.1",
     "<original-5@example.com>", "DeLay5xyz"),
    ("mailbox_full.eml", "postfix", "soft", "kim@smallbiz.example", "5.2.2",
     "<original-6@example.com>", "FuLL22abc"),
    ("qmail_failure.eml", "qmail", "hard", "info@oldhost.example", "5.1.1",
     "<original-7@example.com>", "QmL7zz01"),
]
NOT_BOUNCES = ["out_of_office.eml", "exchange_oof.eml"]

HUMAN = b"""From: Jane Doe <jane.doe@customer.example>
To: Acme Sales <sales@example.com>
Subject: Re: Your quotation Q-2025-0042
Message-ID: <CAF=abc123@mail.customer.example>
In-Reply-To: <original-1@example.com>
Date: Tue, 14 Jan 2025 11:00:00 +0100
Content-Type: text/plain; charset=utf-8

Thanks! Our mail server said "550 5.1.1 <old@customer.example>: Recipient address
rejected" when I wrote to my old address, so please use this one from now on.
"""


@pytest.mark.parametrize(("name", "reporter", "kind", "address", "status", "message_id",
                          "mailroom_id"), CASES)
def test_samples(name, reporter, kind, address, status, message_id, mailroom_id):
    report = parse_bounce(raw(name))
    assert isinstance(report, BounceReport)
    assert report.reporter == reporter
    assert report.kind == kind
    assert [r.address for r in report.recipients] == [address]
    assert report.recipients[0].status == status
    assert report.recipients[0].kind == kind
    assert report.original_message_id == message_id
    assert report.original_mailroom_id == mailroom_id
    diagnostic = report.recipients[0].diagnostic
    assert diagnostic and "\n" not in diagnostic and len(diagnostic) <= 500
    sentence = report.reason()
    assert status in sentence and sentence.endswith(".") and "\n" not in sentence


@pytest.mark.parametrize("name", [case[0] for case in CASES])
def test_looks_like_bounce_for_every_bounce(name):
    assert looks_like_bounce(headers(raw(name)))


@pytest.mark.parametrize("name", NOT_BOUNCES)
def test_out_of_office_is_not_a_bounce(name):
    data = raw(name)
    assert not looks_like_bounce(headers(data))
    assert not looks_like_bounce(headers(data), "<>")
    assert parse_bounce(data) is None


def test_human_mail_quoting_an_smtp_error_is_not_a_bounce():
    assert not looks_like_bounce(headers(HUMAN), "jane.doe@customer.example")
    assert not looks_like_bounce(headers(HUMAN))  # envelope unknown ('' is not '<>')
    assert parse_bounce(HUMAN) is None


def test_null_envelope_sender_alone_says_bounce():
    assert looks_like_bounce({"subject": "hello"}, "<>")
    assert not looks_like_bounce({"subject": "hello"}, "")


def test_sample_details():
    gmail = parse_bounce(raw("gmail_dsn.eml")).recipients[0]
    assert gmail.diagnostic.startswith("550 5.1.1 The email account that you tried to reach "
                                       "does not exist. Please try double-checking")
    assert "550-5.1.1" not in gmail.diagnostic
    assert parse_bounce(raw("exchange_o365_ndr.eml")).recipients[0].diagnostic.startswith(
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound")
    assert "User unknown in local recipient table" in \
        parse_bounce(raw("exim_failed.eml")).recipients[0].diagnostic
    assert parse_bounce(raw("qmail_failure.eml")).recipients[0].diagnostic == \
        "550 5.1.1 <info@oldhost.example>... No such user here"
    reason = parse_bounce(raw("postfix_user_unknown.eml")).reason()
    assert reason.startswith("The receiving server says the mailbox does not exist (5.1.1)")
    assert "is full" in parse_bounce(raw("mailbox_full.eml")).reason()
    assert parse_bounce(raw("postfix_delayed.eml")).reason().startswith("Delivery for")


def test_delivered_and_relayed_recipients_are_not_reported():
    data = _report([("ok@example.org", "delivered", "2.0.0"),
                    ("gone@example.org", "failed", "5.1.1"),
                    ("relay@example.org", "relayed", "2.0.0")])
    report = parse_bounce(data)
    assert [r.address for r in report.recipients] == ["gone@example.org"]
    assert report.reporter == "dsn"
    assert parse_bounce(_report([("ok@example.org", "delivered", "2.0.0")])) is None


def test_text_delivery_status_and_headers_only_original():
    data = (b"From: postmaster@mx.example.org\r\nSubject: Returned mail\r\n"
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n"
            b"--b\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n"
            b"--b\r\nContent-Type: text/delivery-status\r\n\r\n"
            b"Reporting-MTA: dns; mx.example.org\r\n\r\n"
            b"Original-Recipient: rfc822; First@Example.org\r\n"
            b"Final-Recipient: rfc822; first.alias@example.org\r\n"
            b"Action: failed\r\nStatus: 5.0.0\r\n"
            b"Diagnostic-Code: smtp; 552 mailbox full\r\n\r\n"
            b"--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            b"Message-ID: <original-9@example.com>\r\nX-Mailroom-ID: Hd9\r\n\r\n--b--\r\n")
    report = parse_bounce(data)
    assert report.recipients == (FailedRecipient("first@example.org", "5.0.0", "failed",
                                                 "552 mailbox full", "soft"),)
    assert (report.original_message_id, report.original_mailroom_id) == \
        ("<original-9@example.com>", "Hd9")


def test_plain_smtp_line_and_x_failed_recipients():
    data = (b"From: Mail Delivery System <MAILER-DAEMON@relay.example.net>\n"
            b"Subject: Returned mail: see transcript for details\n"
            b"X-Failed-Recipients: other@example.org\n\n"
            b"The original message was received at Mon, 20 Jan 2025 10:00:00 GMT\n\n"
            b"550 5.1.1 <nobody@example.org>: Recipient address rejected\n\n"
            b"----- Original message follows -----\n\n"
            b"Message-ID: <original-8@example.com>\nX-Mailroom-ID: Pl8\n\nbody\n")
    report = parse_bounce(data)
    assert [(r.address, r.status, r.kind) for r in report.recipients] == [
        ("nobody@example.org", "5.1.1", "hard"), ("other@example.org", "5.1.1", "hard")]
    assert report.original_message_id == "<original-8@example.com>"
    assert report.original_mailroom_id == "Pl8"
    assert report.reporter == "unknown"


def test_unreadable_bounce_names_an_unknown_recipient_softly():
    report = parse_bounce(b"From: MAILER-DAEMON@mx.example.org\nSubject: failure notice\n\n"
                          b"Something went wrong.\n")
    assert report.recipients == (FailedRecipient("", "", "failed", "", "soft"),)
    assert report.kind == "soft"


@pytest.mark.parametrize(("status", "diagnostic", "action", "kind"), [
    ("5.1.1", "", "failed", "hard"),
    ("5.1.10", "550 5.1.10 RESOLVER.ADR.RecipientNotFound", "failed", "hard"),
    ("5.2.2", "", "failed", "soft"),
    ("5.0.0", "552 Mailbox full", "failed", "soft"),
    ("5.7.1", "user is over quota", "failed", "soft"),
    ("5.7.1", "Service unavailable, client host blocked using Spamhaus", "failed", "hard"),
    ("5.7.1", "Temporarily rejected for spam, try again later", "failed", "soft"),
    ("5.3.4", "552 message size exceeds fixed limit", "failed", "hard"),
    ("4.4.1", "connect to mx: Connection timed out", "failed", "soft"),
    ("4.2.2", "", "delayed", "delayed"),
    ("5.1.1", "", "delayed", "delayed"),
    ("", "550 No such user", "failed", "hard"),
    ("", "451 Try again later", "failed", "soft"),
    ("", "421 too many connections", "failed", "soft"),
    ("", "", "failed", "hard"),
    ("", "no idea", "failed", "hard"),
    ("Status: 5.1.1 (bad mailbox)", "", "FAILED", "hard"),
])
def test_classify(status, diagnostic, action, kind):
    assert classify(status, diagnostic, action) == kind


def test_report_kind_is_the_worst_recipient():
    def rec(kind: str) -> FailedRecipient:
        return FailedRecipient("a@example.org", "", "failed", "", kind)
    assert BounceReport("dsn", (rec("delayed"), rec("soft")), "", "").kind == "soft"
    assert BounceReport("dsn", (rec("soft"), rec("hard")), "", "").kind == "hard"
    assert BounceReport("dsn", (rec("delayed"),), "", "").kind == "delayed"
    assert BounceReport("dsn", (rec("soft"), rec("hard")), "", "").reason().endswith(
        "(and 1 more recipient).")


def test_max_bytes_is_respected():
    data = raw("postfix_user_unknown.eml")
    cut = parse_bounce(data, max_bytes=data.index(b"Content-Description: Delivery report"))
    assert cut is None or cut.original_mailroom_id == ""
    assert parse_bounce(data, max_bytes=0) is None


def _report(recipients: list[tuple[str, str, str]], parts: int = 0) -> bytes:
    blocks = "".join(f"Final-Recipient: rfc822; {a}\nAction: {act}\nStatus: {s}\n\n"
                     for a, act, s in recipients)
    filler = "".join(f"--b\nContent-Type: text/plain\n\npart {i}\n" for i in range(parts))
    return (f"From: MAILER-DAEMON@mx.example.org\nContent-Type: multipart/report; "
            f"report-type=delivery-status; boundary=b\n\n{filler}"
            f"--b\nContent-Type: message/delivery-status\n\n"
            f"Reporting-MTA: dns; mx.example.org\n\n{blocks}--b--\n").encode()


def test_twenty_thousand_parts_finish_fast():
    data = _report([("late@example.org", "failed", "5.1.1")], parts=20_000)
    assert data.count(b"\n--b\n") > 20_000
    report = parse_bounce(data)  # only MAX_PARTS non-report parts are opened
    assert [r.address for r in report.recipients] == ["late@example.org"]


def test_many_recipients_and_long_lines_finish_fast():
    data = _report([(f"u{i}@example.org", "failed", "5.1.1") for i in range(20_000)])
    report = parse_bounce(data)  # only MAX_PARTS non-report parts are opened
    assert len(report.recipients) == 500
    hostile = (b"From: MAILER-DAEMON@x.example\nSubject: failure notice\n\n"
               + b"a" * 300_000 + b"@" + b"b." * 100_000 + b"\n550 " + b"x@" * 100_000)
    start = time.perf_counter()
    parse_bounce(hostile)
    # not a timing test: a guard against a parse that grows without bound (it takes about a
    # second alone; the bound leaves room for a busy machine)
    assert time.perf_counter() - start < 30


@settings(deadline=None, max_examples=200)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data):
    start = time.perf_counter()
    report = parse_bounce(data)
    looks_like_bounce(headers(data))
    assert report is None or isinstance(report, BounceReport)
    assert time.perf_counter() - start < 1


_LINES = st.sampled_from([
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n",
    b"Content-Type: message/delivery-status\n", b"Content-Type: text/delivery-status\n",
    b"Content-Type: message/rfc822\n", b"Content-Type: text/rfc822-headers\n",
    b"Content-Transfer-Encoding: base64\n", b"--b\n", b"--b--\n", b"\n",
    b"Final-Recipient: rfc822; a@example.org\n", b"Action: failed\n", b"Status: 5.1.1\n",
    b"Diagnostic-Code: smtp; 550-5.1.1 no\n 550 5.1.1 no\n", b"From: MAILER-DAEMON@x\n",
    b"Message-ID: <o@x>\n", b"X-Mailroom-ID: \xff\n", b"<a@b.c>:\n", b"  a@b.c\n",
    b"This message was created automatically by mail delivery software.\n",
    b"Hi. This is the qmail-send program at x.\n", b"--- Below this line is a copy\n",
])


@settings(deadline=None, max_examples=300)
@given(st.lists(_LINES | st.binary(max_size=40), max_size=60))
def test_report_shaped_garbage_never_raises(lines):
    start = time.perf_counter()
    report = parse_bounce(b"".join(lines))
    assert report is None or all(r.kind in ("hard", "soft", "delayed")
                                 for r in report.recipients)
    assert time.perf_counter() - start < 1


def test_exim_delay_warning_is_delayed():
    data = b"""From: Mail Delivery System <Mailer-Daemon@relay.example>
Subject: Warning: message 1tXwQa-0007Tb-2L delayed 24 hours

This message was created automatically by mail delivery software.
A message that you sent has not yet been delivered to one or more of its
recipients after more than 24 hours on the queue on relay.example.

The address to which the message has not yet been delivered is:

  slow@example.org
    host mx.example.org [203.0.113.1]
    Delay reason: SMTP error from remote mail server after RCPT TO:<slow@example.org>:
    451 4.7.1 Greylisted, try again later

No action is required on your part.
"""
    report = parse_bounce(data)
    assert (report.reporter, report.kind) == ("exim", "delayed")
    assert report.recipients == (FailedRecipient(
        "slow@example.org", "4.7.1", "delayed", "451 4.7.1 Greylisted, try again later",
        "delayed"),)


def test_deeply_nested_parts_do_not_raise():
    data = (b"From: MAILER-DAEMON@x.example\n"
            + b"".join(b"Content-Type: multipart/mixed; boundary=b%d\n\n--b%d\n" % (i, i)
                       for i in range(3000)) + b"Content-Type: message/rfc822\n\n" * 1000)
    start = time.perf_counter()
    report = parse_bounce(data)
    assert report is None or isinstance(report, BounceReport)
    # not a timing test: a guard against a parse that grows without bound (it takes about a
    # second alone; the bound leaves room for a busy machine)
    assert time.perf_counter() - start < 30

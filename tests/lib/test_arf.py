"""Feedback reports (ARF, RFC 5965) as Yahoo, AOL and Microsoft send them, and the RFC's own
minimal example: the complaint's type, the recipient (even redacted) and our mail's ids."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.lib import arf
from mailroom.lib.inbound import parse_head

SAMPLES = Path(__file__).parent / "samples" / "arf"

# sample, user agent, recipients, Message-ID, X-Mailroom-ID, source IP, arrival date
CASES = [
    ("yahoo_abuse.eml", "Yahoo!-Mail-Feedback/2.0", ("lena.fischer@yahoo.com",),
     "<yahoo-original-1@acme.test>", "YaHoo123abc", "203.0.113.25",
     "Tue, 14 Mar 2023 09:01:02 +0000"),
    ("aol_redacted.eml", "AOL SComp", ("redacted@aol.com",), "<aol-original-1@acme.test>",
     "AoL777redact", "203.0.113.25", "Wed, 15 Mar 2023 18:02:11 -0400 (EDT)"),
    ("microsoft_jmrp.eml", "Microsoft Junk Mail Reporting Program/1.0",
     ("sam.okafor@outlook.com",), "<jmrp-original-1@acme.test>", "MsJmrp42zz",
     "203.0.113.25", "Thu, 16 Mar 2023 07:40:03 -0700"),
    ("rfc5965_minimal.eml", "SomeGenerator/1.0", (),
     "<8787KJKJ3K4J3K4J3K4J3.mail@example.net>", "", "", ""),
]


def sample(name: str) -> bytes:
    return (SAMPLES / name).read_bytes()


@pytest.mark.parametrize(("name", "agent", "recipients", "message_id", "mrid", "ip", "arrived"),
                         CASES, ids=[c[0] for c in CASES])
def test_samples(name, agent, recipients, message_id, mrid, ip, arrived):
    raw = sample(name)
    assert arf.is_feedback_report(parse_head(raw))
    report = arf.parse_feedback(raw)
    assert report is not None
    assert report.feedback_type == "abuse" and report.is_complaint
    assert report.user_agent == agent
    assert report.original_rcpt_to == recipients
    assert report.original_message_id == message_id
    assert report.original_mailroom_id == mrid
    assert report.source_ip == ip
    assert report.arrival_date == arrived


def test_the_same_report_with_crlf_line_ends_reads_the_same():
    for name, *_ in CASES:
        raw = sample(name)
        assert arf.parse_feedback(raw.replace(b"\n", b"\r\n")) == arf.parse_feedback(raw)


def test_yahoo_fields_and_the_subject_of_our_mail():
    report = arf.parse_feedback(sample("yahoo_abuse.eml"))
    assert report.original_mail_from == "bounce@acme.test"
    assert report.reported_domain == "acme.test"
    assert report.original_subject == "Spring sale: twenty percent off"
    assert report.describe() == ("abuse report from Yahoo!-Mail-Feedback "
                                 "(our mail arrived Tue, 14 Mar 2023 09:01:02 +0000)")


def test_microsoft_reads_the_recipient_from_its_own_header_in_the_returned_headers():
    """JMRP redacts To and sends no Original-Rcpt-To; X-HmXmrOriginalRecipient of the returned
    headers names the recipient (the same header on the report itself is not ours)."""
    report = arf.parse_feedback(sample("microsoft_jmrp.eml"))
    assert report.original_rcpt_to == ("sam.okafor@outlook.com",)


def test_a_delivery_report_is_not_a_feedback_report():
    raw = (SAMPLES.parent / "bounces" / "postfix_user_unknown.eml").read_bytes()
    assert not arf.is_feedback_report(parse_head(raw))
    assert arf.parse_feedback(raw) is None


def test_not_spam_is_no_complaint():
    raw = sample("yahoo_abuse.eml").replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam")
    report = arf.parse_feedback(raw)
    assert report.feedback_type == "not-spam" and not report.is_complaint


def test_a_report_without_the_machine_part_is_none():
    raw = sample("rfc5965_minimal.eml").replace(b"message/feedback-report", b"text/plain")
    assert arf.parse_feedback(raw) is None


def test_several_original_recipients_are_all_kept_once():
    raw = sample("yahoo_abuse.eml").replace(
        b"Original-Rcpt-To: <lena.fischer@yahoo.com>\n",
        b"Original-Rcpt-To: <lena.fischer@yahoo.com>\nOriginal-Rcpt-To: Lena.Fischer@yahoo.com"
        b"\nOriginal-Rcpt-To: <second@yahoo.com>\n")
    assert arf.parse_feedback(raw).original_rcpt_to == ("lena.fischer@yahoo.com",
                                                        "second@yahoo.com")


def test_max_bytes_cuts_the_returned_original():
    raw = sample("yahoo_abuse.eml")
    cut = raw.index(b"X-Mailroom-ID")
    report = arf.parse_feedback(raw, max_bytes=cut)
    assert report is not None and report.original_mailroom_id == ""


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([c[0] for c in CASES]), st.integers(min_value=0, max_value=4000),
       st.binary(max_size=200))
def test_cut_or_spliced_samples_never_raise(name, at, junk):
    """Real reports cut anywhere, with garbage spliced in: a report or None, never an error,
    and what is read of our mail's id is one token, of the recipients addresses."""
    raw = sample(name)
    at = min(at, len(raw))
    for data in (raw[:at], raw[:at] + junk + raw[at:]):
        report = arf.parse_feedback(data)
        assert report is None or isinstance(report, arf.FeedbackReport)
        if report is not None:
            assert " " not in report.original_mailroom_id
            assert all("@" in address for address in report.original_rcpt_to)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(data):
    prefix = b"Content-Type: multipart/report; report-type=feedback-report; boundary=b\n\n"
    for raw in (prefix + data, data):
        report = arf.parse_feedback(raw)
        assert report is None or isinstance(report, arf.FeedbackReport)

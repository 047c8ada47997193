"""Bounces that are not RFC 3464 reports (tests/lib/samples/bounces/legacy): each format's
failed recipient is found, permanent failures are failed (hard, or soft when the words say so),
delay warnings are delayed, and a MAILER-DAEMON notice that reports no failure is no bounce."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from mailroom.lib.bounces import parse_bounce
from mailroom.lib.bounces_legacy import failures, is_warning

LEGACY = Path(__file__).parent / "samples" / "bounces" / "legacy"
NOTICE = Path(__file__).parents[1] / "fixtures" / "email" / "mailer_daemon_queue_notice.eml"

# sample, the failed recipient, its action, hard/soft/delayed
PERMANENT = [
    ("qmail_vpopmail.eml", "peter.gone@hostbox.example", "hard"),
    ("yahoo.eml", "anna.k1982@yahoo.com", "hard"),
    ("exchange55_ndr.eml", "h.brandt@lawfirm.example", "hard"),
    ("microsoft_smtpsvc.eml", "head.teacher@school.example", "hard"),
    ("groupwise.eml", "mary.jones@county.example", "hard"),
    ("sendmail_nodsn.eml", "prof.weiss@univ.example", "hard"),
    ("postfix_old.eml", "orders@defunct-shop.example", "hard"),
    ("smtp32.eml", "bill.old@isp.example", "hard"),
    ("netscape.eml", "lee.chen@nms.example", "hard"),
    ("domino.eml", "jdoe@corp-domino.example", "hard"),  # read by our own Domino reader
    # flufl says permanent; the words say the mailbox is over quota: our verdict, soft
    ("netscape_over_quota.eml", "full.box@nms2.example", "soft"),
]
DELAYS = [
    ("sendmail_warning.eml", "slow.reader@far.example"),
    ("delayed_warning.eml", "purchasing@busy.example"),
    ("iis_delay.eml", ""),  # names its recipient in no form anyone reads: still only a delay
]


@pytest.mark.parametrize(("name", "address", "kind"), PERMANENT, ids=[c[0] for c in PERMANENT])
def test_each_legacy_format_names_its_failed_recipient(name, address, kind):
    report = parse_bounce((LEGACY / name).read_bytes())
    assert report is not None
    assert [r.address for r in report.recipients] == [address]
    assert report.recipients[0].action == "failed"
    assert report.kind == kind


@pytest.mark.parametrize(("name", "address"), DELAYS, ids=[c[0] for c in DELAYS])
def test_delay_warnings_are_delayed_never_soft(name, address):
    report = parse_bounce((LEGACY / name).read_bytes())
    assert report is not None and report.kind == "delayed"
    assert [(r.address, r.action) for r in report.recipients] == [(address, "delayed")]


def test_the_legacy_detectors_split_permanent_from_temporary():
    permanent, temporary = failures((LEGACY / "groupwise.eml").read_bytes())
    assert (permanent, temporary) == (["mary.jones@county.example"], [])
    warning = (b"From: MAILER-DAEMON@mx.example.org\nSubject: Delayed mail\n\n"
               b"Delivery to the following recipient has been delayed:\n\n"
               b"     late@example.org\n\nMessage will be retried for 2 more day(s)\n")
    assert failures(warning) == ([], ["late@example.org"])
    report = parse_bounce(warning)
    assert [(r.address, r.kind) for r in report.recipients] == [("late@example.org", "delayed")]


@pytest.mark.parametrize("subject", [
    "Non-Delivery: Your quotation", "Permanent Delivery Failure", "Undeliverable: Your quotation",
    "failure notice", "Message status - undeliverable", "Returned mail: User unknown"])
def test_failure_subjects_make_a_report_of_prose(subject):
    data = (f"From: Mail Administrator <admin@corp.example>\nSubject: {subject}\n\n"
            f"Your message could not be delivered.\n\n"
            f"<gone@corp.example>: 550 5.1.1 unknown user\n").encode()
    report = parse_bounce(data)
    assert report is not None and report.kind == "hard"
    assert "gone@corp.example" in [r.address for r in report.recipients]


@pytest.mark.parametrize("subject", [
    "Delivery Status Notification (Delay)", "Warning: message 1tXwQa-0007Tb-2L delayed 24 hours",
    "Warning: could not send message for past 4 hours"])
def test_delay_subjects_are_warnings(subject):
    assert is_warning(subject, "")
    data = (f"From: MAILER-DAEMON@relay.example\nSubject: {subject}\n\n"
            f"<late@example.org>: 451 4.4.1 connection timed out\n").encode()
    assert parse_bounce(data).kind == "delayed"


def test_a_mailer_daemon_notice_that_reports_no_failure_is_no_bounce():
    data = NOTICE.read_bytes()
    assert parse_bounce(data) is None
    assert parse_bounce(data, expected=True) is None


def test_the_bounce_address_lets_the_detectors_alone_decide():
    """An Exchange 5.5 report from 'System Administrator' with an ordinary subject: only the
    bounce address it reached says it is a report."""
    data = (LEGACY / "exchange55_ndr.eml").read_bytes().replace(
        b"Subject: Undeliverable: Your quotation", b"Subject: Your quotation").replace(
        b"X-Mailer: Internet Mail Service (5.5.2653.19)\n", b"")
    data = data.replace(b"postmaster@lawfirm.example", b"admin@lawfirm.example")
    assert parse_bounce(data) is None
    report = parse_bounce(data, expected=True)
    assert [r.address for r in report.recipients] == ["h.brandt@lawfirm.example"]


def test_the_detectors_see_a_bounded_copy():
    hostile = (b"From: MAILER-DAEMON@x.example\nSubject: failure notice\n\n"
               b"Hi. This is the qmail-send program at x.\n\n"
               + b"<" + b"a" * 400_000 + b"@" + b"b." * 200_000 + b">:\n"
               + (b", x@y.example, " * 50_000) + b"\n")
    start = time.perf_counter()
    parse_bounce(hostile, expected=True)
    failures(hostile)
    assert time.perf_counter() - start < 3

"""RFC 3834 automatic mail: out-of-office replies, lists, robots, and mail a person sent."""

from __future__ import annotations

import email
import email.policy
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailroom.lib.autoreply import automatic_reason, is_mailer_daemon

SAMPLES = Path(__file__).parent / "samples" / "bounces"


def message(text: str) -> email.message.Message:
    return email.message_from_string(text, policy=email.policy.compat32)


def sample(name: str) -> email.message.Message:
    return email.message_from_bytes((SAMPLES / name).read_bytes(),
                                    policy=email.policy.compat32)


HUMAN = "From: Jane Doe <jane@customer.example>\nTo: sales@example.com\nSubject: Quote\n\nHi"


def test_out_of_office_samples():
    assert automatic_reason(sample("out_of_office.eml")) == "Auto-Submitted: auto-replied"
    assert automatic_reason(sample("exchange_oof.eml")) == \
        "X-Auto-Response-Suppress: All from Exchange"


@pytest.mark.parametrize("name", ["postfix_user_unknown.eml", "exim_failed.eml",
                                  "qmail_failure.eml", "gmail_dsn.eml"])
def test_bounces_are_automatic(name):
    assert automatic_reason(sample(name))


@pytest.mark.parametrize(("extra", "reason"), [
    ("Auto-Submitted: auto-generated\n", "Auto-Submitted: auto-generated"),
    ("Auto-Submitted: Auto-Replied; owner-email=x@example.org\n",
     "Auto-Submitted: auto-replied"),
    ("Precedence: bulk\n", "Precedence: bulk"),
    ("Precedence: JUNK\n", "Precedence: junk"),
    ("Precedence: list\n", "Precedence: list"),
    ("List-Id: Sales team <sales.lists.example.org>\n", "a mailing list (List-Id)"),
    ("List-Unsubscribe: <mailto:leave@lists.example.org>\n",
     "a mailing list (List-Unsubscribe)"),
    ("List-Post: <mailto:dev@lists.example.org>\n", "a mailing list (List-Post)"),
    ("X-Autoreply: yes\n", "X-Autoreply"),
    ("X-Autorespond: Thanks\n", "X-Autorespond"),
    ("X-Auto-Response-Suppress: OOF\n", "X-Auto-Response-Suppress: OOF from Exchange"),
    ("Feedback-ID: 123:campaign:esp\n", "Feedback-ID (a bulk sender)"),
    ("Return-Path: <>\n", "empty envelope sender (a delivery report)"),
    ("Auto-Submitted: no\nList-Id: <dev.example.org>\n", "a mailing list (List-Id)"),
])
def test_header_reasons(extra, reason):
    assert automatic_reason(message(extra + HUMAN)) == reason


@pytest.mark.parametrize(("sender", "reason"), [
    ("MAILER-DAEMON@mx.example.org", "sent by mailer-daemon"),
    ("Mail Delivery Subsystem <mailer-daemon@googlemail.com>", "sent by mailer-daemon"),
    ("postmaster@example.org", "sent by mailer-daemon"),
    ("Shop <no-reply@shop.example>", "sent from a no-reply address"),
    ("noreply@shop.example", "sent from a no-reply address"),
    ("DoNotReply@bank.example", "sent from a no-reply address"),
    ("do_not_reply@bank.example", "sent from a no-reply address"),
    ("bounces+123@mailer.example", "sent from a bounce address"),
])
def test_robot_senders(sender, reason):
    assert automatic_reason(message(f"From: {sender}\nSubject: x\n\nbody")) == reason


@pytest.mark.parametrize("subject", [
    "Out of Office: Quote", "Automatic reply: Quote", "Abwesenheitsnotiz: Angebot",
    "=?utf-8?q?R=C3=A9ponse_automatique=3A_Devis?=", "AW: Automatische Antwort: Angebot",
    "Autoreply: Quote",
])
def test_auto_reply_subjects(subject):
    text = f"From: jane@customer.example\nSubject: {subject}\n\nAway"
    assert automatic_reason(message(text)) == "the subject of an automatic reply"


def test_person_and_auto_submitted_no_are_not_automatic():
    assert automatic_reason(message(HUMAN)) is None
    assert automatic_reason(message(HUMAN), "jane@customer.example") is None
    assert automatic_reason(message("Auto-Submitted: no\n" + HUMAN)) is None
    assert automatic_reason(message("From: Jane <jane@x.example>\nSubject: Office move\n\n"))\
        is None


def test_envelope_sender():
    assert automatic_reason(message(HUMAN), "<>") == "empty envelope sender (a delivery report)"
    assert automatic_reason(message(HUMAN), "") is None  # '' means "not known"
    assert automatic_reason(message(HUMAN), "bounce+abc@lists.example") == \
        "sent from a bounce address"


@pytest.mark.parametrize(("address", "expected"), [
    ("MAILER-DAEMON@mx.example.org", True), ("<mailer-daemon@googlemail.com>", True),
    ("Postmaster@example.org", True), ("Mail Delivery System <bounce@relay.example>", True),
    ("Mail Delivery Subsystem <x@y.example>", True), ("MAILER-DAEMON", True),
    ("noreply@example.org", False), ("jane@example.org", False), ("", False),
    ("postmaster-friend@example.org", False),
])
def test_is_mailer_daemon(address, expected):
    assert is_mailer_daemon(address) is expected


class Headers(dict):
    """A case-insensitive mapping, as the inbound Head offers."""

    def get(self, name, default=None):
        return super().get(name.lower(), default)


_NAMES = st.sampled_from(["auto-submitted", "precedence", "list-id", "from", "sender",
                          "return-path", "subject", "x-auto-response-suppress",
                          "x-autoreply", "content-type", "x-failed-recipients"])


@settings(deadline=None, max_examples=300)
@given(st.dictionaries(_NAMES | st.text(max_size=20), st.text(max_size=200), max_size=12),
       st.text(max_size=100))
def test_arbitrary_headers_never_raise(values, envelope):
    from mailroom.lib.bounces import looks_like_bounce

    hdrs = Headers({k.lower(): v for k, v in values.items()})
    start = time.perf_counter()
    reason = automatic_reason(hdrs, envelope)
    looks_like_bounce(hdrs, envelope)
    is_mailer_daemon(envelope)
    assert reason is None or (isinstance(reason, str) and reason)
    assert time.perf_counter() - start < 1


def test_hostile_mapping_does_not_raise():
    class Broken:
        def get(self, name):
            raise RuntimeError("boom")

    assert automatic_reason(Broken(), "<>") == "empty envelope sender (a delivery report)"
    assert automatic_reason(Broken()) is None

"""Mailgun's webhooks, over real HTTP to the live server, signed with an HMAC key (payloads as in
Mailgun's "Webhook Payloads" and "Securing Webhooks" pages)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time

import pytest

from mailroom.campaigns.models import Suppression
from mailroom.outgoing.models import FailureType, FeedbackEvent, OutgoingRecipient
from tests.campaigns.test_reputation import traces
from tests.outgoing.feedback.conftest import MAILGUN_KEY, make_relay


@pytest.fixture
def relay(acme, mia):
    return make_relay(acme, mia, "Mailgun", "mailgun", MAILGUN_KEY)


def payload(trace, kind: str, event_id: str, *, key: str = MAILGUN_KEY, timestamp=None,
            **fields) -> bytes:
    timestamp = str(timestamp or int(time.time()))
    token = secrets.token_hex(25)
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps({
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": {"event": kind, "id": event_id, "recipient": trace.email,
                       "timestamp": time.time(), "log-level": "warn",
                       "message": {"headers": {"message-id": trace.mail.message_id.strip("<>"),
                                               "to": trace.email}}, **fields},
    }).encode()


def test_a_complaint_suppresses_and_a_replay_changes_nothing(hook, relay, trace):
    response = hook.post(relay, payload(trace, "complained", "mg-c1"))
    assert response.status_code == 200, response.text
    assert Suppression.objects.filter(email=trace.email, reason="complained").exists()
    again = hook.post(relay, payload(trace, "complained", "mg-c1"))
    assert "already handled" in again.text
    assert FeedbackEvent.objects.filter(server=relay).count() == 1


def test_failed_permanent_and_temporary(hook, relay, campaign):
    first, second = traces(campaign)
    hook.post(relay, payload(first, "failed", "mg-f1", severity="permanent",
                             **{"delivery-status": {"code": 550,
                                                    "description": "No such mailbox"}}))
    hook.post(relay, payload(second, "failed", "mg-f2", severity="temporary",
                             **{"delivery-status": {"code": 452, "message": "Mailbox full"}}))
    hard = OutgoingRecipient.objects.get(mail=first.mail)
    soft = OutgoingRecipient.objects.get(mail=second.mail)
    assert (hard.failure_type, hard.smtp_code, hard.failure_reason) == (
        FailureType.HARD_BOUNCE, 550, "No such mailbox")
    assert (soft.failure_type, soft.smtp_code) == (FailureType.SOFT_BOUNCE, 452)


def test_a_wrong_key_or_a_stale_timestamp_is_refused(hook, relay, trace):
    wrong = hook.post(relay, payload(trace, "complained", "mg-x", key="key-someone-else"))
    assert wrong.status_code == 403 and "does not match" in wrong.text
    stale = hook.post(relay, payload(trace, "complained", "mg-y",
                                     timestamp=int(time.time()) - 7200))
    assert stale.status_code == 403 and "too old" in stale.text
    assert not Suppression.objects.exists()
    assert not FeedbackEvent.objects.exists()

"""SendGrid's signed Event Webhook, over real HTTP to the live server, signed with a P-256 key
made here (payloads as in SendGrid's Event Webhook reference)."""

from __future__ import annotations

import json
import time

import pytest

from mailroom.campaigns.models import CampaignEvent, Subscription, Suppression
from mailroom.core.models import AuditLog
from mailroom.outgoing.models import FailureType, FeedbackEvent, OutgoingRecipient
from tests.campaigns.test_reputation import traces
from tests.conftest import make_user
from tests.outgoing.feedback.conftest import make_relay, sign_sendgrid


@pytest.fixture
def relay(acme, mia, sendgrid_key):
    return make_relay(acme, mia, "SendGrid", "sendgrid", sendgrid_key[1])


def event(trace, kind: str, event_id: str = "sg-evt-1", **fields) -> dict:
    return {"email": trace.email, "timestamp": int(time.time()), "event": kind,
            "smtp-id": f"<{trace.mail.message_id.strip('<>')}>", "sg_event_id": event_id,
            "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0", **fields}


def send(hook, relay, key, events, *, timestamp=None, tamper=False):
    body = json.dumps(events).encode()
    headers = sign_sendgrid(key[0], body, timestamp or int(time.time()))
    if tamper:
        body = body.replace(b'"spamreport"', b'"delivered" ')
    return hook.post(relay, body, headers)


def complained(trace) -> bool:
    return Suppression.objects.filter(email=trace.email, reason="complained").exists()


def test_a_spam_report_suppresses_the_address_and_a_replay_changes_nothing(
        hook, relay, trace, sendgrid_key):
    response = send(hook, relay, sendgrid_key, [event(trace, "spamreport")])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    assert "complaint recorded" in response.text
    assert complained(trace)
    assert Subscription.objects.get(pk=trace.subscription_id).status == "complained"
    assert CampaignEvent.objects.filter(recipient=trace, kind="complained").count() == 1
    audits = AuditLog.objects.filter(action="outgoing.mail.complaint",
                                     object_id=str(trace.mail_id))
    assert audits.count() == 1
    # SendGrid retries: the same event, signed again a moment later
    again = send(hook, relay, sendgrid_key, [event(trace, "spamreport")],
                 timestamp=int(time.time()) + 1)
    assert again.status_code == 200
    assert "already handled" in again.text
    assert audits.count() == 1
    assert FeedbackEvent.objects.filter(server=relay).count() == 1


def test_bounce_blocked_and_dropped(hook, relay, campaign, sendgrid_key):
    first, second = traces(campaign)
    response = send(hook, relay, sendgrid_key, [
        event(first, "bounce", "sg-b1", type="bounce", status="5.1.1",
              reason="550 5.1.1 The email account that you tried to reach does not exist"),
        event(second, "bounce", "sg-b2", type="blocked", status="4.7.1",
              reason="421 try again later"),
        event(second, "dropped", "sg-d1", reason="Bounced Address"),
    ])
    assert response.status_code == 200, response.text
    hard = OutgoingRecipient.objects.get(mail=first.mail)
    assert (hard.status, hard.failure_type, hard.smtp_code) == (
        "bounced", FailureType.HARD_BOUNCE, 550)
    assert "does not exist" in hard.failure_reason
    soft = OutgoingRecipient.objects.get(mail=second.mail)
    assert (soft.status, soft.failure_type) == ("bounced", FailureType.SOFT_BOUNCE)
    assert Suppression.objects.filter(email=first.email, reason="bounced").exists()
    assert not Suppression.objects.filter(email=second.email).exists()  # soft: no suppression
    dropped = FeedbackEvent.objects.get(server=relay, key__contains="sg-d1")
    assert dropped.outcome == "ignored" and "dropped" in dropped.note
    assert "ignored" in response.text


def test_a_bad_signature_is_refused_and_changes_nothing(hook, relay, trace, sendgrid_key):
    response = send(hook, relay, sendgrid_key, [event(trace, "spamreport")], tamper=True)
    assert response.status_code == 403
    assert "signature does not match" in response.text
    unsigned = hook.post(relay, json.dumps([event(trace, "spamreport")]).encode())
    assert unsigned.status_code == 403
    assert not complained(trace)
    assert not FeedbackEvent.objects.exists()


def test_another_key_is_refused(hook, relay, trace):
    from cryptography.hazmat.primitives.asymmetric import ec

    stranger = (ec.generate_private_key(ec.SECP256R1()), "")
    response = send(hook, relay, stranger, [event(trace, "spamreport")])
    assert response.status_code == 403
    assert not complained(trace)


def test_a_stale_timestamp_is_refused(hook, relay, trace, sendgrid_key):
    response = send(hook, relay, sendgrid_key, [event(trace, "spamreport")],
                    timestamp=int(time.time()) - 3600)
    assert response.status_code == 403
    assert "too old" in response.text
    assert not complained(trace)


def test_another_companys_server_cannot_touch_this_companys_mail(
        hook, globex, trace, sendgrid_key):
    gwen = make_user("gwen", [globex], "Mail Manager")
    theirs = make_relay(globex, gwen, "Their SendGrid", "sendgrid", sendgrid_key[1])
    response = send(hook, theirs, sendgrid_key, [event(trace, "spamreport")])
    assert response.status_code == 200  # providers retry on anything else
    assert "did not send" in response.text
    assert not complained(trace)
    row = FeedbackEvent.objects.get(server=theirs)
    assert row.outcome == "unmatched" and row.mail is None


def test_refusals_are_plain_4xx(hook, relay, settings, live_server, sendgrid_key, trace):
    import httpx

    assert httpx.get(hook.url(relay)).status_code == 405
    nowhere = httpx.post(f"{live_server.url}/hooks/feedback/not-a-token/", content=b"[]")
    assert nowhere.status_code == 404
    assert nowhere.text.strip() == "No feedback webhook at this address."
    settings.MAILROOM_FEEDBACK_MAX_BYTES = 100
    big = send(hook, relay, sendgrid_key, [event(trace, "spamreport")] * 5)
    assert big.status_code == 413
    settings.MAILROOM_FEEDBACK_MAX_BYTES = 2_000_000
    not_json = b"{not json"
    response = hook.post(relay, not_json, sign_sendgrid(sendgrid_key[0], not_json,
                                                        int(time.time())))
    assert response.status_code == 400
    assert not complained(trace)

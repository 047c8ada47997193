"""Amazon SES notifications through SNS, over real HTTP to the live server. A loopback fake of
SNS serves the signing certificate (a self-signed RSA certificate made here) and the
SubscribeURL; messages are signed as the SNS documentation describes (versions 1 and 2), and
the SES events follow the SES notification examples."""

from __future__ import annotations

import json

import pytest

from mailroom.campaigns.models import CampaignEvent, Suppression
from mailroom.core.models import AuditLog
from mailroom.core.tokens import mailroom_id
from mailroom.outgoing.models import FailureType, FeedbackEvent, OutgoingRecipient
from tests.campaigns.test_reputation import traces
from tests.outgoing.feedback.conftest import TOPIC, make_relay

SNS_HEADERS = {"Content-Type": "text/plain; charset=UTF-8"}


@pytest.fixture
def relay(acme, mia):
    return make_relay(acme, mia, "Amazon SES", "ses")


def ses_mail(trace, *, mrid: bool = True) -> dict:
    headers = [{"name": "From", "value": "Acme News <news@acme.test>"},
               {"name": "To", "value": trace.email},
               {"name": "Message-ID", "value": trace.mail.message_id}]
    if mrid:
        headers.append({"name": "X-Mailroom-ID", "value": mailroom_id(trace.mail_id)})
    return {"timestamp": "2026-12-06T13:59:00.000Z", "source": "news@acme.test",
            "messageId": "0000014a-f4d4-4f89-93a1-000000000000", "destination": [trace.email],
            "headersTruncated": False, "headers": headers,
            "commonHeaders": {"from": ["Acme News <news@acme.test>"], "to": [trace.email],
                              "messageId": trace.mail.message_id, "subject": "Spring sale"}}


def complaint(trace, **mail_options) -> dict:
    return {"notificationType": "Complaint",
            "complaint": {"userAgent": "ExampleCorp Feedback Loop (V0.01)",
                          "complainedRecipients": [{"emailAddress": trace.email}],
                          "complaintFeedbackType": "abuse",
                          "timestamp": "2026-12-06T14:00:00.000Z",
                          "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a"},
            "mail": ses_mail(trace, **mail_options)}


def bounce(trace, bounce_type: str) -> dict:
    return {"eventType": "Bounce",  # event publishing names it eventType
            "bounce": {"bounceType": bounce_type, "bounceSubType": "General",
                       "bouncedRecipients": [{
                           "emailAddress": trace.email, "action": "failed", "status": "5.1.1",
                           "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
                       "timestamp": "2026-12-06T14:00:00.000Z",
                       "feedbackId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a"},
            "mail": ses_mail(trace)}


def test_the_subscription_is_confirmed_at_the_fake(hook, relay, fake_sns):
    message = fake_sns.sign({
        "Type": "SubscriptionConfirmation", "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37f", "TopicArn": "arn:aws:sns:eu-west-1:123456789012:ses-feedback",
        "Message": "You have chosen to subscribe to the topic …",
        "SubscribeURL": f"{fake_sns.base}/confirm?Action=ConfirmSubscription&Token=2336412f37f",
        "Timestamp": "2026-12-06T14:00:00.000Z"}, version="1")
    response = hook.post(relay, json.dumps(message).encode(),
                         {**SNS_HEADERS, "x-amz-sns-message-type": "SubscriptionConfirmation"})
    assert response.status_code == 200, response.text
    assert any(hit.startswith("/confirm?Action=ConfirmSubscription&Token=2336412f37f")
               for hit in fake_sns.hits)
    assert AuditLog.objects.filter(action="mailserver.feedback_subscribed",
                                   object_id=str(relay.pk)).exists()


def test_a_complaint_suppresses_and_a_replay_changes_nothing(hook, relay, fake_sns, campaign):
    trace = traces(campaign)[1]
    body = fake_sns.notification(complaint(trace), message_id="sns-c-1")
    response = hook.post(relay, body, SNS_HEADERS)
    assert response.status_code == 200, response.text
    assert Suppression.objects.get(email=trace.email).reason == "complained"
    assert CampaignEvent.objects.filter(recipient=trace, kind="complained").count() == 1
    again = hook.post(relay, body, SNS_HEADERS)
    assert again.status_code == 200 and "already handled" in again.text
    assert AuditLog.objects.filter(action="outgoing.mail.complaint").count() == 1
    assert not Suppression.objects.filter(email=traces(campaign)[0].email).exists()


def test_the_message_id_alone_finds_the_mail(hook, relay, fake_sns, trace):
    body = fake_sns.notification(complaint(trace, mrid=False), message_id="sns-c-2",
                                 version="1")
    assert hook.post(relay, body, SNS_HEADERS).status_code == 200
    assert Suppression.objects.filter(email=trace.email, reason="complained").exists()


def test_permanent_and_transient_bounces(hook, relay, fake_sns, campaign):
    first, second = traces(campaign)
    hook.post(relay, fake_sns.notification(bounce(first, "Permanent"), "sns-b-1"), SNS_HEADERS)
    hook.post(relay, fake_sns.notification(bounce(second, "Transient"), "sns-b-2"), SNS_HEADERS)
    hard = OutgoingRecipient.objects.get(mail=first.mail)
    soft = OutgoingRecipient.objects.get(mail=second.mail)
    assert (hard.status, hard.failure_type, hard.smtp_code) == (
        "bounced", FailureType.HARD_BOUNCE, 550)
    assert hard.failure_reason == "smtp; 550 5.1.1 user unknown"
    assert soft.failure_type == FailureType.SOFT_BOUNCE
    assert Suppression.objects.filter(email=first.email, reason="bounced").exists()


def test_a_bad_signature_is_refused_and_changes_nothing(hook, relay, fake_sns, trace):
    signed = json.loads(fake_sns.notification(complaint(trace), "sns-x"))
    signed["Message"] = signed["Message"].replace("abuse", "fraud")
    response = hook.post(relay, json.dumps(signed).encode(), SNS_HEADERS)
    assert response.status_code == 403 and "does not match" in response.text
    assert not Suppression.objects.exists()
    assert not FeedbackEvent.objects.exists()


def test_a_certificate_outside_amazon_is_never_fetched(hook, relay, fake_sns, trace, settings):
    settings.MAILROOM_SNS_URL_PATTERN = r"^https://sns\.[a-z0-9-]+\.amazonaws\.com/"
    response = hook.post(relay, fake_sns.notification(complaint(trace), "sns-y"), SNS_HEADERS)
    assert response.status_code == 403
    assert "not an Amazon SNS address" in response.text
    assert fake_sns.hits == []
    assert not Suppression.objects.exists()


def test_a_subscribe_url_outside_amazon_is_never_visited(hook, relay, fake_sns):
    message = fake_sns.sign({
        "Type": "SubscriptionConfirmation", "MessageId": "m-2", "Token": "t",
        "TopicArn": "arn:aws:sns:eu-west-1:123456789012:x", "Message": "subscribe",
        "SubscribeURL": "http://169.254.169.254/latest/meta-data/",
        "Timestamp": "2026-12-06T14:00:00.000Z"})
    response = hook.post(relay, json.dumps(message).encode(), SNS_HEADERS)
    assert response.status_code == 403
    assert not any("meta-data" in hit for hit in fake_sns.hits)


def _subscription(fake_sns, topic: str, token: str) -> bytes:
    return json.dumps(fake_sns.sign({
        "Type": "SubscriptionConfirmation", "MessageId": f"m-{token}", "Token": token,
        "TopicArn": topic, "Message": "You have chosen to subscribe to the topic …",
        "SubscribeURL": f"{fake_sns.base}/confirm?Action=ConfirmSubscription&Token={token}",
        "Timestamp": "2026-12-06T14:00:00.000Z"})).encode()


OTHER_TOPIC = "arn:aws:sns:us-east-1:999999999999:not-yours"


def test_the_confirmed_topic_is_the_only_one_heard(hook, relay, fake_sns, trace):
    """Amazon signs every SNS topic's messages, anyone's: once a subscription is confirmed the
    server takes that topic's notifications only. Another AWS account that learnt the
    address can neither subscribe nor report a bounce or a complaint."""
    assert hook.post(relay, _subscription(fake_sns, TOPIC, "t1"), SNS_HEADERS).status_code == 200
    relay.refresh_from_db()
    assert relay.feedback_topic == TOPIC

    forged = hook.post(relay, fake_sns.notification(complaint(trace), "sns-o-1",
                                                    topic=OTHER_TOPIC), SNS_HEADERS)
    assert forged.status_code == 403 and TOPIC in forged.text and OTHER_TOPIC in forged.text
    assert not Suppression.objects.exists() and not FeedbackEvent.objects.exists()

    hits = len(fake_sns.hits)
    again = hook.post(relay, _subscription(fake_sns, OTHER_TOPIC, "t2"), SNS_HEADERS)
    assert again.status_code == 403
    assert not any("Token=t2" in hit for hit in fake_sns.hits[hits:])  # never confirmed

    heard = hook.post(relay, fake_sns.notification(complaint(trace), "sns-o-2"), SNS_HEADERS)
    assert heard.status_code == 200
    assert Suppression.objects.filter(email=trace.email, reason="complained").exists()


def test_a_server_subscribed_before_topics_were_kept_keeps_its_first_notifications(
        hook, relay, fake_sns, trace):
    assert relay.feedback_topic == ""
    assert hook.post(relay, fake_sns.notification(complaint(trace), "sns-p-1"),
                     SNS_HEADERS).status_code == 200
    relay.refresh_from_db()
    assert relay.feedback_topic == TOPIC
    assert AuditLog.objects.filter(action="mailserver.feedback_topic_pinned",
                                   object_id=str(relay.pk)).exists()
    assert hook.post(relay, fake_sns.notification(complaint(trace), "sns-p-2",
                                                  topic=OTHER_TOPIC),
                     SNS_HEADERS).status_code == 403

"""/api/v1/lists and /api/v1/campaigns: idempotent subscribe/unsubscribe with consent,
campaigns created, tested, scheduled, paused and measured; other companies see 404."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from mailroom.campaigns.models import Campaign, Subscription
from mailroom.core.services import create_api_key
from mailroom.outgoing.models import OutgoingMail
from mailroom.routing.models import AliasDomain

pytestmark = pytest.mark.django_db


def auth(user) -> dict:
    _key, secret = create_api_key(user, actor=user)
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def post(client, url, user, body=None):
    return client.post(url, json.dumps(body or {}), content_type="application/json",
                       **auth(user))


def test_subscribe_is_idempotent_and_keeps_the_consent(client, mia, newsletter):
    url = f"/api/v1/lists/{newsletter.pk}/subscribe"
    body = {"email": "Ada@Client.example", "name": "Ada", "consent_how": "Footer form",
            "consent_ip": "192.0.2.7"}
    first = post(client, url, mia, body)
    assert first.status_code == 201, first.content
    data = first.json()
    assert data["email"] == "ada@client.example" and data["status"] == "subscribed"
    assert data["consent_how"] == "Footer form" and data["consent_ip"] == "192.0.2.7"
    again = post(client, url, mia, body)
    assert again.status_code == 200 and again.json()["id"] == data["id"]
    assert Subscription.objects.count() == 1


def test_unsubscribe_is_idempotent_and_only_new_consent_brings_them_back(client, mia,
                                                                          newsletter):
    base = f"/api/v1/lists/{newsletter.pk}"
    post(client, f"{base}/subscribe", mia, {"email": "bo@client.example", "consent_how": "x"})
    for _ in range(2):
        left = post(client, f"{base}/unsubscribe", mia, {"email": "bo@client.example"})
        assert left.status_code == 200 and left.json()["status"] == "unsubscribed"
    refused = post(client, f"{base}/subscribe", mia,
                   {"email": "bo@client.example", "consent_how": "x"})
    assert refused.status_code == 409
    assert "own new consent" in refused.json()["detail"][0]["message"]
    back = post(client, f"{base}/subscribe", mia,
                {"email": "bo@client.example", "consent_how": "Asked again", "resubscribe": True})
    assert back.status_code == 201 and back.json()["status"] == "subscribed"
    missing = post(client, f"{base}/unsubscribe", mia, {"email": "nobody@client.example"})
    assert missing.status_code == 422


def test_a_bad_address_is_a_field_error(client, mia, newsletter):
    bad = post(client, f"/api/v1/lists/{newsletter.pk}/subscribe", mia,
               {"email": "not an address", "consent_how": "x"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "email"


def test_other_companies_lists_are_404_and_users_cannot_write(client, bob, gina, newsletter):
    assert client.get(f"/api/v1/lists/{newsletter.pk}", **auth(gina)).status_code == 404
    assert client.get(f"/api/v1/lists/{newsletter.pk}", **auth(bob)).status_code == 200
    refused = post(client, f"/api/v1/lists/{newsletter.pk}/subscribe", bob,
                   {"email": "x@client.example", "consent_how": "x"})
    assert refused.status_code == 403


def test_a_campaign_through_the_api(client, acme, mia, gina, newsletter):
    AliasDomain.objects.create(company=acme, name="news.acme.example")
    created = post(client, "/api/v1/campaigns", mia, {
        "name": "Spring", "subject": "Hello {{ contact.name }}",
        "email_from": "hello@news.acme.example", "body_html": "<p>Spring is here</p>",
        "list_ids": [newsletter.pk]})
    assert created.status_code == 201, created.content
    campaign = created.json()
    assert campaign["state"] == "draft" and campaign["list_ids"] == [newsletter.pk]
    url = f"/api/v1/campaigns/{campaign['id']}"
    assert client.get(url, **auth(gina)).status_code == 404

    tested = post(client, f"{url}/test", mia, {"addresses": ["me@acme.example"]})
    assert tested.status_code == 200 and tested.json() == {"queued": 1}
    test_mail = OutgoingMail.objects.get()
    assert test_mail.subject.startswith("[Test] Hello")

    past = post(client, f"{url}/schedule", mia,
                {"at": (timezone.now() - timedelta(hours=1)).isoformat()})
    assert past.status_code == 422 and past.json()["detail"][0]["field"] == "at"
    scheduled = post(client, f"{url}/schedule", mia,
                     {"at": (timezone.now() + timedelta(hours=1)).isoformat()})
    assert scheduled.status_code == 200 and scheduled.json()["state"] == "scheduled"
    sent = post(client, f"{url}/send", mia)
    assert sent.json()["state"] == "preparing"
    assert post(client, f"{url}/pause", mia).json()["state"] == "paused"
    assert post(client, f"{url}/cancel", mia).json()["state"] == "cancelled"
    again = post(client, f"{url}/resume", mia)
    assert again.status_code == 422 and "cannot be resumed" in again.content.decode()
    stats = client.get(f"{url}/stats", **auth(mia)).json()
    assert set(stats["figures"]) >= {"targeted", "sent", "opened", "clicked", "complained"}


def test_a_from_outside_the_sending_domains_is_a_field_error(client, mia):
    refused = post(client, "/api/v1/campaigns", mia, {
        "name": "x", "subject": "x", "email_from": "me@elsewhere.example"})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["field"] == "email_from"
    assert not Campaign.objects.exists()


def test_an_ab_test_through_the_api(client, acme, mia, newsletter):
    AliasDomain.objects.create(company=acme, name="news.acme.example")
    created = post(client, "/api/v1/campaigns", mia, {
        "name": "Spring", "subject": "Hello", "email_from": "hello@news.acme.example",
        "body_html": "<p>Hi</p>", "list_ids": [newsletter.pk], "ab_test": True,
        "subject_b": "Hello there", "ab_sample": 30, "ab_metric": "clicked"})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["ab_test"] and body["ab_sample"] == 30 and body["ab_winner"] == ""
    refused = post(client, "/api/v1/campaigns", mia, {
        "name": "x", "subject": "x", "email_from": "hello@news.acme.example",
        "ab_test": True, "ab_hours": 0, "subject_b": "y"})
    assert refused.status_code == 422 and refused.json()["detail"][0]["field"] == "ab_hours"

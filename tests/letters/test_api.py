"""/api/v1/letters: post a record, read its timeline, cancel; other companies see 404."""

from __future__ import annotations

import json

from mailroom.core.services import create_api_key
from mailroom.letters.models import Letter


def headers(user) -> dict:
    _key, secret = create_api_key(user, actor=user)
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def test_create_read_and_cancel_a_letter(client, bob, mia, charlie, invoice, customer):
    created = client.post("/api/v1/letters", json.dumps(
        {"record_type": "invoicing.invoice", "record_id": invoice.pk, "postage": "registered"}),
        content_type="application/json", **headers(bob))
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["state"] == "queued" and body["postage"] == "registered"
    assert body["address_lines"][1] == "12 Rue de la Paix"
    assert [e["state"] for e in body["events"]] == ["queued"]

    url = f"/api/v1/letters/{body['id']}"
    assert client.get(url, **headers(charlie)).status_code == 404
    assert client.post(f"{url}/cancel", **headers(bob)).status_code == 403
    cancelled = client.post(f"{url}/cancel", **headers(mia))
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"


def test_a_missing_zip_is_a_field_error(client, bob, invoice, customer):
    customer.zip = ""
    customer.save()
    refused = client.post("/api/v1/letters", json.dumps(
        {"record_type": "invoicing.invoice", "record_id": invoice.pk}),
        content_type="application/json", **headers(bob))
    assert refused.status_code == 422
    assert "postcode (ZIP)" in refused.content.decode()
    assert not Letter.objects.exists()


def test_the_same_idempotency_key_gives_the_same_letter(client, bob, invoice):
    auth = headers(bob)
    body = json.dumps({"record_type": "invoicing.invoice", "record_id": invoice.pk})
    first = client.post("/api/v1/letters", body, content_type="application/json",
                        HTTP_IDEMPOTENCY_KEY="reminder-2026-12-01", **auth)
    again = client.post("/api/v1/letters", body, content_type="application/json",
                        HTTP_IDEMPOTENCY_KEY="reminder-2026-12-01", **auth)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Letter.objects.count() == 1

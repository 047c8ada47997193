"""The chatter through the API: reading a record's messages with tracking values and
attachment names, posting comments and notes."""

import io

import pytest

from mailroom.chatter import services
from mailroom.chatter.models import Message, Notification
from tests.api.support import api_as, fields_named  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def test_list_shows_tracking_and_attachments(lead, bob, api_as):  # noqa: F811
    api = api_as(bob)
    api.patch(f"/api/v1/leads/{lead.pk}", {"stage": "won"})
    attachment = services.store_attachment(lead, actor=bob, name="offer.pdf",
                                           stream=io.BytesIO(b"%PDF-1.4"))
    services.post_message(lead, actor=bob, body_text="See the offer", attachments=[attachment])

    body = api.get(f"/api/v1/leads/{lead.pk}/messages").json()
    assert body["count"] == 3
    newest, tracked, created = body["items"]
    assert newest["body_text"] == "See the offer"
    assert newest["attachments"] == [{"id": attachment.pk, "name": "offer.pdf",
                                      "mimetype": "application/pdf", "size": 8}]
    assert tracked["message_type"] == "system"
    assert tracked["tracking"] == [{"field": "stage", "field_label": "Stage",
                                    "old_value": "New", "new_value": "Won"}]
    assert created["body_text"] == "Lead created"
    assert created["author_user_id"] == bob.pk

    page = api.get(f"/api/v1/leads/{lead.pk}/messages", {"limit": 1, "offset": 1}).json()
    assert [m["id"] for m in page["items"]] == [tracked["id"]]


def test_post_comment_notifies_followers(lead, bob, customer, api_as):  # noqa: F811
    services.follow(lead, customer, actor=bob)
    response = api_as(bob).post(f"/api/v1/leads/{lead.pk}/messages",
                                {"body": "Hello Ada,\n\nthe offer is ready."})
    assert response.status_code == 201, response.content
    message = response.json()
    assert message["message_type"] == "comment" and message["direction"] == "out"
    assert message["body_html"] == "<p>Hello Ada,</p><p>the offer is ready.</p>"
    assert message["author_name"] == "Bob"
    assert Notification.objects.filter(message_id=message["id"], partner=customer).exists()


def test_post_note_stays_internal_and_html_is_sanitized(lead, bob, customer,
                                                        api_as):  # noqa: F811
    services.follow(lead, customer, actor=bob)
    response = api_as(bob).post(f"/api/v1/leads/{lead.pk}/messages", {
        "body": '<p onclick="x()">Call <b>back</b><script>alert(1)</script></p>',
        "message_type": "note", "subject": "Internal",
    })
    assert response.status_code == 201
    message = response.json()
    assert message["message_type"] == "note" and message["subject"] == "Internal"
    assert "<b>back</b>" in message["body_html"]
    assert "script" not in message["body_html"] and "onclick" not in message["body_html"]
    assert not Notification.objects.filter(message_id=message["id"]).exists()


def test_text_that_looks_like_a_comparison_stays_text(lead, bob, api_as):  # noqa: F811
    response = api_as(bob).post(f"/api/v1/leads/{lead.pk}/messages", {"body": "1 < 2 > 0"})
    assert response.json()["body_html"] == "<p>1 &lt; 2 &gt; 0</p>"


@pytest.mark.parametrize("payload, field", [
    ({"body": ""}, "body"),
    ({"body": "<script>x</script>"}, "body"),
    ({}, "body"),
    ({"body": "x", "message_type": "email"}, "message_type"),
    ({"body": "x", "message_type": "system"}, "message_type"),
    ({"body": "x", "subject": "a\r\nBcc: x@y.test"}, "subject"),
    ({"body": "x\x00"}, "body"),
    ({"body": "x", "author_name": "someone else"}, "author_name"),
])
def test_invalid_messages_name_the_field(lead, bob, payload, field, api_as):  # noqa: F811
    before = Message.objects.count()
    response = api_as(bob).post(f"/api/v1/leads/{lead.pk}/messages", payload)
    assert response.status_code == 422, response.content
    assert fields_named(response) == [field]
    assert Message.objects.count() == before


def test_partners_have_a_chatter_too(customer, bob, api_as):  # noqa: F811
    api = api_as(bob)
    assert api.post(f"/api/v1/partners/{customer.pk}/messages",
                    {"body": "Met at the fair", "message_type": "note"}).status_code == 201
    assert api.get(f"/api/v1/partners/{customer.pk}/messages").json()["count"] == 1


def test_messages_of_missing_record_are_404(bob, api_as):  # noqa: F811
    api = api_as(bob)
    assert api.get("/api/v1/leads/999999/messages").status_code == 404
    assert api.post("/api/v1/leads/999999/messages", {"body": "x"}).status_code == 404

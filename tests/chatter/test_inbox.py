"""The inbox and its bell: notifications of followed records and mentions, failed mail of
mine, mark read/unread, only one's own, counted in the header on every page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mailroom.chatter.inbox import inbox_count
from mailroom.chatter.models import Notification
from mailroom.chatter.services import follow, log_note, post_message
from mailroom.contacts.services import partner_for_user
from mailroom.outgoing.models import OutgoingMail
from mailroom.outgoing.services import enqueue

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_follows(lead, alice, bob, acme):
    alice.notify_by = "inbox"
    alice.save()
    follow(lead, partner_for_user(alice, acme), actor=bob)
    return lead


def test_a_message_on_a_followed_record_lands_in_the_inbox_and_the_bell(
        alice_follows, alice, bob, client_for):
    post_message(alice_follows, actor=bob, body_text="The customer signed.")
    log_note(alice_follows, actor=bob, body_text="@alice please invoice")
    assert inbox_count(alice) == 2 and inbox_count(bob) == 0
    client = client_for(alice)
    page = client.get(reverse("chatter:inbox")).content.decode()
    assert "Bob wrote" in page and "The customer signed." in page
    assert "Bob mentioned you" in page and "Lead: Big deal" in page
    bell = client.get(reverse("chatter:inbox_bell")).content.decode()
    assert 'data-count="2"' in bell
    home = client.get("/").content.decode()
    assert 'id="inbox-bell"' in home and 'data-count="2"' in home


def test_mark_read_and_unread_and_all(alice_follows, alice, bob, client_for):
    first = post_message(alice_follows, actor=bob, body_text="One")
    post_message(alice_follows, actor=bob, body_text="Two")
    notification = Notification.objects.get(message=first)
    client = client_for(alice)
    url = reverse("chatter:inbox_mark")
    response = client.post(url, {"source": "notifications", "key": notification.pk, "read": "1"})
    assert response.status_code == 200 and response["HX-Trigger"] == "inbox-changed"
    assert inbox_count(alice) == 1
    client.post(url, {"source": "notifications", "key": notification.pk, "read": "0"})
    assert inbox_count(alice) == 2
    unread_page = client.get(reverse("chatter:inbox"), {"show": "unread"}).content.decode()
    assert "One" in unread_page and "Two" in unread_page
    client.post(url, {"source": "notifications", "key": "all", "read": "1"})
    assert inbox_count(alice) == 0
    assert "Nothing unread" in client.get(reverse("chatter:inbox"),
                                          {"show": "unread"}).content.decode()


def test_nobody_marks_another_users_notifications(alice_follows, alice, bob, client_for):
    message = post_message(alice_follows, actor=bob, body_text="Private to alice")
    notification = Notification.objects.get(message=message)
    client_for(bob).post(reverse("chatter:inbox_mark"),
                         {"source": "notifications", "key": notification.pk, "read": "1"})
    notification.refresh_from_db()
    assert not notification.is_read
    assert "Private to alice" not in client_for(bob).get(reverse("chatter:inbox")).content.decode()


def test_bad_marks_are_a_clear_400(alice, client_for):
    client = client_for(alice)
    for data in ({"source": "nope", "key": "1"}, {"source": "failed_mail", "key": "1"},
                 {"source": "notifications"}):
        response = client.post(reverse("chatter:inbox_mark"), data)
        assert response.status_code == 400 and b"cannot be marked" in response.content
    assert client.get(reverse("chatter:inbox_mark")).status_code == 405


def test_my_failed_mail_waits_in_my_inbox_until_dealt_with(acme, bob, alice, customer,
                                                           client_for):
    customer.is_blacklisted = True
    customer.save()
    mail = enqueue(company=acme, actor=bob, email_from="bob@acme.example", to=[customer],
                   subject="Your invoice", text="Attached.")
    assert mail.state == OutgoingMail.State.EXCEPTION
    assert inbox_count(bob) == 1 and inbox_count(alice) == 0
    page = client_for(bob).get(reverse("chatter:inbox")).content.decode()
    assert "Not sent: Your invoice" in page and "blacklisted" in page
    OutgoingMail.objects.filter(pk=mail.pk).update(state=OutgoingMail.State.CANCELLED)
    assert inbox_count(bob) == 0


def test_a_user_who_left_the_company_no_longer_sees_its_notifications(
        alice_follows, alice, bob, globex):
    post_message(alice_follows, actor=bob, body_text="Hello")
    assert inbox_count(alice) == 1
    alice.companies.set([globex])
    alice.forget_companies()
    assert inbox_count(alice) == 0


def test_the_inbox_needs_a_signed_in_office_user(client):
    response = client.get(reverse("chatter:inbox"))
    assert response.status_code == 302 and "login" in response["Location"]

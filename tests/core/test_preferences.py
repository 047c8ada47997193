"""My preferences: each office user sets their own name, language, time zone and how they are
notified; nobody else's, audited, with a red line for bad input."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from mailroom.core import services
from mailroom.core.models import AuditLog

pytestmark = pytest.mark.django_db


def test_a_user_chooses_inbox_only_and_it_is_audited(bob, client_for):
    client = client_for(bob)
    page = client.get(reverse("core:preferences"))
    assert page.status_code == 200 and b"In Mailroom only" in page.content
    response = client.post(reverse("core:preferences"), {
        "first_name": "Bob", "last_name": "Builder", "language": "fr_FR",
        "timezone": "Europe/Paris", "notify_by": "inbox"})
    assert response.status_code == 302
    bob.refresh_from_db()
    assert (bob.notify_by, bob.language, bob.last_name) == ("inbox", "fr_FR", "Builder")
    row = AuditLog.objects.get(action="user.preferences")
    assert row.after["notify_by"] == "inbox" and row.before["notify_by"] == "email"


def test_bad_input_is_a_red_line(bob, client_for):
    response = client_for(bob).post(reverse("core:preferences"), {
        "first_name": "Bob", "language": "en_US", "timezone": "Mars/Olympus",
        "notify_by": "pigeon"})
    assert response.status_code == 422
    assert b'role="alert"' in response.content
    bob.refresh_from_db()
    assert bob.notify_by == "email"


def test_nobody_changes_someone_elses_preferences(bob, alice):
    with pytest.raises(PermissionDenied):
        services.save_preferences(bob, actor=alice, notify_by="inbox")


def test_the_account_menu_links_to_preferences_and_inbox(bob, client_for):
    home = client_for(bob).get("/").content.decode()
    assert reverse("core:preferences") in home and reverse("chatter:inbox") in home

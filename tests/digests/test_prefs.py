""""My digests" in My preferences: a user sees the digests of their current company and
subscribes or unsubscribes themselves; an administrator's save does not undo it, and nobody
subscribes to another company's digest."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mailroom.core.models import AuditLog
from mailroom.digests import prefs
from mailroom.digests.models import Digest, DigestSubscription
from mailroom.digests.services import recipients, save_digest
from tests.digests.conftest import make_digest

pytestmark = pytest.mark.django_db
PREFS = reverse("core:preferences")


@pytest.fixture(autouse=True)
def _registered():
    prefs.register_preferences()  # DigestsConfig.ready() does it; idempotent


def toggle(client, digest, subscribed: bool):
    return client.post(PREFS, {"section": "digests", "digest": digest.pk,
                               "subscribed": "1" if subscribed else "0"}, follow=True)


def test_the_page_lists_the_current_companys_digests_with_a_toggle(acme, globex, alice, bob,
                                                                   client_for):
    mine = make_digest(acme, recipients=[bob])
    other = make_digest(acme, name="Monthly numbers", recipients=[alice])
    elsewhere = make_digest(globex, name="Globex daily")
    html = client_for(bob).get(PREFS).content.decode()
    assert "My digests" in html
    assert f'id="my-digest-{mine.pk}"' in html and f'id="my-digest-{other.pk}"' in html
    assert "Globex daily" not in html and f"my-digest-{elsewhere.pk}" not in html
    assert "Unsubscribe from Weekly pulse" in html and "Subscribe to Monthly numbers" in html


def test_unsubscribing_myself_sticks_when_an_admin_saves(acme, alice, bob, client_for):
    digest = make_digest(acme, recipients=[alice, bob])
    response = toggle(client_for(bob), digest, False)
    assert "You no longer receive “Weekly pulse”." in response.content.decode()
    row = DigestSubscription.objects.get(digest=digest, user=bob)
    assert not row.subscribed and row.changed_by == DigestSubscription.Source.SELF
    assert AuditLog.objects.filter(action="digest.unsubscribe", actor=bob).exists()
    digest = Digest.objects.get(pk=digest.pk)
    save_digest(digest, actor=alice, recipients=[alice, bob])
    assert list(recipients(digest)) == [alice]


def test_subscribing_to_a_digest_i_did_not_get(acme, alice, bob, client_for):
    digest = make_digest(acme, recipients=[alice])
    toggle(client_for(bob), digest, True)
    assert set(recipients(digest)) == {alice, bob}


def test_nobody_subscribes_to_another_companys_digest(acme, globex, bob, client_for):
    digest = make_digest(globex, name="Globex daily")
    response = toggle(client_for(bob), digest, True)
    assert "No such digest in your companies." in response.content.decode()
    assert not DigestSubscription.objects.filter(user=bob).exists()


def test_without_digests_the_section_is_hidden(acme, bob, client_for):
    page = client_for(bob).get(PREFS)
    assert page.status_code == 200 and "My digests" not in page.content.decode()


@pytest.mark.parametrize("value", ["abc", str(2**63), "\u00b2", "-1", "9" * 5000])
def test_a_hostile_digest_id_is_a_message_not_an_error(acme, bob, client_for, value):
    response = client_for(bob).post(PREFS, {"section": "digests", "digest": value,
                                            "subscribed": "1"}, follow=True)
    assert response.status_code == 200
    assert "No such digest in your companies." in response.content.decode()

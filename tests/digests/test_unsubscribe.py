"""The signed links of a digest email: unsubscribe (the page and RFC 8058 one-click) and
"send it daily again" after a slow-down. No login: the token is the key."""

from __future__ import annotations

import re
from datetime import time
from urllib.parse import urlparse

import pytest
from django.test import Client

from mailroom.core.models import AuditLog
from mailroom.digests import unsubscribe
from mailroom.digests.models import Digest, DigestSubscription, Periodicity
from mailroom.digests.services import recipients
from tests.digests.conftest import make_digest


@pytest.fixture
def digests(acme, domain, alice, bob):
    weekly = make_digest(acme, actor=alice, recipients=[alice, bob])
    monthly = make_digest(acme, actor=alice, recipients=[alice, bob], name="Monthly report",
                          periodicity="monthly")
    return weekly, monthly


def path_of(url: str) -> str:
    return urlparse(url).path


@pytest.fixture
def client():
    return Client(enforce_csrf_checks=True)  # as a browser or a mail client would


def subscribed(digest, user) -> bool:
    return recipients(digest).filter(pk=user.pk).exists()


def test_get_only_asks(client, digests, bob):
    weekly, _ = digests
    response = client.get(path_of(unsubscribe.unsubscribe_url(weekly, bob)))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Stop sending you this digest?" in page and "Weekly pulse" in page
    assert 'id="digest-unsubscribe"' in page
    assert subscribed(weekly, bob)  # a link scanner that follows the link changes nothing


def test_the_page_button_unsubscribes_without_login_and_only_that_digest(client, digests,
                                                                          alice, bob):
    weekly, monthly = digests
    url = path_of(unsubscribe.unsubscribe_url(weekly, bob))
    response = client.post(url, {"action": "unsubscribe"})
    assert response.status_code == 200
    assert "You will no longer get Weekly pulse" in response.content.decode()
    assert 'id="digest-subscribe"' in response.content.decode()
    assert not subscribed(weekly, bob)
    assert subscribed(monthly, bob) and subscribed(weekly, alice)
    row = DigestSubscription.objects.get(digest=weekly, user=bob)
    assert row.changed_by == DigestSubscription.Source.UNSUBSCRIBE_LINK
    assert AuditLog.objects.filter(action="digest.unsubscribe").count() == 1
    # the page after: already unsubscribed, offers to come back
    again = client.get(url).content.decode()
    assert "You no longer get Weekly pulse" in again and 'id="digest-unsubscribe"' not in again


def test_one_click_post_from_a_mail_client(client, digests, bob):
    """RFC 8058: a POST with body List-Unsubscribe=One-Click, no cookie, no CSRF token."""
    weekly, monthly = digests
    response = client.post(path_of(unsubscribe.unsubscribe_url(weekly, bob)),
                           data="List-Unsubscribe=One-Click",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert not subscribed(weekly, bob) and subscribed(monthly, bob)


def test_resubscribe_from_the_result_page(client, digests, bob):
    weekly, _ = digests
    url = path_of(unsubscribe.unsubscribe_url(weekly, bob))
    client.post(url, {"action": "unsubscribe"})
    response = client.post(url, {"action": "subscribe"})
    assert response.status_code == 200 and "You will get Weekly pulse again" in \
        response.content.decode()
    assert subscribed(weekly, bob)


def test_an_admin_saving_the_digest_does_not_undo_an_unsubscribe(client, digests, alice, bob):
    from mailroom.digests.services import save_digest

    weekly, _ = digests
    client.post(path_of(unsubscribe.unsubscribe_url(weekly, bob)))
    save_digest(Digest.objects.get(pk=weekly.pk), actor=alice, recipients=[alice, bob])
    assert not subscribed(weekly, bob)


@pytest.mark.parametrize("spoil", [
    lambda token: token[:-3],  # cut
    lambda token: token.replace(":", ".", 1),
    lambda token: "eyJkIjoxLCJ1Ijo5OX0" + token[token.index(":"):],  # another user, same sig
    lambda token: "not-a-token",
])
def test_a_forged_or_cut_token_is_refused(client, digests, bob, spoil):
    weekly, _ = digests
    token = unsubscribe.unsubscribe_token(weekly, bob)
    for method in (client.get, client.post):
        response = method(f"/digests/unsubscribe/{spoil(token)}/")
        assert response.status_code == 400
        assert "This link is not valid" in response.content.decode()
    assert subscribed(weekly, bob)


def test_an_unsubscribe_token_does_not_restore_and_the_reverse(client, digests, bob):
    weekly, _ = digests
    assert client.get(f"/digests/restore/{unsubscribe.unsubscribe_token(weekly, bob)}/"
                      ).status_code == 400
    assert client.post(f"/digests/unsubscribe/{unsubscribe.restore_token(weekly, bob)}/"
                       ).status_code == 400
    assert subscribed(weekly, bob)


def test_a_user_who_left_the_company_cannot_use_the_link(client, digests, bob):
    weekly, _ = digests
    url = path_of(unsubscribe.unsubscribe_url(weekly, bob))
    bob.companies.clear()
    response = client.post(url)
    assert response.status_code == 410 and "no longer works" in response.content.decode()


def test_the_restore_link_puts_the_chosen_periodicity_back(client, acme, domain, alice, bob):
    digest = make_digest(acme, actor=alice, recipients=[alice, bob], periodicity="weekly",
                         send_time=time(8, 0))
    Digest.objects.filter(pk=digest.pk).update(slowed_from=Periodicity.DAILY,
                                               slowdown_notice=True)
    url = path_of(unsubscribe.restore_url(digest, bob))
    page = client.get(url).content.decode()
    assert "Send it daily again" in page
    assert Digest.objects.get(pk=digest.pk).periodicity == "weekly"  # GET changes nothing
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(url, {"csrfmiddlewaretoken": csrf})
    assert response.status_code == 200
    assert "This digest is sent daily again" in response.content.decode()
    digest.refresh_from_db()
    assert digest.periodicity == "daily" and digest.slowed_from == ""
    # a second click changes nothing and says so
    assert "already sent daily" in client.post(url, {"csrfmiddlewaretoken": csrf}
                                               ).content.decode()

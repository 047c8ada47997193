"""The signed links of a tip: the click redirect (counts, refuses forged tokens, no open
redirect) and "Was this useful?" (GET records nothing, POST records, a changed vote moves)."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import urlsplit

import pytest
from django.core import signing

from mailroom.digests import tip_links, tips
from mailroom.digests.models import Tip, TipView


@pytest.fixture
def tip(db):
    Tip.objects.all().delete()
    return Tip.objects.create(title="Sign with DKIM",
                              body='<p>Open <a href="/outgoing/dkimkey/">DKIM keys</a>.</p>')


@pytest.fixture
def base_url(settings):
    settings.BASE_URL = "https://mail.example.com"
    return settings.BASE_URL


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def click_link(tip, user, company) -> str:
    body = tips.render(tip, user, company)[1]
    return unescape(re.search(r'href="([^"]+)"', body)[1])


# --- clicks --------------------------------------------------------------------------------------

def test_click_counts_and_redirects_to_the_signed_url(client, tip, bob, acme, base_url):
    url = click_link(tip, bob, acme)
    response = client.get(_path(url))
    assert response.status_code == 302
    assert response["Location"] == "https://mail.example.com/outgoing/dkimkey/"
    client.get(_path(url))
    tip.refresh_from_db()
    assert tip.click_count == 2
    assert TipView.objects.get(tip=tip, user=bob).clicks == 2


def test_click_does_not_count_as_a_show(client, tip, bob, acme, base_url):
    client.get(_path(click_link(tip, bob, acme)))
    assert tips.pick(bob, acme) == tip  # still never shown: still the next tip


def test_a_changed_url_or_forged_token_is_refused(client, tip, bob, acme, base_url):
    url = _path(click_link(tip, bob, acme))
    token = url.split("/")[-2]
    payload, stamp, signature = token.rsplit(":", 2)
    evil = signing.dumps({"t": tip.pk, "u": bob.pk, "l": "https://evil.example/"},
                         salt=tip_links.CLICK_SALT, key="not-the-secret")
    forged_payload = evil.rsplit(":", 2)[0]
    for bad in (f"{forged_payload}:{stamp}:{signature}", evil, token[:-2] + "xx",
                signing.dumps({"t": tip.pk, "u": bob.pk, "l": "https://evil.example/"},
                              salt=tip_links.VOTE_SALT)):
        response = client.get(f"/digests/tips/click/{bad}/")
        assert response.status_code == 400
        assert "This link is not valid" in response.content.decode()
    tip.refresh_from_db()
    assert tip.click_count == 0


def test_only_web_urls_are_redirected_to(tip, bob):
    token = signing.dumps({"t": tip.pk, "u": bob.pk, "l": "javascript:alert(1)"},
                          salt=tip_links.CLICK_SALT)
    with pytest.raises(tip_links.LinkError):
        tip_links.read_click(token)


# --- votes ---------------------------------------------------------------------------------------

def test_vote_get_shows_the_answer_and_records_nothing(client, tip, bob, base_url):
    links = tip_links.links(tip, bob)
    assert links["yes"].startswith("https://mail.example.com/digests/tips/useful/")
    response = client.get(_path(links["no"]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Nothing is recorded until you press a button" in page
    no_button = re.search(r'<button[^>]*id="tip-no"[^>]*>', page)[0]
    assert "bg-primary-600" in no_button  # the answer clicked in the email is pre-selected
    assert not TipView.objects.exists()
    tip.refresh_from_db()
    assert (tip.useful_yes, tip.useful_no) == (0, 0)


def test_vote_post_records_once_and_a_changed_vote_moves(client, tip, bob, alice, base_url):
    bob_url = _path(tip_links.links(tip, bob)["yes"])
    alice_url = _path(tip_links.links(tip, alice)["yes"])
    response = client.post(bob_url, {"answer": "yes"})
    assert response.status_code == 200
    assert "Thank you" in response.content.decode()
    client.post(bob_url, {"answer": "yes"})  # twice: still one vote
    client.post(alice_url, {"answer": "yes"})
    tip.refresh_from_db()
    assert (tip.useful_yes, tip.useful_no) == (2, 0)
    client.post(bob_url, {"answer": "no"})  # bob changes his mind
    tip.refresh_from_db()
    assert (tip.useful_yes, tip.useful_no) == (1, 1)
    assert TipView.objects.get(tip=tip, user=bob).vote == "no"


def test_vote_with_a_bad_answer_or_token(client, tip, bob, base_url):
    url = _path(tip_links.links(tip, bob)["yes"])
    assert client.post(url, {"answer": "maybe"}).status_code == 400
    response = client.get("/digests/tips/useful/garbage/?answer=yes")
    assert response.status_code == 400
    assert "This link is not valid" in response.content.decode()
    tip.refresh_from_db()
    assert (tip.useful_yes, tip.useful_no) == (0, 0)


def test_vote_for_a_deleted_tip(client, tip, bob, base_url):
    url = _path(tip_links.links(tip, bob)["yes"])
    tip.delete()
    assert client.post(url, {"answer": "yes"}).status_code == 410

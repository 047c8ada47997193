"""Instrumenting a campaign's body: static links become tracked ones, everything else stays
byte for byte, and the open pixel is added once."""

from __future__ import annotations

import re
import threading
from itertools import count

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailroom.campaigns.campaign_models import Campaign, CampaignLink, CampaignRecipient
from mailroom.campaigns.tracking import PIXEL, instrument
from mailroom.outgoing.models import OutgoingMail
from tests.outgoing.markers import IN_MEMORY_SQLITE

_ids = count(1)


def make_campaign(company, **fields) -> Campaign:
    return Campaign.objects.create(company=company, name=fields.pop("name", "Spring news"),
                                   subject="Spring", email_from="news@acme.example", **fields)


def make_trace(campaign, email=None, *, sent_at=None, **fields) -> CampaignRecipient:
    """A trace whose outbox mail was sent at `sent_at` (no mail when None)."""
    mail = None
    if sent_at is not None:
        mail = OutgoingMail.objects.create(
            company=campaign.company, state=OutgoingMail.State.SENT, sent_at=sent_at,
            message_id=f"<{next(_ids)}@tracking.test>", email_from=campaign.email_from)
    fields.setdefault("status", CampaignRecipient.Status.SENT)
    return CampaignRecipient.objects.create(
        campaign=campaign, email=email or f"p{next(_ids)}@example.com", mail=mail, **fields)


def link_id(campaign, url: str) -> int:
    return CampaignLink.objects.get(campaign=campaign, url=url).pk


BODY = """<!doctype html>
<html><head><style>a[href^="http"] { color: red }</style></head>
<body>
<!-- <a href="https://commented.example/">not a link</a> -->
<p>Read <A class='big' HREF = 'https://acme.example/spring?a=1&amp;b=2' target=_blank>the news</A>
and <a href="https://acme.example/shop">the shop</a> (again: <a href="https://acme.example/shop"
   title="shop">shop</a>), <a href=http://plain.example/x>unquoted</a>.</p>
<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> · <a href="{{ preferences_url }}">Prefs</a>
<a href="mailto:sales@acme.example">mail us</a> <a href="tel:+4930123">call</a>
<a href="#top">top</a> <a href="/relative">rel</a> <a name="x">no href</a>
<a href="https://acme.example/{{ contact.id }}">personal</a></p>
<script>document.write('<a href="https://script.example/">x</a>')</script>
</body></html>
"""


def test_static_links_are_tracked_and_nothing_else_changes(acme):
    campaign = make_campaign(acme)
    out = instrument(campaign, BODY, opens=False, clicks=True)
    urls = set(campaign.links.values_list("url", flat=True))
    # one link per distinct URL, the entity decoded (the redirect goes to the real URL)
    assert urls == {"https://acme.example/spring?a=1&b=2", "https://acme.example/shop",
                    "http://plain.example/x"}
    spring, shop, plain = (link_id(campaign, url) for url in (
        "https://acme.example/spring?a=1&b=2", "https://acme.example/shop",
        "http://plain.example/x"))
    expected = (BODY
                .replace("'https://acme.example/spring?a=1&amp;b=2'",
                         f'"{{{{ click_base }}}}/{spring}"')
                .replace('"https://acme.example/shop"', f'"{{{{ click_base }}}}/{shop}"')
                .replace("http://plain.example/x", f'"{{{{ click_base }}}}/{plain}"'))
    assert out == expected
    # placeholders, mail, phone, anchors, relative links, comments and scripts untouched
    for kept in ('href="{{ unsubscribe_url }}"', 'href="mailto:sales@acme.example"',
                 'href="tel:+4930123"', 'href="#top"', 'href="/relative"',
                 "https://commented.example/", "https://script.example/",
                 'href="https://acme.example/{{ contact.id }}"'):
        assert kept in out
    assert "open_url" not in out


def test_the_pixel_goes_before_the_body_end_once(acme):
    campaign = make_campaign(acme)
    out = instrument(campaign, BODY, opens=True, clicks=False)
    assert out == BODY.replace("</body></html>", PIXEL + "</body></html>")
    assert 'width="1" height="1" alt=""' in PIXEL and "{{ open_url }}" in PIXEL
    assert not campaign.links.exists()
    # a fragment without </body> gets it at the end; instrumenting again adds nothing
    fragment = instrument(campaign, "<p>Hi</p>", opens=True, clicks=True)
    assert fragment == "<p>Hi</p>" + PIXEL
    assert instrument(campaign, fragment, opens=True, clicks=True) == fragment


def test_instrumenting_is_idempotent_across_languages_and_campaigns(acme):
    campaign, other = make_campaign(acme), make_campaign(acme, name="Other")
    first = instrument(campaign, BODY, opens=True, clicks=True)
    assert instrument(campaign, BODY, opens=True, clicks=True) == first
    assert instrument(campaign, first, opens=True, clicks=True) == first
    german = instrument(campaign, '<a href="https://acme.example/shop">Laden</a>',
                        opens=False, clicks=True)
    assert german == f'<a href="{{{{ click_base }}}}/{link_id(campaign, "https://acme.example/shop")}">Laden</a>'
    assert campaign.links.count() == 3
    instrument(other, BODY, opens=False, clicks=True)
    assert other.links.count() == 3
    assert not set(other.links.values_list("id", flat=True)) & set(
        campaign.links.values_list("id", flat=True))
    assert instrument(campaign, BODY, opens=False, clicks=False) == BODY


@IN_MEMORY_SQLITE
@pytest.mark.django_db(transaction=True)
def test_two_workers_instrumenting_at_once_share_one_link_per_url(acme):
    campaign = make_campaign(acme)
    body = "".join(f'<a href="https://acme.example/{n}">{n}</a>' for n in range(30))
    results, errors = [], []
    barrier = threading.Barrier(2)

    def work():
        try:
            barrier.wait()
            results.append(instrument(campaign, body, opens=False, clicks=True))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results[0] == results[1]
    assert campaign.links.count() == 30


# --- property: only the href values of trackable links change ----------------------------

urls = st.builds(lambda host, path: f"https://{host}.example/{path}",
                 st.sampled_from(["a", "b", "c"]), st.text("xyz/?=&-", max_size=8))
untracked = st.sampled_from(["mailto:a@b.example", "#top", "/rel", "{{ unsubscribe_url }}",
                             "tel:123", "https://x.example/{{ contact.id }}"])
quotes = st.sampled_from(['"', "'"])
spaces = st.sampled_from(["", " ", "\n  ", "\r\n"])
texts = st.text(st.characters(blacklist_characters="<&", blacklist_categories=["Cs"]),
                max_size=12)
others = st.sampled_from(["<p>", "</p>", "<br/>", "<!-- <a href='https://commented.example/'> -->",
                          "<img src='https://img.example/x.png'>", "<b class=\"x\">",
                          "{% if x %}", "{{ name }}", "<table><tr><td>", "</td></tr></table>"])


@st.composite
def documents(draw):
    """(source, [(raw quoted href, url or None)]) built from known pieces."""
    pieces, hrefs = [], []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["text", "other", "link", "link", "untracked"]))
        if kind == "text":
            pieces.append(draw(texts))
        elif kind == "other":
            pieces.append(draw(others))
        else:
            url = draw(urls if kind == "link" else untracked)
            quote = draw(quotes)
            raw = f"{quote}{url.replace('&', '&amp;')}{quote}"
            pre, post = draw(spaces), draw(st.sampled_from(["", ' class="c"', " target=_b"]))
            pieces.append(f"<a{pre} {'HREF' if draw(st.booleans()) else 'href'}={raw}{post}>"
                          f"{draw(texts)}</a>{draw(spaces)}")
            hrefs.append((raw, url if kind == "link" else None))
    return "".join(pieces), hrefs


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(document=documents())
def test_only_trackable_href_values_change(acme, document):
    campaign = Campaign.objects.filter(company=acme).first() or make_campaign(acme)
    source, hrefs = document
    out = instrument(campaign, source, opens=False, clicks=True)
    # walk the output: every tracked href stands exactly where a trackable one stood
    expected, rest = [], source
    for raw, url in hrefs:
        at = rest.index(raw)
        expected.append(rest[:at])
        expected.append(f'"{{{{ click_base }}}}/{link_id(campaign, url)}"' if url else raw)
        rest = rest[at + len(raw):]
    assert out == "".join(expected) + rest
    assert len(re.findall(r"click_base", out)) == sum(1 for _, url in hrefs if url)

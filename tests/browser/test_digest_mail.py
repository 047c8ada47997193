"""The digest email in a real browser: at phone and desktop widths it never scrolls sideways,
every chart is loaded, and screenshots go to artifacts/ for a look."""

from __future__ import annotations

import pytest

from mailroom.digests import mail
from mailroom.digests.board import Board
from mailroom.digests.models import Digest, Periodicity, Tip
from tests.digests.conftest import _sendable, make_digest
from tests.digests.test_mail import KPIS, WEEK
from tests.digests.test_mail import _kpis as _kpis  # noqa: F401  (registers the test KPIs)


@pytest.fixture
def preview_html(acme, alice):
    from mailroom.routing.models import AliasDomain

    AliasDomain.objects.create(company=acme, name="acme.example")
    alice = _sendable(alice)
    digest = make_digest(acme, actor=alice, recipients=[alice], kpis=[k.key for k in KPIS])
    Digest.objects.filter(pk=digest.pk).update(periodicity=Periodicity.WEEKLY,
                                               slowed_from=Periodicity.DAILY)
    digest.refresh_from_db()
    tip = Tip.objects.create(
        title="Answer faster with templates",
        body="<p>Save the replies you write most often as templates, then insert them "
             "from the composer in two clicks.</p>")
    return mail.preview(digest, alice, WEEK, board=Board(), tip=tip, notice=True)[1]


@pytest.mark.parametrize("width", [375, 800])
def test_the_digest_fits_the_screen(browser, db, preview_html, shot, width):
    context = browser.new_context(viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        page.set_content(preview_html, wait_until="load")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the email scrolls sideways by {overflow}px at {width}px"
        charts = page.locator("img[alt*='last 12 weeks']")
        assert charts.count() == len(KPIS) - 1  # the KPI with no value has no chart
        # every chart decoded (data: URIs in the preview) and scaled to fit
        sizes = page.evaluate("""() => [...document.images].filter(i => i.alt.includes('last 12'))
            .map(i => [i.naturalWidth, i.getBoundingClientRect().width])""")
        assert all(natural == 480 and 0 < shown <= 240 for natural, shown in sizes)
        assert page.get_by_text("Send it daily again").is_visible()
        assert page.get_by_text("Unsubscribe from this digest").is_visible()
        shot(page, f"{width}px")
    finally:
        context.close()


def test_unsubscribe_from_the_link_without_logging_in(open_page, shot, acme, alice, bob):
    from urllib.parse import urlparse

    from mailroom.digests import unsubscribe
    from mailroom.digests.services import recipients
    from tests.browser.conftest import PHONE

    digest = make_digest(acme, actor=alice, recipients=[_sendable(alice), _sendable(bob)])
    page = open_page(viewport=PHONE)  # nobody signed in
    page.goto(urlparse(unsubscribe.unsubscribe_url(digest, bob)).path)
    shot(page, "ask")
    page.locator("#digest-unsubscribe").click()
    page.get_by_text("You will no longer get Weekly pulse").wait_for()
    shot(page, "done")
    assert not recipients(digest).filter(pk=bob.pk).exists()
    assert recipients(digest).filter(pk=alice.pk).exists()
    page.locator("#digest-subscribe").click()
    page.get_by_text("You will get Weekly pulse again").wait_for()
    assert recipients(digest).filter(pk=bob.pk).exists()
    page.goto("/digests/unsubscribe/forged-token/")
    assert page.get_by_text("This link is not valid").is_visible()
    shot(page, "forged")

"""The digest email: numbers in the recipient's language, changes in words, inline charts,
the slow-down notice, the footer links and the one-click unsubscribe headers — and the
whole thing through the real sender to an SMTP sink, DKIM-verified."""

from __future__ import annotations

import email
import email.policy
import html as htmllib
import io
import re
from datetime import date
from decimal import Decimal

import pytest
from PIL import Image

from mailroom.core import kpis as registry
from mailroom.core.kpis import Kpi, Unit
from mailroom.core.models import LANGUAGE_CHOICES
from mailroom.digests import mail
from mailroom.digests.board import Board
from mailroom.digests.models import Digest, Periodicity
from mailroom.digests.periods import Period
from mailroom.outgoing.services import enqueue_many
from tests.digests.conftest import make_digest

WEEK = Period("weekly", date(2026, 11, 30), "Europe/Paris")  # Mon 30 Nov – Sun 6 Dec 2026


def _week_number(start) -> int:
    """0 for the week of WEEK, -1 the week before, ..."""
    return (start.date() - WEEK.first_day).days // 7


def _revenue(company, start, end):
    return Decimal("12345.5") if _week_number(start) == 0 else Decimal("10000")


def _tickets(company, start, end):
    return 20 + _week_number(start)  # 9, 10, ... 20: 12 rising weeks


def _reply_time(company, start, end):
    return 3 * 3600 + 20 * 60 if _week_number(start) == 0 else 3 * 3600


def _open_rate(company, start, end):
    week = _week_number(start)
    return {0: 42.5, -11: None}.get(week, 40)  # the oldest week could not be computed


def _broken(company, start, end):
    return None  # could not be computed (the board also turns an exception into None)


KPIS = [
    Kpi(key="test_mail.revenue", group="Test", label="Revenue", unit=Unit.MONEY,
        compute=_revenue, list_url=lambda s, e: "/crm/lead/?won=1"),
    Kpi(key="test_mail.tickets", group="Test", label="Tickets solved", unit=Unit.COUNT,
        compute=_tickets),
    Kpi(key="test_mail.reply_time", group="Test", label="Reply time", unit=Unit.DURATION,
        compute=_reply_time, higher_is_better=False),
    Kpi(key="test_mail.open_rate", group="Test", label="Open rate", unit=Unit.PERCENT,
        compute=_open_rate),
    Kpi(key="test_mail.broken", group="Test", label="Broken", unit=Unit.COUNT,
        compute=_broken),
]


@pytest.fixture(autouse=True)
def _kpis():
    for kpi in KPIS:
        registry.register(kpi)


@pytest.fixture
def digest(acme, domain, alice, bob):
    return make_digest(acme, actor=alice, recipients=[alice, bob],
                       kpis=[k.key for k in KPIS])


def build(digest, user, *, notice=False, tip=None, period=WEEK, board=None):
    return mail.build(digest, user, period, board=board or Board(), tip=tip, notice=notice,
                      manual=False)


def text_of(html: str) -> str:
    """Visible text, entities decoded, every kind of space one plain space."""
    return " ".join(htmllib.unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_subject_and_period_labels_follow_the_periodicity_and_language():
    assert mail.period_label(WEEK, "en_GB") == "30 Nov – 6 Dec 2026"
    assert mail.period_label(WEEK, "fr_FR") == "30 nov. – 6 déc. 2026"
    assert mail.period_label(Period("monthly", date(2026, 11, 1), "UTC"), "en_US") \
        == "November 2026"
    assert mail.period_label(Period("quarterly", date(2026, 10, 1), "UTC"), "en_US") \
        == "Q4 2026"
    assert mail.period_label(Period("daily", date(2026, 12, 6), "UTC"), "en_GB") \
        == "Sun, 6 Dec 2026"


def test_the_numbers_their_changes_and_charts(digest, alice):
    item = build(digest, alice)
    assert item["subject"] == "Weekly pulse · Nov 30 – Dec 6, 2026"  # alice: en_US
    text = text_of(item["html"])
    assert "Revenue €12,345.50" in text and "Previous week: €10,000.00" in text
    assert "▲ up 23% on the previous week" in text
    assert "Tickets solved 20" in text and "▲ up 5.3% on the previous week" in text
    assert "Reply time 3 h 20 min" in text and "Previous week: 3 h" in text
    assert "Open rate 42.5%" in text
    assert "Broken not available could not be computed this time" in text
    assert "Previous week: not available" not in text
    # good or bad news is said in words and arrows; the colour only repeats it
    html = item["html"]
    reply = html[html.index("Reply time"):html.index("Open rate")]
    # slower replies: up, and bad news (red) since less is better
    assert "▲ up 11% on the previous week" in text_of(reply) and mail.BAD in reply
    assert mail.GOOD not in reply
    # the list behind a number, made absolute
    assert 'href="http://testserver/crm/lead/?won=1"' in html \
        or re.search(r'href="https?://[^"]+/crm/lead/\?won=1"', html)
    # one inline PNG per number, referenced by cid:, with the numbers as alt text
    files = item["attachments"]
    assert len(files) == 4 and all(f.mimetype == "image/png" for f in files)  # none of nothing
    for f in files:
        assert f'src="cid:{f.content_id}"' in html
        assert Image.open(io.BytesIO(f.content)).size == (480, 120)  # 240×60 at 2x
    assert 'alt="Tickets solved, last 12 weeks: 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20"' \
        in html
    assert "Broken, last 12 weeks" not in html
    assert 'alt="Open rate, last 12 weeks: n/a, 40%, 40%,' in html


def test_a_french_recipient_gets_french_formats_and_words(digest, alice):
    alice.language = "fr_FR"
    alice.save(update_fields=["language"])
    item = build(digest, alice)
    text = text_of(item["html"])
    assert item["subject"] == "Weekly pulse · 30 nov. – 6 déc. 2026"
    assert ("Revenue 12 345,50 € ▲ en hausse de 23 % par rapport à la semaine précédente"
            in text)
    assert "Semaine précédente : 10 000,00 €" in text
    assert "Open rate 42,5 %" in text
    assert "▲ en hausse de 6,2 % par rapport à la semaine précédente" in text
    assert 'lang="fr-FR"' in item["html"]
    # bob keeps English: each recipient gets their own language
    assert "€12,345.50" in text_of(build(digest, Digest.objects.get(pk=digest.pk)
                                         .subscriptions.get(user__username="bob").user)["html"])


def test_a_user_without_a_language_gets_the_company_one(digest, alice):
    alice.language = ""
    item = build(digest, alice)
    assert "Revenue 12 345,50 €" in text_of(item["html"])  # acme is French


def test_charts_are_drawn_once_per_kpi_and_period(digest, alice, bob):
    board = Board()
    first, second = build(digest, alice, board=board), build(digest, bob, board=board)
    assert board.charts_drawn == 4
    assert [f.content for f in first["attachments"]] == [f.content for f in second["attachments"]]


def test_headers_for_one_click_unsubscribe_and_auto_replies(digest, alice):
    item = build(digest, alice)  # one build: its tokens are timestamped to the second
    headers = item["headers"]
    assert re.fullmatch(r"<https?://[^>]+/digests/unsubscribe/[^/>]+/>",
                        headers["List-Unsubscribe"])
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["X-Auto-Response-Suppress"].startswith("OOF")
    assert headers["List-Id"] == f'"Weekly pulse" <digest-{digest.pk}.acme.example>'
    assert item["is_automatic"] is True
    # the footer says why and links the same unsubscribe and the preferences
    html = item["html"]
    assert "You get this email because you are a recipient of the “Weekly pulse” digest" \
        in text_of(html)
    assert headers["List-Unsubscribe"].strip("<>") in html
    assert "/company/preferences/" in html and "Unsubscribe from this digest" in html


def test_the_slow_down_notice_only_when_asked(digest, alice):
    Digest.objects.filter(pk=digest.pk).update(periodicity=Periodicity.WEEKLY,
                                               slowed_from=Periodicity.DAILY)
    digest.refresh_from_db()
    plain = text_of(build(digest, alice)["html"])
    assert "instead of" not in plain and "again" not in plain
    html = build(digest, alice, notice=True)["html"]
    assert ("We now send this digest weekly instead of daily because nobody opened Mailroom "
            "in the last 2 days.") in text_of(html)
    assert "Send it daily again" in html
    assert re.search(r'href="https?://[^"]+/digests/restore/[^"/]+/"', html)


def test_a_tip_is_shown_with_its_title_and_body(digest, alice):
    from mailroom.digests.models import Tip

    tip = Tip.objects.create(title="Use templates", body="<p>Save time with <b>templates</b>.</p>")
    html = build(digest, alice, tip=tip)["html"]
    assert "Use templates" in html and "Save time with" in html


def test_the_mail_is_accepted_by_the_outbox(digest, alice, bob):
    queued = enqueue_many(company=digest.company,
                          mails=[build(digest, alice), build(digest, bob)])
    assert len(queued) == 2
    assert queued[0].headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_the_preview_has_the_charts_as_data_uris(digest, alice):
    subject, html = mail.preview(digest, alice, WEEK, board=Board(), tip=None, notice=False)
    assert subject.startswith("Weekly pulse · ")
    assert "cid:" not in html and html.count('src="data:image/png;base64,') == 4


def test_a_number_the_user_may_not_see_is_left_out(acme, domain, alice, bob):
    digest = make_digest(acme, actor=alice, recipients=[alice, bob],
                         kpis=["crm.new_leads", "test_mail.tickets"])
    assert "New leads" in build(digest, alice)["html"]
    bob_html = build(digest, bob)["html"]
    if not bob.has_perm("crm.view_lead"):
        assert "New leads" not in bob_html
    assert "Tickets solved" in bob_html


def _parsed(raw: bytes):
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_through_the_real_sender_the_mail_is_related_and_dkim_signed(digest, alice):
    import dkim

    from mailroom.lib.dkim import generate_key
    from mailroom.outgoing.models import DkimKey
    from tests.outgoing.test_sender import Clock, _senders, make_sender, make_server

    private_pem, txt = generate_key(1024)
    DkimKey.objects.create(company=digest.company, domain="acme.example", selector="s1",
                           private_key=private_pem.decode(), dns_txt=txt)
    from tests.outgoing.smtp_peer import SmtpPeer

    with SmtpPeer() as sink:
        make_server(digest.company, sink)
        enqueue_many(company=digest.company, mails=[build(digest, alice)])
        try:
            assert make_sender(Clock()).run_once() == 1
        finally:
            while _senders:
                _senders.pop().close()
        [received] = sink.messages
    raw = received.data
    assert dkim.verify(raw, dnsfunc=lambda name, timeout=5: txt.encode())
    signature = _parsed(raw)["DKIM-Signature"]
    signed = re.search(r"h=([^;]+);", "".join(str(signature).split())).group(1).split(":")
    assert {"list-unsubscribe", "list-unsubscribe-post", "list-id"} <= set(signed)
    message = _parsed(raw)
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/digests/unsubscribe/" in message["List-Unsubscribe"]
    # multipart/related: the HTML and the charts it references by Content-ID
    related = next(part for part in message.walk()
                   if part.get_content_type() == "multipart/related")
    html = next(part for part in related.walk()
                if part.get_content_type() == "text/html").get_content()
    images = [part for part in related.walk() if part.get_content_type() == "image/png"]
    assert len(images) == 4
    for image in images:
        content_id = image["Content-ID"].strip("<>")
        assert f"cid:{content_id}" in html
        assert Image.open(io.BytesIO(image.get_content())).format == "PNG"
    # a relay that rewrites the unsubscribe link breaks the signature
    tampered = raw.replace(b"/digests/unsubscribe/", b"/digests/unsubscribX/")
    assert not dkim.verify(tampered, dnsfunc=lambda name, timeout=5: txt.encode())


@pytest.mark.parametrize("language", [code for code, _ in LANGUAGE_CHOICES])
def test_every_offered_language_renders(digest, alice, language):
    alice.language = language
    item = build(digest, alice)
    assert item["subject"].startswith("Weekly pulse · ") and len(item["attachments"]) == 4
    assert f'<html lang="{language.split("_")[0]}-' in item["html"]  # zh_CN: zh-Hans-CN


def test_change_words_for_flat_zero_and_missing_previous():
    from mailroom.digests.board import KpiRow

    kpi = KPIS[1]

    def words(value, previous):
        row = KpiRow(kpi=kpi, period=WEEK, value=value, previous=previous,
                     history=(previous, value), url="")
        return mail.change_words(row, "en_US")

    assert words(5, 5) == ("=", "same as the previous week", mail.NEUTRAL)
    assert words(5, 0) == ("▲", "up from 0 in the previous week", mail.GOOD)
    assert words(0, 4) == ("▼", "down 100% on the previous week", mail.BAD)
    assert words(5, None) == ("", "nothing to compare with the previous week", mail.NEUTRAL)
    assert words(Decimal("100.4"), 100) == ("▲", "up 0.4% on the previous week", mail.GOOD)

"""Issue 13, items 3–4 end to end: Mailroom slows a digest down, the next email says so in
plain words with a signed link, the link puts the periodicity back, and the email after
that says nothing more."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, time, timedelta
from urllib.parse import urlparse

from django.test import Client

from mailroom.digests.models import Digest
from mailroom.digests.sending import run_due
from mailroom.outgoing.models import OutgoingMail
from tests.digests.conftest import make_digest

NOTICE = ("We now send this digest weekly instead of daily because nobody opened Mailroom "
          "in the last 2 days.")


def _text(mail: OutgoingMail) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", mail.body_html)).split())


def _run(digest, now) -> list[OutgoingMail]:
    before = set(OutgoingMail.objects.values_list("pk", flat=True))
    Digest.objects.filter(pk=digest.pk).update(next_run_at=now - timedelta(minutes=5))
    run_due(now)
    return list(OutgoingMail.objects.exclude(pk__in=before).order_by("pk"))


def test_the_next_email_says_so_and_its_link_restores_the_periodicity(acme, domain, alice):
    digest = make_digest(acme, actor=alice, recipients=[alice], periodicity="daily",
                         send_time=time(8, 0))
    Digest.objects.filter(pk=digest.pk).update(created_at=datetime(2026, 1, 1, tzinfo=UTC))
    now = datetime(2026, 3, 10, 9, tzinfo=UTC)  # alice never opened Mailroom

    assert _run(digest, now) == []  # this run only slows the digest down
    digest.refresh_from_db()
    assert digest.periodicity == "weekly" and digest.slowdown_notice

    alice.last_seen_at = now + timedelta(days=1)  # opened Mailroom since: no further slow-down
    alice.save(update_fields=["last_seen_at"])
    [first] = _run(digest, now + timedelta(days=7))
    assert NOTICE in _text(first) and "Send it daily again" in _text(first)
    link = re.search(r'href="([^"]+/digests/restore/[^"]+)"', first.body_html).group(1)

    alice.last_seen_at = now + timedelta(days=8)
    alice.save(update_fields=["last_seen_at"])
    [second] = _run(digest, now + timedelta(days=14))
    assert "instead of" not in _text(second)  # said once, in the next email only

    client = Client()
    client.get(urlparse(link).path)
    client.post(urlparse(link).path, {"csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    digest.refresh_from_db()
    assert digest.periodicity == "daily" and not digest.slowed_from

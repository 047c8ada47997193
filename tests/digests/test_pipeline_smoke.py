"""A first end-to-end pass: a due digest is queued once per recipient and period."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from mailroom.digests.models import Digest, DigestSend
from mailroom.digests.sending import run_due
from mailroom.outgoing.models import OutgoingMail
from tests.digests.conftest import make_digest


def test_a_due_digest_is_sent_once_per_recipient_and_period(acme, domain, alice, bob):
    digest = make_digest(acme, recipients=[alice, bob], periodicity="daily",
                         send_time=time(8, 0))
    Digest.objects.filter(pk=digest.pk).update(
        created_at=datetime(2026, 1, 1, tzinfo=UTC))
    alice.last_seen_at = datetime(2026, 3, 10, 9, tzinfo=UTC)
    alice.save()
    now = datetime(2026, 3, 10, 12, tzinfo=UTC)
    Digest.objects.filter(pk=digest.pk).update(next_run_at=now - timedelta(hours=5))
    first = run_due(now)
    assert first.sent == 2
    Digest.objects.filter(pk=digest.pk).update(next_run_at=now - timedelta(hours=5))
    second = run_due(now)
    assert second.sent == 0 and second.skipped == 2
    assert DigestSend.objects.count() == 2
    assert OutgoingMail.objects.count() == 2

"""Scheduled digests: once per recipient and period, the catch-up after a missed run, the
slow-down when nobody reads them, and manual sends that count for neither."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine

from mailroom.chatter.models import Message
from mailroom.core.models import AuditLog
from mailroom.digests import sending
from mailroom.digests.models import Digest, DigestSend, DigestSubscription
from mailroom.digests.services import restore_periodicity, set_subscribed
from mailroom.outgoing.models import OutgoingMail
from tests.digests.conftest import make_digest

PARIS_8AM_WINTER = 7  # 08:00 in Paris is 07:00 UTC in December


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def seen(*users, when):
    for user in users:
        user.last_seen_at = when
        user.save(update_fields=["last_seen_at"])


@pytest.fixture
def weekly(acme, domain, alice, bob):
    with time_machine.travel(at(2026, 11, 1, 12), tick=False):
        digest = make_digest(acme, recipients=[alice, bob], periodicity="weekly",
                             send_time=time(8, 0))
    return Digest.objects.get(pk=digest.pk)


def test_a_new_digest_is_scheduled_for_send_time_on_the_next_period_in_company_time(weekly):
    # created Sunday 1 Nov 2026 (still summer time until 25 Oct? no: winter, UTC+1)
    assert weekly.next_run_at == at(2026, 11, 2, PARIS_8AM_WINTER)


def test_the_cron_task_sends_last_week_once_and_moves_to_next_monday(weekly, alice, bob):
    seen(alice, when=at(2026, 11, 30, 9))
    with time_machine.travel(at(2026, 11, 30, 7, 3), tick=False):
        Digest.objects.filter(pk=weekly.pk).update(next_run_at=at(2026, 11, 30, 7))
        outcome = sending.run_due()
        again = sending.run_due()
    assert (outcome.sent, again.sent) == (2, 0)
    sends = DigestSend.objects.filter(digest=weekly)
    assert {s.user_id for s in sends} == {alice.pk, bob.pk}
    assert {s.period_start for s in sends} == {at(2026, 11, 22, 23)}  # Mon 23 Nov, Paris
    assert Digest.objects.get(pk=weekly.pk).next_run_at == at(2026, 12, 7, 7)
    mails = OutgoingMail.objects.filter(pk__in=[s.mail_id for s in sends])
    assert sorted(r.address for m in mails for r in m.recipients.all()) == \
        [alice.email, bob.email]


def test_a_worker_down_for_days_sends_one_catch_up_digest_for_the_latest_period(
        acme, domain, alice):
    with time_machine.travel(at(2026, 11, 1, 12), tick=False):
        digest = make_digest(acme, recipients=[alice], periodicity="daily")
    seen(alice, when=at(2026, 12, 4, 20))
    # due on 2 Dec at 08:00; no worker ran until 5 Dec 10:00
    Digest.objects.filter(pk=digest.pk).update(next_run_at=at(2026, 12, 2, 7))
    outcome = sending.run_due(at(2026, 12, 5, 9))
    assert outcome.sent == 1
    send = DigestSend.objects.get(digest=digest)
    assert send.period_start == at(2026, 12, 3, 23)  # 4 Dec, yesterday in Paris
    assert Digest.objects.get(pk=digest.pk).next_run_at == at(2026, 12, 6, 7)
    assert sending.run_due(at(2026, 12, 5, 9, 5)).sent == 0


def test_an_unsubscribed_or_departed_user_gets_nothing(weekly, alice, bob, acme):
    seen(alice, bob, when=at(2026, 11, 30, 6))
    set_subscribed(weekly, bob, False, actor=bob)
    alice.companies.remove(acme)
    Digest.objects.filter(pk=weekly.pk).update(next_run_at=at(2026, 11, 30, 7))
    assert sending.run_due(at(2026, 11, 30, 8)).sent == 0
    assert not DigestSend.objects.exists()


def test_nobody_seen_for_a_week_slows_a_weekly_digest_to_monthly_and_says_so(weekly, alice,
                                                                             bob):
    seen(alice, bob, when=at(2026, 11, 20))  # 10 days before the run
    Digest.objects.filter(pk=weekly.pk).update(next_run_at=at(2026, 11, 30, 7))
    outcome = sending.run_due(at(2026, 11, 30, 7, 1))
    assert outcome.slowed_down is False  # run_due sums; the digest itself tells
    digest = Digest.objects.get(pk=weekly.pk)
    assert (digest.periodicity, digest.slowed_from, digest.slowdown_notice) == \
        ("monthly", "weekly", True)
    assert digest.next_run_at == at(2026, 12, 1, 7)
    assert not DigestSend.objects.exists()
    note = Message.objects.filter(object_id=digest.pk, message_type="note").get()
    assert "monthly instead of weekly" in note.body_html
    assert AuditLog.objects.filter(action="digest.slow_down", object_id=str(digest.pk)).exists()

    # the next (monthly) digest says so, once
    outcome = sending.run_due(at(2026, 12, 1, 7, 5))
    assert outcome.sent == 2
    digest.refresh_from_db()
    assert digest.slowdown_notice is False
    mail = OutgoingMail.objects.filter(subject__startswith=digest.name).first()
    assert "weekly" in mail.body_html and "monthly" in mail.body_html
    # and a recipient can put it back
    restore_periodicity(digest, actor=None, user=alice)
    digest.refresh_from_db()
    assert (digest.periodicity, digest.slowed_from) == ("weekly", "")


def test_the_slow_down_steps_daily_weekly_monthly_quarterly_and_stops(acme, domain, alice):
    with time_machine.travel(at(2026, 1, 1, 12), tick=False):
        digest = make_digest(acme, recipients=[alice], periodicity="daily")
    seen(alice, when=at(2026, 1, 1))
    ladder = []
    now = at(2026, 3, 10, 12)
    for _ in range(4):
        Digest.objects.filter(pk=digest.pk).update(next_run_at=now)
        sending.run_due(now)
        digest.refresh_from_db()
        ladder.append(digest.periodicity)
        now += timedelta(days=1)
    assert ladder == ["weekly", "monthly", "quarterly", "quarterly"]
    assert digest.slowed_from == "daily"  # restoring goes back to what people chose


def test_someone_seen_recently_keeps_the_periodicity(weekly, alice, bob):
    seen(bob, when=at(2026, 11, 28))
    Digest.objects.filter(pk=weekly.pk).update(next_run_at=at(2026, 11, 30, 7))
    sending.run_due(at(2026, 11, 30, 7, 1))
    assert Digest.objects.get(pk=weekly.pk).periodicity == "weekly"


def test_manual_sends_never_slow_down_nor_count_for_the_schedule(weekly, alice):
    seen(alice, when=None)
    for _ in range(3):
        outcome = sending.send_now(weekly, actor=alice, to_all=True,
                                   now=at(2026, 11, 30, 12))
        assert outcome.sent == 2
    digest = Digest.objects.get(pk=weekly.pk)
    assert digest.periodicity == "weekly" and not digest.slowed_from
    assert DigestSend.objects.filter(kind="manual").count() == 6
    assert not DigestSend.objects.filter(kind="scheduled").exists()


def test_send_now_to_me_needs_only_view_and_to_all_needs_change(weekly, bob):
    from django.core.exceptions import PermissionDenied

    assert sending.send_now(weekly, actor=bob, now=at(2026, 11, 30, 12)).sent == 1
    with pytest.raises(PermissionDenied):
        sending.send_now(weekly, actor=bob, to_all=True)


def test_one_broken_kpi_shows_not_available_and_the_digest_still_goes(weekly, alice):
    from mailroom.core import kpis

    def broken(company, start, end):
        raise ZeroDivisionError

    kpis.register(kpis.Kpi(key="test.broken", group="Test", label="Broken", unit="count",
                           compute=broken))
    try:
        Digest.objects.filter(pk=weekly.pk).update(kpis=["test.broken", "crm.new_leads"])
        weekly.refresh_from_db()
        assert sending.send_now(weekly, actor=alice, now=at(2026, 11, 30, 12)).sent == 1
    finally:
        kpis._REGISTRY.pop("test.broken")


def test_a_subscription_row_keeps_who_unsubscribed_and_when(weekly, bob):
    set_subscribed(weekly, bob, False, actor=None,
                   source=DigestSubscription.Source.UNSUBSCRIBE_LINK)
    row = DigestSubscription.objects.get(digest=weekly, user=bob)
    assert (row.subscribed, row.changed_by) == (False, "link")
    assert row.changed_at.date() == date.today() or row.changed_at is not None


def test_two_workers_on_the_same_slot_slow_a_digest_down_one_step_only(weekly, alice, bob):
    Digest.objects.filter(pk=weekly.pk).update(next_run_at=at(2026, 11, 30, 7))
    first = Digest.objects.get(pk=weekly.pk)
    second = Digest.objects.get(pk=weekly.pk)  # read by another worker before the first ran
    sending.send_scheduled(first, at(2026, 11, 30, 7, 1))
    sending.send_scheduled(second, at(2026, 11, 30, 7, 1))
    assert Digest.objects.get(pk=weekly.pk).periodicity == "monthly"


def test_one_address_the_outbox_refuses_holds_neither_the_others_nor_the_schedule(
        weekly, alice, bob, acme):
    from tests.conftest import make_user

    carol = make_user("carol", [acme], "User")
    carol.email = "carol-without-a-domain"  # an address no mail can go to
    carol.save(update_fields=["email"])
    DigestSubscription.objects.create(digest=weekly, user=carol)
    seen(alice, when=at(2026, 11, 30, 9))
    with time_machine.travel(at(2026, 11, 30, 7, 3), tick=False):
        Digest.objects.filter(pk=weekly.pk).update(next_run_at=at(2026, 11, 30, 7))
        outcome = sending.run_due()
        again = sending.run_due()
    assert (outcome.sent, outcome.failed, again.sent) == (2, 0, 0)
    assert [line.split(":")[0] for line in outcome.refused] == [
        "Carol <carol-without-a-domain>"]
    # the period is done for all three, and the schedule moved on
    assert Digest.objects.get(pk=weekly.pk).next_run_at == at(2026, 12, 7, 7)
    refused = DigestSend.objects.get(digest=weekly, user=carol)
    assert refused.mail_id is None
    note = Message.objects.filter(object_id=weekly.pk, content_type__model="digest",
                                  body_html__contains="could not go to 1 recipient").get()
    assert "carol-without-a-domain" in note.body_html

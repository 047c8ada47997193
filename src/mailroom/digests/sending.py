"""Sending digests: on schedule (exactly once per digest, recipient and period), now by hand,
and the slow-down when nobody reads them.

Exactly once, across any number of workers: each recipient's mail is queued in the same
transaction as its DigestSend row, and a unique constraint on (digest, user, period_start)
for scheduled sends refuses a second row. Recipients are handled in chunks: one transaction
queues a chunk with `enqueue_many`; if another worker got there first (IntegrityError), or
the outbox refused an address (ValidationError: it takes all or none), the chunk is retried
one recipient per transaction: the ones already sent are skipped, and a refused one is
recorded as done for the period (with a line in the digest's chatter), so it never holds the
others nor the schedule. A
worker that dies half-way leaves `next_run_at` unchanged, so the next run finishes the
period without repeating anyone. `next_run_at` moves on only when the period is done.

A missed run (no worker for a day) reports the latest complete period once: the period is
computed from the time of the run, not replayed from the missed slots.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from mailroom.chatter.services import log_note
from mailroom.core.access import perm, require
from mailroom.core.services import audit
from mailroom.digests import mail, periods, permissions, tips
from mailroom.digests.board import Board
from mailroom.digests.models import SLOWDOWN_AFTER, SLOWER, Digest, DigestSend, Periodicity
from mailroom.digests.services import recipients, schedule
from mailroom.outgoing.services import enqueue_many

log = logging.getLogger("mailroom.digests")
CHUNK = 200


@dataclass
class Outcome:
    sent: int = 0
    skipped: int = 0  # already sent for that period (another worker, an earlier run)
    failed: int = 0  # could not be built or queued for now (logged; the next run retries)
    slowed_down: bool = False
    # refused for good (an address no mail can go to): "name <address>: why", one each; a
    # scheduled run records the period as done for them and says so in the digest's chatter
    refused: list[str] = field(default_factory=list)


def _period_now(digest: Digest, now: datetime) -> periods.Period:
    return periods.last_complete(digest.periodicity, now, digest.company.timezone)


def _rows(digest, users, period, *, kind, board, now, notice) -> list[tuple]:
    """(user, tip, enqueue item) for each user; a user whose mail cannot be built is logged
    and left out (their DigestSend is not written, so the next run tries again)."""
    picked = tips.pick_many(users, digest.company, now=now) if kind == DigestSend.Kind.SCHEDULED \
        else {u.pk: tips.pick(u, digest.company, now=now) for u in users}
    rows = []
    for user in users:
        tip = picked.get(user.pk)
        try:
            item = mail.build(digest, user, period, board=board, tip=tip, notice=notice,
                              manual=kind == DigestSend.Kind.MANUAL)
        except Exception:
            log.exception("digests: digest %s could not be built for user %s", digest.pk,
                          user.pk)
            continue
        rows.append((user, tip, item))
    return rows


def _queue(digest, rows, period, *, kind, now) -> int:
    """One transaction: the mails, their DigestSend rows, the tips marked shown."""
    with transaction.atomic():
        queued = enqueue_many(company=digest.company, mails=[item for _, _, item in rows])
        DigestSend.objects.bulk_create([
            DigestSend(digest=digest, user=user, periodicity=period.periodicity,
                       period_start=period.start, period_end=period.end, kind=kind,
                       mail=queued_mail, tip=tip, created_at=now)
            for (user, tip, _), queued_mail in zip(rows, queued, strict=True)])
        tips.record_shown([(tip, user) for user, tip, _ in rows if tip is not None], now=now)
    return len(rows)


def _send(digest: Digest, users: list, period: periods.Period, *, kind: str, board: Board,
          now: datetime, notice: bool = False) -> Outcome:
    outcome = Outcome()
    for first in range(0, len(users), CHUNK):
        chunk = users[first:first + CHUNK]
        if kind == DigestSend.Kind.SCHEDULED:
            done = set(DigestSend.objects.filter(
                digest=digest, kind=kind, period_start=period.start,
                user__in=chunk).values_list("user_id", flat=True))
            outcome.skipped += len(done)
            chunk = [u for u in chunk if u.pk not in done]
        if not chunk:
            continue
        permissions.prime(chunk)
        rows = _rows(digest, chunk, period, kind=kind, board=board, now=now, notice=notice)
        outcome.failed += len(chunk) - len(rows)
        try:
            outcome.sent += _queue(digest, rows, period, kind=kind, now=now)
        except (IntegrityError, ValidationError):
            # another worker sent some of them meanwhile, or the outbox refused one address
            # (enqueue_many takes all or none): one at a time, so one never holds the others
            _queue_each(digest, rows, period, kind=kind, now=now, outcome=outcome)
        except Exception:
            log.exception("digests: digest %s could not queue %d mails", digest.pk, len(rows))
            outcome.failed += len(rows)
    return outcome


def _queue_each(digest, rows, period, *, kind, now, outcome: Outcome) -> None:
    for row in rows:
        try:
            outcome.sent += _queue(digest, [row], period, kind=kind, now=now)
        except IntegrityError:
            outcome.skipped += 1
        except ValidationError as exc:
            user = row[0]
            why = "; ".join(exc.messages)
            outcome.refused.append(f"{user.get_full_name() or user.username} "
                                   f"<{user.email}>: {why}")
            log.warning("digests: digest %s refused for user %s: %s", digest.pk, user.pk, why)
            if kind == DigestSend.Kind.SCHEDULED:  # done for this period: never retried
                DigestSend.objects.get_or_create(
                    digest=digest, user=user, kind=kind, period_start=period.start,
                    defaults={"periodicity": period.periodicity,
                              "period_end": period.end, "mail": None, "created_at": now})
        except Exception:
            log.exception("digests: digest %s could not queue a mail for user %s",
                          digest.pk, row[0].pk)
            outcome.failed += 1


def _last_seen(digest: Digest):
    users = recipients(digest)
    return users.aggregate(
        seen=Max("last_seen_at"), login=Max("last_login"))


def needs_slowdown(digest: Digest, now: datetime) -> bool:
    """Nobody of the recipients opened Mailroom within the window (and the digest is older
    than the window, so a new digest gets a fair chance)."""
    window = SLOWDOWN_AFTER.get(digest.periodicity)
    if window is None or digest.created_at > now - window:
        return False
    seen = _last_seen(digest)
    latest = max((v for v in seen.values() if v is not None), default=None)
    return latest is None or latest < now - window


def _slow_down(seen: Digest, now: datetime) -> None:
    with transaction.atomic():
        digest = Digest.objects.select_for_update().get(pk=seen.pk)
        if (digest.periodicity, digest.next_run_at) != (seen.periodicity, seen.next_run_at):
            return  # another worker ran this slot already (and may have slowed it down)
        if digest.periodicity not in SLOWER or not needs_slowdown(digest, now):
            return
        before = Periodicity(digest.periodicity)
        after = SLOWER[before]
        days = SLOWDOWN_AFTER[before].days
        digest.slowed_from = digest.slowed_from or before
        digest.periodicity, digest.slowed_at, digest.slowdown_notice = after, now, True
        schedule(digest, now)
        digest.save(update_fields=["periodicity", "slowed_from", "slowed_at",
                                   "slowdown_notice", "next_run_at"])
        log_note(digest, actor=None, body_text=(
            f"Now sent {after.label.lower()} instead of {before.label.lower()}: none of its "
            f"recipients opened Mailroom in the last {days} days. The next digest says so "
            "and offers to go back."))
        audit("digest.slow_down", actor=None, obj=digest, before={"periodicity": before},
              after={"periodicity": after})


def send_scheduled(digest: Digest, now: datetime | None = None, *,
                   board: Board | None = None) -> Outcome:
    """The scheduled run of one due digest."""
    now = now or timezone.now()
    seen_next = digest.next_run_at
    if needs_slowdown(digest, now) and digest.periodicity in SLOWER:
        _slow_down(digest, now)
        return Outcome(slowed_down=True)
    period = _period_now(digest, now)
    outcome = _send(digest, list(recipients(digest)), period, kind=DigestSend.Kind.SCHEDULED,
                    board=board or Board(), now=now, notice=digest.slowdown_notice)
    if outcome.refused:
        log_note(digest, actor=None, body_text=(
            f"The {period.first_day:%Y-%m-%d} digest could not go to "
            f"{len(outcome.refused)} recipient(s), and will not be retried for that period: "
            + "; ".join(outcome.refused[:20]) + (" …" if len(outcome.refused) > 20 else "")
            + ". Correct their email address in their user settings."))
    if outcome.failed:
        return outcome  # next_run_at stays: the next run retries the ones that failed
    nxt = periods.next_run(digest.periodicity, digest.send_time, digest.company.timezone, now)
    changes = {"next_run_at": nxt}
    if digest.slowdown_notice:
        changes["slowdown_notice"] = False
    Digest.objects.filter(pk=digest.pk, next_run_at=seen_next).update(**changes)
    return outcome


def due(now: datetime | None = None):
    return (Digest.objects.filter(active=True, next_run_at__lte=now or timezone.now())
            .select_related("company").order_by("next_run_at", "pk"))


def run_due(now: datetime | None = None, *, board: Board | None = None) -> Outcome:
    """Send every due digest (the cron task). One Board for the run: KPIs and charts are
    computed once per company, KPI and period across all digests."""
    now = now or timezone.now()
    board = board or Board()
    total = Outcome()
    for digest in due(now):
        try:
            outcome = send_scheduled(digest, now, board=board)
        except Exception:  # one broken digest never stops the others; the next run retries
            log.exception("digests: digest %s failed", digest.pk)
            continue
        total.sent += outcome.sent
        total.skipped += outcome.skipped
        total.failed += outcome.failed
        total.refused += outcome.refused
    return total


def send_now(digest: Digest, *, actor, to_all: bool = False,
             now: datetime | None = None) -> Outcome:
    """Send the latest complete period now, to the actor or to all recipients. Manual sends
    never count for the schedule nor for the slow-down."""
    now = now or timezone.now()
    if to_all:
        require(actor, perm(Digest, "change"), digest)
        users = list(recipients(digest))
    else:
        require(actor, perm(Digest, "view"), digest)
        users = [actor]
    period = _period_now(digest, now)
    outcome = _send(digest, users, period, kind=DigestSend.Kind.MANUAL, board=Board(), now=now)
    audit("digest.send_now", actor=actor, obj=digest,
          after={"to": "all" if to_all else actor.username, "sent": outcome.sent,
                 "period": str(period.first_day)})
    return outcome



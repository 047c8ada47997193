"""Digest services: the only writers of digests and subscriptions.

Each runs in one transaction with an explicit `actor` and writes an audit row. Sending lives
in `sending.py`; tips in `tips.py`.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from mailroom.chatter.services import log_note
from mailroom.core import kpis as registry
from mailroom.core.access import perm, require
from mailroom.core.models import User
from mailroom.core.services import audit, snapshot
from mailroom.digests import periods
from mailroom.digests.models import Digest, DigestSubscription, Periodicity

AUDITED = ["name", "periodicity", "send_time", "kpis", "active"]


def recipients(digest: Digest):
    """Users who get the digest: subscribed, active, still in the digest's company."""
    return (User.objects.filter(digest_subscriptions__digest=digest,
                                digest_subscriptions__subscribed=True, is_active=True,
                                companies=digest.company_id)
            .exclude(email="").order_by("pk").distinct())


def schedule(digest: Digest, now=None) -> None:
    """Set `next_run_at` from the periodicity and send time (None when inactive)."""
    if not digest.active:
        digest.next_run_at = None
        return
    digest.next_run_at = periods.next_run(digest.periodicity, digest.send_time,
                                          digest.company.timezone, now or timezone.now())


def _check_kpis(digest: Digest) -> None:
    keys = digest.kpis
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ValidationError({"kpis": "Choose KPIs from the list."})
    unknown = []
    for key in keys:
        try:
            registry.get(key, digest.company)
        except LookupError:
            unknown.append(key)
    if unknown:
        raise ValidationError({"kpis": f"Unknown KPI: {', '.join(unknown)}."})
    if len(set(keys)) != len(keys):
        digest.kpis = list(dict.fromkeys(keys))


def _set_recipients(digest: Digest, users: Iterable[User]) -> None:
    wanted = {u.pk: u for u in users}
    outsiders = [str(u) for u in wanted.values() if digest.company_id not in u.company_ids()]
    if outsiders:
        raise ValidationError({"recipients": "Not users of this company: "
                               + ", ".join(sorted(outsiders)) + "."})
    now = timezone.now()
    rows = {s.user_id: s for s in digest.subscriptions.all()}
    for user_id in wanted.keys() - rows.keys():
        DigestSubscription.objects.create(digest=digest, user_id=user_id, changed_at=now)
    for user_id, row in rows.items():
        if user_id in wanted and not row.subscribed \
                and row.changed_by == DigestSubscription.Source.ADMIN:
            row.subscribed, row.changed_at = True, now
            row.save(update_fields=["subscribed", "changed_at"])
        elif user_id not in wanted and row.subscribed:
            row.subscribed, row.changed_at = False, now
            row.changed_by = DigestSubscription.Source.ADMIN
            row.save(update_fields=["subscribed", "changed_at", "changed_by"])
        # a user who unsubscribed themselves stays unsubscribed: only they re-subscribe


@transaction.atomic
def save_digest(digest: Digest, *, actor, recipients: Iterable[User] | None = None) -> Digest:
    """Create or change a digest (and, given `recipients`, who gets it)."""
    adding = digest._state.adding
    require(actor, perm(Digest, "add" if adding else "change"), digest)
    before = {} if adding else snapshot(Digest.objects.get(pk=digest.pk), AUDITED)
    if not adding:
        before["recipients"] = _subscribed_names(digest)
    _check_kpis(digest)
    digest.full_clean()
    if adding or digest.next_run_at is None or any(
            before.get(f) != snapshot(digest, AUDITED).get(f)
            for f in ("periodicity", "send_time", "active")):
        schedule(digest)
    if digest.periodicity != (before.get("periodicity") or digest.periodicity):
        digest.slowed_from, digest.slowdown_notice = "", False  # a person chose it now
    digest.updated_at = timezone.now()
    digest.save()
    if recipients is not None:
        _set_recipients(digest, recipients)
    audit("digest.create" if adding else "digest.update", actor=actor, obj=digest,
          before=before, after={**snapshot(digest, AUDITED),
                                "recipients": _subscribed_names(digest)})
    return digest


def _subscribed_names(digest: Digest) -> list[str]:
    """Who gets the digest, for the audit log: login names, sorted."""
    return sorted(digest.subscriptions.filter(subscribed=True)
                  .values_list("user__username", flat=True))


@transaction.atomic
def delete_digest(digest: Digest, *, actor) -> None:
    """Delete a digest with its subscriptions and send rows; the mails it queued stay in the
    email hub, and the audit log keeps what it was."""
    require(actor, perm(Digest, "delete"), digest)
    before = snapshot(digest, AUDITED)
    audit("digest.delete", actor=actor, obj=digest, before=before)
    digest.delete()


@transaction.atomic
def set_active(digest: Digest, active: bool, *, actor) -> Digest:
    require(actor, perm(Digest, "change"), digest)
    if digest.active == active:
        return digest
    digest.active = active
    schedule(digest)
    digest.updated_at = timezone.now()
    digest.save(update_fields=["active", "next_run_at", "updated_at"])
    audit("digest.activate" if active else "digest.deactivate", actor=actor, obj=digest,
          before={"active": not active}, after={"active": active})
    return digest


@transaction.atomic
def set_subscribed(digest: Digest, user: User, subscribed: bool, *, actor,
                   source: str = DigestSubscription.Source.SELF) -> DigestSubscription:
    """A user (un)subscribes themselves; `actor` None is the signed one-click link."""
    if actor is not None and actor.pk != user.pk:
        require(actor, perm(Digest, "change"), digest)
    if digest.company_id not in user.company_ids():
        raise PermissionDenied("This digest belongs to another company.")
    row, _ = DigestSubscription.objects.select_for_update().get_or_create(
        digest=digest, user=user, defaults={"subscribed": subscribed, "changed_by": source})
    if row.subscribed != subscribed or row.changed_by != source:
        row.subscribed, row.changed_by, row.changed_at = subscribed, source, timezone.now()
        row.save(update_fields=["subscribed", "changed_by", "changed_at"])
        audit("digest.subscribe" if subscribed else "digest.unsubscribe", actor=actor,
              obj=digest, after={"user": user.username, "source": source})
    return row


@transaction.atomic
def restore_periodicity(digest: Digest, *, actor, user: User | None = None) -> Digest:
    """Undo a slow-down: back to the periodicity people chose. `actor` None with `user` is a
    recipient following the signed link in the email that announced the slow-down."""
    if actor is not None:
        require(actor, perm(Digest, "change"), digest)
    digest = Digest.objects.select_for_update().get(pk=digest.pk)
    if not digest.slowed_from:
        return digest
    before = digest.periodicity
    digest.periodicity = digest.slowed_from
    digest.slowed_from, digest.slowed_at, digest.slowdown_notice = "", None, False
    schedule(digest)
    digest.updated_at = timezone.now()
    digest.save()
    who = actor or user
    log_note(digest, actor=None, body_text=(
        f"Sent {digest.get_periodicity_display().lower()} again, as {who} asked "
        f"(it had been slowed down to {Periodicity(before).label.lower()})."))
    audit("digest.restore_periodicity", actor=actor, obj=digest,
          before={"periodicity": before}, after={"periodicity": digest.periodicity,
                                                 "by": str(who)})
    return digest

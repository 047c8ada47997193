"""The letters worker step: hand queued letters to their provider, never twice.

1. Claim: a short transaction leases due letters (state queued, `next_attempt_at` due, no
   live lease, provider active and not paused) to this worker: `UPDATE … WHERE lease expired`
   (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's immediate transaction serialises
   claimers). A letter leased to one worker is invisible to the others until the lease ends.
2. Submit, with no transaction open, passing the letter's idempotency key.
3. Record the answer, only while this worker still holds the lease.

A crash between the provider's acceptance (2) and our write (3): the letter is still queued
with a lease that runs out; after `LEASE` another worker claims it again and submits it again
with the SAME idempotency key. The provider answers with the letter it already has (Pingen
and Lob dedupe on the key; the local print room looks the key up in its batches) — so the
envelope is posted once and the database catches up.

Errors: transient ones retry after 1, 5, 15, 60, 180, 360 minutes, then the letter is in
error with the reason in plain words. A credit error pauses the provider's queue
(`paused_until`, `paused_reason`), tells the company's Mail Managers once per pause, and
leaves the letters queued; the queue resumes by itself when the pause ends.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from mailroom.activities.mail import send
from mailroom.core.blobs import BlobMissing, read_blob
from mailroom.core.cron import register_task
from mailroom.core.models import User
from mailroom.core.roles import Role
from mailroom.core.steps import register_step
from mailroom.letters.lifecycle import add_event, record_provider_events
from mailroom.letters.models import Letter, LetterEvent, PostalProvider
from mailroom.letters.providers import Provider, ProviderError, provider_for

log = logging.getLogger("mailroom.letters")

State = Letter.State
# how long a claimed letter stays invisible to other workers (a crashed worker's letters come
# back after it); the environment may shorten it (the crash test does)
LEASE = timedelta(seconds=int(os.environ.get("MAILROOM_LETTERS_LEASE_SECONDS", "600")))
BATCH_SIZE = 20
BACKOFF_MINUTES = (1, 5, 15, 60, 180, 360)
CREDIT_PAUSE = timedelta(hours=1)


def _due(now):
    return (Letter.objects
            .filter(state=State.QUEUED, next_attempt_at__lte=now, provider__active=True)
            .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now))
            .filter(Q(provider__paused_until__isnull=True) | Q(provider__paused_until__lte=now)))


def claim(owner: str, now=None, batch_size: int = BATCH_SIZE) -> list[int]:
    """Lease up to `batch_size` due letters to `owner`, committed on return."""
    now = now or timezone.now()
    due = _due(now)
    if not due.exists():  # idle polls take no write lock
        return []
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        ids = list(due.order_by("next_attempt_at", "id").values_list("id", flat=True)[:batch_size])
        if not ids:
            return []
        (Letter.objects.filter(pk__in=ids)
         .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now))
         .update(lease_owner=owner, lease_expires_at=now + LEASE))
    return list(Letter.objects.filter(pk__in=ids, lease_owner=owner,
                                      lease_expires_at=now + LEASE).values_list("id", flat=True))


def _held(letter: Letter, owner: str):
    """The letter's row, only while `owner` still holds its lease."""
    return Letter.objects.filter(pk=letter.pk, lease_owner=owner, state=State.QUEUED)


def _release(letter: Letter, owner: str, **fields) -> bool:
    fields.setdefault("updated_at", timezone.now())
    return bool(_held(letter, owner).update(lease_owner="", lease_expires_at=None, **fields))


def _pause(provider: PostalProvider, reason: str, now) -> bool:
    """Pause the provider; True only for the worker that started this pause (who notifies)."""
    with transaction.atomic():
        started = (PostalProvider.objects.filter(pk=provider.pk)
                   .filter(Q(paused_until__isnull=True) | Q(paused_until__lte=now))
                   .update(paused_until=now + CREDIT_PAUSE, paused_reason=reason[:300]))
    return bool(started)


def notify_paused(provider: PostalProvider, reason: str, now) -> int:
    """Tell the company's Mail Managers that letters wait: one mail each, per pause."""

    managers = (User.objects.filter(companies=provider.company_id, is_active=True,
                                    groups__name=Role.MAIL_MANAGER.value).distinct())
    waiting = Letter.objects.filter(provider=provider, state=State.QUEUED).count()
    sent = 0
    for user in managers:
        mail = send(provider.company, user,
                    subject=f"Letters are waiting: {provider.name} is paused",
                    template="letters/mail/provider_paused.html",
                    context={"provider": provider, "reason": reason, "waiting": waiting,
                             "until": now + CREDIT_PAUSE},
                    idempotency_key=f"letters-paused-{provider.pk}-{now:%Y%m%d%H%M%S}-{user.pk}")
        sent += mail is not None
    return sent


def submit_one(letter_id: int, owner: str, paused: set[int]) -> None:
    letter = Letter.objects.select_related("provider", "company").get(pk=letter_id)
    if letter.provider_id in paused:
        _release(letter, owner)
        return
    now = timezone.now()
    try:  # a store that cannot be reached raises: the letter is tried again later
        pdf = read_blob(letter.pdf_sha256)
    except BlobMissing:
        _fail(letter, owner, ProviderError(
            "PDF_MISSING", "The letter's PDF is missing from the file store.",
            action="Restore the data directory from a backup, or cancel and send again."))
        return
    try:
        result = provider_for(letter.provider).submit(letter, pdf)
    except ProviderError as exc:
        if exc.credit:
            paused.add(letter.provider_id)
            if _release(letter, owner) and _pause(letter.provider, exc.message, now):
                with transaction.atomic():
                    add_event(letter, State.QUEUED, f"{letter.provider.name} paused: "
                              f"{exc.message}", source=LetterEvent.Source.PROVIDER,
                              payload={"code": exc.code})
                    notify_paused(letter.provider, exc.message, now)
        elif exc.transient:
            _retry_later(letter, owner, exc)
        else:
            _fail(letter, owner, exc)
        return
    except Exception as exc:  # noqa: BLE001 - a provider bug must not kill the worker
        log.exception("letters: provider %s failed on letter %s", letter.provider_id, letter.pk)
        _retry_later(letter, owner, ProviderError("PROVIDER_FAILED",
                                                  f"The provider failed: {exc}", transient=True))
        return
    with transaction.atomic():
        if _release(letter, owner, state=result.state or State.SUBMITTED,
                    provider_ref=result.provider_id[:120], submitted_at=now,
                    price=result.price if result.price is not None else letter.price,
                    currency=result.currency or letter.currency, attempts=letter.attempts + 1,
                    error_code="", error_message="", error_action="", next_attempt_at=None):
            add_event(letter, result.state or State.SUBMITTED,
                      result.message or f"Accepted by {letter.provider.name}.",
                      source=LetterEvent.Source.PROVIDER,
                      payload={"provider_id": result.provider_id})


def _retry_later(letter: Letter, owner: str, exc: ProviderError) -> None:
    attempts = letter.attempts + 1
    if attempts > len(BACKOFF_MINUTES):
        _fail(letter, owner, exc, give_up=True)
        return
    delay = timedelta(minutes=BACKOFF_MINUTES[attempts - 1])
    with transaction.atomic():
        if _release(letter, owner, attempts=attempts,
                    next_attempt_at=timezone.now() + delay, error_code=exc.code,
                    error_message=exc.message[:500], error_action=exc.action[:500]):
            add_event(letter, State.QUEUED,
                      f"{exc.message} Trying again in {delay.seconds // 60} minute(s).",
                      source=LetterEvent.Source.PROVIDER, payload={"code": exc.code})


def _fail(letter: Letter, owner: str, exc: ProviderError, give_up: bool = False) -> None:
    message = exc.message
    if give_up:
        message = f"{message} Mailroom tried {letter.attempts + 1} times and gave up."
    action = exc.action or "Fix the cause, then press Retry on the letter."
    with transaction.atomic():
        if _release(letter, owner, state=State.ERROR, attempts=letter.attempts + 1,
                    next_attempt_at=None, error_code=exc.code, error_message=message[:500],
                    error_action=action[:500]):
            add_event(letter, State.ERROR, message, source=LetterEvent.Source.PROVIDER,
                      payload={"code": exc.code})


@register_step("letters")
def letters_step(owner: str) -> bool:
    """One pass: claim due letters and submit them. True when it did any work."""
    ids = claim(owner)
    paused: set[int] = set()
    for letter_id in ids:
        submit_one(letter_id, owner, paused)
    return bool(ids)


# letters still on their way, whose provider may have news a lost webhook did not bring
POLL_STATES = (State.SUBMITTED, State.PRINTED, State.DISPATCHED)
POLL_BATCH = 200


@register_task("poll_letters", schedule="@every 30m")
def poll_letters() -> int:
    """Ask the providers that can tell (those overriding `status`) where their letters are.
    Returns how many new events were recorded."""
    new = 0
    letters = (Letter.objects.filter(state__in=POLL_STATES)
               .select_related("provider").order_by("updated_at")[:POLL_BATCH])
    for letter in letters:
        provider = provider_for(letter.provider)
        if type(provider).status is Provider.status:
            continue  # the local print room knows only what people mark
        try:
            events = provider.status(letter)
        except ProviderError as exc:
            log.warning("letters: status of letter %s: %s", letter.pk, exc.message)
            continue
        new += record_provider_events(letter, events)
    return new

"""Letters after they are queued: their timeline (events, provider news), cancel and retry,
and the print room's batches. services.py sends; this module follows the envelope.

Each function is one transaction with an explicit actor.
"""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.utils import timezone

from mailroom.chatter.models import MailThread
from mailroom.chatter.services import log_note
from mailroom.core.access import require
from mailroom.core.services import audit
from mailroom.letters.models import Letter, LetterEvent, PostalProvider, PrintBatch
from mailroom.letters.providers import ProviderError, provider_for
from mailroom.letters.providers.local import batch_pdf, print_batch

State = Letter.State


# states the record's chatter hears about (its followers see where the envelope is)
NOTED_STATES = {State.DISPATCHED: "was handed to the post", State.DELIVERED: "was delivered",
                State.RETURNED: "came back to the sender", State.ERROR: "could not be posted",
                State.CANCELLED: "was cancelled"}


def add_event(letter: Letter, state: str, message: str = "", *, source=LetterEvent.Source.MAILROOM,
              payload: dict | None = None, external_id: str = "") -> LetterEvent:
    """One line of the letter's timeline; the states in NOTED_STATES also leave a note on the
    record, so whoever follows it sees where the letter is."""
    event = LetterEvent.objects.create(letter=letter, state=state, message=message[:500],
                                       payload=payload or {}, source=source,
                                       external_id=external_id)
    if state in NOTED_STATES:
        record = letter.record
        if isinstance(record, MailThread):
            log_note(record, actor=None,
                     body_text=f"The letter to {letter.address_name} {NOTED_STATES[state]}"
                               f"{': ' + message if message else '.'}")
    return event


# ---------------------------------------------------------------- provider news

# how far along each state is: a late or replayed event never moves a letter backwards
PROGRESS = {State.DRAFT: 0, State.QUEUED: 1, State.SUBMITTED: 2, State.PRINTED: 3,
            State.DISPATCHED: 4, State.DELIVERED: 5, State.RETURNED: 6, State.ERROR: 6,
            State.CANCELLED: 6}


def record_provider_events(letter: Letter, events) -> int:
    """Apply what a provider says about a letter (a webhook or a status poll): one timeline
    line per event, deduplicated on the provider's event id, so a replayed webhook changes
    nothing. Returns how many events were new."""
    new = 0
    with transaction.atomic():
        letter = Letter.objects.select_for_update().get(pk=letter.pk)
        for event in events:
            if event.external_id and letter.events.filter(
                    external_id=event.external_id).exists():
                continue
            add_event(letter, event.state, event.message, source=LetterEvent.Source.PROVIDER,
                      payload=event.payload, external_id=event.external_id)
            new += 1
            if event.tracking_number:
                letter.tracking_number = event.tracking_number[:120]
            if PROGRESS.get(event.state, 0) > PROGRESS.get(letter.state, 0):
                letter.state = event.state
        if new:
            letter.updated_at = timezone.now()
            letter.save(update_fields=["state", "tracking_number", "updated_at"])
    return new


# ---------------------------------------------------------------- manage


def _require_manager(actor, letter: Letter, what: str) -> None:
    require(actor, "letters.change_letter", letter,
            denied=f"Only Mail Managers can {what} letters.")


def cancel(letter: Letter, *, actor) -> Letter:
    """Cancel while the provider still allows it (queued, or submitted to the print room and
    not printed yet)."""
    _require_manager(actor, letter, "cancel")
    with transaction.atomic():
        letter = Letter.objects.select_for_update().get(pk=letter.pk)
        if (letter.state == State.QUEUED and letter.lease_expires_at
                and letter.lease_expires_at > timezone.now()):
            raise ValidationError("This letter is being handed to the provider right now; "
                                  "try again in a minute.")
        if (letter.state == State.QUEUED and not letter.provider_ref
                and letter.provider.kind != PostalProvider.Kind.LOCAL
                and (letter.attempts or letter.lease_owner)):
            # an attempt that timed out or a worker that died may have left the letter with
            # the provider under its idempotency key: only the next attempt can tell
            when = (f" (next attempt at {timezone.localtime(letter.next_attempt_at):%H:%M})"
                    if letter.next_attempt_at else "")
            raise ValidationError(
                f"{letter.provider.name} may already have this letter from an earlier attempt "
                f"that got no answer; Mailroom asks again with the same key{when} and then "
                f"you can cancel it there while the provider allows.")
        if letter.state in (State.ERROR, State.DRAFT) or (
                letter.state == State.QUEUED and letter.batch_id is None):
            pass
        elif letter.state in (State.SUBMITTED, State.QUEUED):
            try:
                provider_for(letter.provider).cancel(letter)
            except ProviderError as exc:
                raise ValidationError(f"{exc.message} {exc.action}".strip()) from None
        else:
            raise ValidationError(
                f"A letter that is {letter.get_state_display().lower()} can no longer be "
                f"cancelled.")
        before = letter.state
        letter.state = State.CANCELLED
        letter.lease_owner, letter.lease_expires_at, letter.next_attempt_at = "", None, None
        letter.updated_at = timezone.now()
        letter.save()
        add_event(letter, State.CANCELLED, f"Cancelled by {actor}." if actor else "Cancelled.",
                  source=LetterEvent.Source.USER)
        audit("letters.letter.cancel", actor=actor, obj=letter,
              before={"state": before}, after={"state": letter.state})
    return letter


def retry(letter: Letter, *, actor) -> Letter:
    """A letter in error goes back to the queue, its error cleared, its attempts reset."""
    _require_manager(actor, letter, "retry")
    with transaction.atomic():
        letter = Letter.objects.select_for_update().get(pk=letter.pk)
        if letter.state != State.ERROR:
            raise ValidationError("Only a letter in error can be retried.")
        before = {"state": letter.state, "error_code": letter.error_code}
        letter.state = State.QUEUED
        letter.error_code = letter.error_message = letter.error_action = ""
        letter.attempts = 0
        letter.next_attempt_at = letter.updated_at = timezone.now()
        letter.save()
        add_event(letter, State.QUEUED, f"Retried by {actor}." if actor else "Retried.",
                  source=LetterEvent.Source.USER)
        audit("letters.letter.retry", actor=actor, obj=letter, before=before,
              after={"state": letter.state, "error_code": ""})
    return letter


def _move_batch(batch: PrintBatch, *, actor, to: str, letters_from: str, letters_to: str,
                stamp: str, message: str) -> PrintBatch:
    require(actor, "letters.change_printbatch", batch,
            denied="Only Mail Managers can mark print batches.")
    with transaction.atomic():
        batch = PrintBatch.objects.select_for_update().get(pk=batch.pk)
        order = [PrintBatch.State.OPEN, PrintBatch.State.PRINTED, PrintBatch.State.DISPATCHED]
        if order.index(batch.state) >= order.index(to):
            raise ValidationError(f"This batch is already {batch.get_state_display().lower()}.")
        now = timezone.now()
        before = batch.state
        batch.state = to
        setattr(batch, stamp, now)
        if to == PrintBatch.State.DISPATCHED and batch.printed_at is None:
            batch.printed_at = now
        batch.save()
        # QUEUED: in the batch (the print room accepted them) but not yet recorded by the worker
        sources = {letters_from, State.SUBMITTED, State.QUEUED}
        for letter in batch.letters.filter(state__in=sources).select_for_update():
            letter.state = letters_to
            letter.updated_at = now
            letter.save(update_fields=["state", "updated_at"])
            add_event(letter, letters_to, message, source=LetterEvent.Source.USER)
        audit(f"letters.batch.{to}", actor=actor, obj=batch, before={"state": before},
              after={"state": to})
    return batch


def mark_batch_printed(batch: PrintBatch, *, actor) -> PrintBatch:

    require(actor, "letters.change_printbatch", batch,
            denied="Only Mail Managers can mark print batches.")
    batch_pdf(batch)  # what was printed is the PDF kept with the batch
    return _move_batch(batch, actor=actor, to=PrintBatch.State.PRINTED,
                       letters_from=State.SUBMITTED, letters_to=State.PRINTED,
                       stamp="printed_at", message=f"Printed in batch #{batch.pk}.")


def mark_batch_dispatched(batch: PrintBatch, *, actor) -> PrintBatch:
    return _move_batch(batch, actor=actor, to=PrintBatch.State.DISPATCHED,
                       letters_from=State.PRINTED, letters_to=State.DISPATCHED,
                       stamp="dispatched_at", message=f"Handed to the post in batch #{batch.pk}.")


def send_batch_to_printer(batch: PrintBatch, *, actor) -> str:
    """Print the batch on the CUPS queue of its print room; "" or the plain error."""

    require(actor, "letters.change_printbatch", batch,
            denied="Only Mail Managers can print batches.")
    error = print_batch(batch)
    audit("letters.batch.print", actor=actor, obj=batch, after={"error": error})
    return error


def letters_for_record(record: models.Model):
    return Letter.objects.filter(content_type=ContentType.objects.get_for_model(record),
                                 object_id=record.pk)

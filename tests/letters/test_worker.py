"""The worker step: a queued letter reaches the print room once, errors retry or pause."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.utils import timezone
from pypdf import PdfReader

from mailroom.core.blobs import attachment_path
from mailroom.letters import lifecycle, services, tasks
from mailroom.letters.models import Letter, PostalProvider, PrintBatch
from mailroom.letters.providers import (
    PROVIDERS,
    Provider,
    ProviderError,
    local,
    register_provider,
)
from mailroom.outgoing.models import OutgoingMail


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def test_a_queued_letter_is_submitted_once_even_when_two_steps_run(bob, invoice):
    letter = services.send_by_post(invoice, actor=bob)
    assert tasks.letters_step("worker-a") is True
    assert tasks.letters_step("worker-b") is False  # nothing left for the second worker

    letter.refresh_from_db()
    assert letter.state == Letter.State.SUBMITTED
    assert letter.provider_ref == f"local-{letter.idempotency_key}"
    batch = letter.batch
    assert batch.state == PrintBatch.State.OPEN and batch.letter_count == 1
    assert batch.pdf_sha256 == ""  # built when somebody asks for it
    batch = local.batch_pdf(batch)
    batch_pdf = attachment_path(batch.pdf_sha256).read_bytes()
    text = pdf_text(batch_pdf)
    assert f"Print batch #{batch.pk}" in text and "Ada Lovelace" in text
    letter_pages = len(PdfReader(io.BytesIO(attachment_path(letter.pdf_sha256)
                                            .read_bytes())).pages)
    # the cover sheet (and its blank back), then the letter
    assert len(PdfReader(io.BytesIO(batch_pdf)).pages) == 2 + letter_pages
    assert list(letter.events.values_list("state", flat=True)) == ["queued", "submitted"]


def test_a_leased_letter_is_invisible_to_another_worker(bob, invoice):
    services.send_by_post(invoice, actor=bob)
    assert len(tasks.claim("worker-a")) == 1
    assert tasks.claim("worker-b") == []


def test_a_crash_after_the_print_room_accepted_does_not_print_twice(bob, invoice):
    """Worker A added the letter to the batch, then died before writing it down: its lease
    runs out, worker B submits again with the same key and the batch still holds one copy."""
    letter = services.send_by_post(invoice, actor=bob)
    services.send_by_post(invoice, actor=bob)  # a second letter, so the batch is shared
    from mailroom.letters.providers import provider_for

    provider_for(letter.provider).submit(letter, b"")  # accepted … then the crash
    Letter.objects.filter(pk=letter.pk).update(
        lease_owner="worker-a", lease_expires_at=timezone.now() - timedelta(seconds=1))

    tasks.letters_step("worker-b")

    letter.refresh_from_db()
    assert letter.state == Letter.State.SUBMITTED
    batch = letter.batch
    assert PrintBatch.objects.count() == 1
    assert batch.letter_count == 2
    batch = local.batch_pdf(batch)
    assert pdf_text(attachment_path(batch.pdf_sha256).read_bytes()).count("Ada Lovelace") >= 2
    assert batch.letters.count() == 2


def test_marking_a_batch_printed_then_dispatched_moves_its_letters(bob, mia, invoice):
    letter = services.send_by_post(invoice, actor=bob)
    tasks.letters_step("w")
    letter.refresh_from_db()
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        lifecycle.mark_batch_printed(letter.batch, actor=bob)
    lifecycle.mark_batch_printed(letter.batch, actor=mia)
    letter.refresh_from_db()
    assert letter.state == Letter.State.PRINTED
    lifecycle.mark_batch_dispatched(letter.batch, actor=mia)
    letter.refresh_from_db()
    assert letter.state == Letter.State.DISPATCHED
    assert list(letter.events.values_list("state", flat=True))[-2:] == ["printed", "dispatched"]


class CreditCounter:
    calls = 0
    broke = True


@register_provider
class NoCreditProvider(Provider):
    """A provider whose account is empty until the test says otherwise."""

    kind = "test-no-credit"

    def submit(self, letter, pdf):
        CreditCounter.calls += 1
        if CreditCounter.broke:
            raise ProviderError("CREDIT_ERROR", "The account has no credit left.", credit=True,
                                action="Top up the account.")
        from mailroom.letters.providers import SubmitResult

        return SubmitResult(provider_id=f"nc-{letter.idempotency_key}")

    def price(self, letter):
        return None, ""


@pytest.fixture
def broke_provider(acme):
    CreditCounter.calls, CreditCounter.broke = 0, True
    yield PostalProvider.objects.create(company=acme, name="Broke post", kind="test-no-credit")
    assert PROVIDERS["test-no-credit"] is NoCreditProvider


def test_a_credit_error_pauses_the_provider_tells_managers_once_and_resumes(
        bob, mia, domain, invoice, broke_provider):
    options = services.LetterOptions(provider=broke_provider)
    first = services.send_by_post(invoice, actor=bob, options=options)
    second = services.send_by_post(invoice, actor=bob, options=options)

    tasks.letters_step("w")
    tasks.letters_step("w")  # paused: nothing more is tried

    broke_provider.refresh_from_db()
    assert broke_provider.is_paused()
    assert "no credit" in broke_provider.paused_reason
    assert CreditCounter.calls == 1
    assert set(Letter.objects.values_list("state", flat=True)) == {"queued"}
    notices = OutgoingMail.objects.filter(subject__contains="Broke post is paused")
    assert notices.count() == 1
    assert notices.get().recipients.get().address == "mia@acme.example"

    # the Inbox says it too (for those who read Mailroom, not email), to Mail Managers only
    from mailroom.chatter.inbox import inbox_source

    letters_inbox = inbox_source("letters")
    assert letters_inbox.count(mia) == 1 and letters_inbox.count(bob) == 0
    assert "Broke post is paused" in letters_inbox.items(mia, 10)[0].title

    # credit comes back and the pause ends: both letters go out, no new notice
    CreditCounter.broke = False
    PostalProvider.objects.filter(pk=broke_provider.pk).update(
        paused_until=timezone.now() - timedelta(seconds=1))
    tasks.letters_step("w")
    for letter in (first, second):
        letter.refresh_from_db()
        assert letter.state == Letter.State.SUBMITTED
    assert notices.count() == 1
    assert letters_inbox.count(mia) == 0


class Flaky(Provider):
    kind = "test-flaky"

    def submit(self, letter, pdf):
        raise ProviderError("RATE_LIMIT", "The provider asks us to slow down.", transient=True)


def test_transient_errors_back_off_then_give_up_in_plain_words(acme, bob, invoice):
    register_provider(Flaky)
    provider = PostalProvider.objects.create(company=acme, name="Flaky", kind="test-flaky")
    letter = services.send_by_post(invoice, actor=bob,
                                   options=services.LetterOptions(provider=provider))
    tasks.letters_step("w")
    letter.refresh_from_db()
    assert letter.state == Letter.State.QUEUED and letter.attempts == 1
    assert letter.next_attempt_at > timezone.now() + timedelta(seconds=30)
    for _ in tasks.BACKOFF_MINUTES:
        Letter.objects.filter(pk=letter.pk).update(next_attempt_at=timezone.now())
        tasks.letters_step("w")
    letter.refresh_from_db()
    assert letter.state == Letter.State.ERROR
    assert "slow down" in letter.error_message and "gave up" in letter.error_message
    assert letter.error_action
    from mailroom.chatter.inbox import inbox_source

    [item] = inbox_source("letters").items(bob, 10)  # the sender hears of it in the Inbox
    assert item.tone == "danger" and "slow down" in item.summary


class Tracking(Provider):
    """Answers a status poll with the same two events every time (a replay)."""

    kind = "test-tracking"

    def submit(self, letter, pdf):
        from mailroom.letters.providers import SubmitResult

        return SubmitResult(provider_id="t-1")

    def status(self, letter):
        from mailroom.letters.providers.base import StatusEvent

        return [StatusEvent("dispatched", "Handed to the post.", external_id="ev-1"),
                StatusEvent("delivered", "Delivered.", external_id="ev-2",
                            tracking_number="RR123456789FR")]


def test_the_status_poll_records_provider_events_once(acme, bob, invoice):
    register_provider(Tracking)
    provider = PostalProvider.objects.create(company=acme, name="Tracked", kind="test-tracking")
    letter = services.send_by_post(invoice, actor=bob,
                                   options=services.LetterOptions(provider=provider))
    tasks.letters_step("w")
    assert tasks.poll_letters() == 2
    assert tasks.poll_letters() == 0  # delivered: no more polling, and replays change nothing
    letter.refresh_from_db()
    assert letter.state == Letter.State.DELIVERED
    assert letter.tracking_number == "RR123456789FR"
    assert lifecycle.record_provider_events(letter, Tracking(provider).status(letter)) == 0
    assert letter.events.filter(source="provider").count() == 3  # submitted + the two


def test_a_printer_queue_that_fails_is_a_plain_error_on_the_batch(bob, mia, invoice):
    letter = services.send_by_post(invoice, actor=bob)
    PostalProvider.objects.filter(pk=letter.provider_id).update(
        settings={"cups_queue": "no-such-printer-queue"})
    tasks.letters_step("w")
    letter.refresh_from_db()
    error = lifecycle.send_batch_to_printer(letter.batch, actor=mia)
    assert error  # CUPS missing, or the queue unknown: either way said in words
    assert "no-such-printer-queue" in error or "not installed" in error
    letter.batch.refresh_from_db()
    assert letter.batch.print_error == error


def test_the_batch_pdf_follows_letters_joining_and_leaving(bob, mia, invoice):
    first = services.send_by_post(invoice, actor=bob)
    tasks.letters_step("w")
    first.refresh_from_db()
    one = local.batch_pdf(first.batch).pdf_sha256
    pages_one = len(PdfReader(io.BytesIO(attachment_path(one).read_bytes())).pages)
    assert local.batch_pdf(first.batch).pdf_sha256 == one  # nothing changed: no rebuild

    second = services.send_by_post(invoice, actor=bob)
    tasks.letters_step("w")
    two = local.batch_pdf(first.batch)
    assert two.letter_count == 2 and two.pdf_sha256 != one

    lifecycle.cancel(second, actor=mia)  # submitted, not printed: it leaves the batch
    again = local.batch_pdf(first.batch)
    assert again.letter_count == 1
    pages = len(PdfReader(io.BytesIO(attachment_path(again.pdf_sha256).read_bytes())).pages)
    assert pages == pages_one

"""Sending a record by post: the address check, what a letter keeps, cancel and retry."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from pypdf import PdfReader

from mailroom.chatter.models import Attachment, Message
from mailroom.chatter.services import thread_queryset
from mailroom.contacts.models import Partner
from mailroom.core.blobs import attachment_path
from mailroom.core.models import AuditLog
from mailroom.letters import lifecycle, services
from mailroom.letters.models import Letter, LetterEvent, PostalProvider, paper_for_country
from mailroom.letters.services import LetterOptions


def test_check_address_names_each_missing_field(acme):
    partner = Partner.objects.create(company=acme, name="Nowhere Ltd", street="1 Main St")
    assert services.check_address(partner) == ["city", "postcode (ZIP)", "country"]
    partner.city, partner.zip, partner.country = "Leeds", "LS1 1AA", "GB"
    assert services.check_address(partner) == []


def test_a_contact_without_address_uses_its_organisation(acme, customer):
    person = Partner.objects.create(company=acme, name="Grace Hopper", parent=customer)
    assert services.check_address(person) == []
    name, lines, country = services.address_snapshot(person)
    assert lines[:3] == ["Grace Hopper", "Ada Lovelace", "12 Rue de la Paix"]
    assert country == "FR"


def test_missing_zip_refuses_the_letter_naming_the_field(acme, bob, invoice, customer):
    customer.zip = ""
    customer.save()
    with pytest.raises(ValidationError) as refused:
        services.send_by_post(invoice, actor=bob)
    assert "postcode (ZIP)" in str(refused.value)
    assert not Letter.objects.exists()
    preview = services.prepare(invoice, actor=bob)
    assert any("postcode (ZIP)" in problem for problem in preview.problems)


def test_send_by_post_stores_pdf_snapshot_event_and_chatter_note(acme, bob, invoice, customer):
    preview = services.prepare(invoice, actor=bob)
    assert preview.problems == []
    assert preview.address_lines[0] == "Ada Lovelace"
    assert preview.pages >= 1

    letter = services.send_by_post(invoice, actor=bob)

    assert letter.state == Letter.State.QUEUED
    assert letter.paper == paper_for_country("FR") == "a4"
    stored = attachment_path(letter.pdf_sha256).read_bytes()
    assert len(stored) == letter.pdf_size
    assert len(PdfReader(io.BytesIO(stored)).pages) == letter.pages
    assert letter.address_lines == ["Ada Lovelace", "12 Rue de la Paix", "75002 Paris", "France"]
    assert letter.documents[0]["kind"] == "record"
    # the snapshot does not follow later edits of the contact
    customer.street = "1 New Street"
    customer.save()
    letter.refresh_from_db()
    assert letter.address_lines[1] == "12 Rue de la Paix"
    assert list(letter.events.values_list("state", flat=True)) == ["queued"]
    # the record's chatter has a note with the PDF
    note = thread_queryset(Message, invoice).filter(message_type=Message.Type.NOTE).last()
    assert "Letter queued" in note.body_html
    attachment = Attachment.objects.get(message=note)
    assert attachment.sha256 == letter.pdf_sha256
    # a local print room was made for the company on first use
    assert letter.provider.kind == PostalProvider.Kind.LOCAL


def test_a_globex_user_cannot_send_an_acme_record(charlie, invoice):
    with pytest.raises(PermissionDenied):
        services.send_by_post(invoice, actor=charlie)


def test_cancel_and_retry_are_for_mail_managers_and_audited(bob, mia, invoice):
    letter = services.send_by_post(invoice, actor=bob)
    with pytest.raises(PermissionDenied):
        lifecycle.cancel(letter, actor=bob)
    with pytest.raises(ValidationError):
        lifecycle.retry(letter, actor=mia)  # not in error

    Letter.objects.filter(pk=letter.pk).update(state=Letter.State.ERROR, error_code="X",
                                               error_message="Refused.")
    with pytest.raises(PermissionDenied):
        lifecycle.retry(letter, actor=bob)
    letter = lifecycle.retry(letter, actor=mia)
    assert letter.state == Letter.State.QUEUED and letter.error_code == ""
    assert AuditLog.objects.filter(action="letters.letter.retry", actor=mia).exists()

    letter = lifecycle.cancel(letter, actor=mia)
    assert letter.state == Letter.State.CANCELLED
    assert AuditLog.objects.filter(action="letters.letter.cancel", actor=mia).exists()
    assert letter.events.filter(state="cancelled", source=LetterEvent.Source.USER).exists()
    with pytest.raises(ValidationError):
        lifecycle.cancel(letter, actor=mia)


def test_attachments_are_merged_after_the_document(bob, invoice):
    from mailroom.letters.rendering import html_to_pdf

    terms = html_to_pdf("<p>Terms</p><p style='page-break-before: always'>More terms</p>")
    plain = services.send_by_post(invoice, actor=bob, options=LetterOptions(duplex=False))
    with_terms = services.send_by_post(
        invoice, actor=bob, options=LetterOptions(attachments=[("terms.pdf", terms)],
                                                  duplex=False))
    assert with_terms.pages == plain.pages + 2
    assert with_terms.sheets == with_terms.pages
    assert [d["kind"] for d in with_terms.documents] == ["record", "attachment"]


def test_the_record_chatter_hears_when_the_letter_is_dispatched_or_cancelled(bob, mia, invoice):
    from mailroom.letters import tasks

    letter = services.send_by_post(invoice, actor=bob)
    tasks.letters_step("w")
    letter.refresh_from_db()
    lifecycle.mark_batch_dispatched(letter.batch, actor=mia)
    notes = thread_queryset(Message, invoice).filter(message_type=Message.Type.NOTE)
    assert any("handed to the post" in note.body_html for note in notes)
    other = services.send_by_post(invoice, actor=bob)
    lifecycle.cancel(other, actor=mia)
    assert any("was cancelled" in note.body_html for note in notes.all())



def test_a_document_without_the_address_in_the_window_gets_a_cover_page(bob, invoice):
    """The invoice prints the customer's address outside the DIN 5008 A window, so the letter
    gets a cover page with it — else the envelope would show nothing."""
    preview = services.prepare(invoice, actor=bob, options=LetterOptions(duplex=False))
    assert any("cover page" in note for note in preview.notes)
    letter = services.send_by_post(invoice, actor=bob, options=LetterOptions(duplex=False))
    assert letter.cover_page
    assert letter.pages == preview.pages


def test_a_document_showing_the_address_in_the_window_goes_as_it_is(acme, bob, customer):
    from mailroom.letters.rendering import html_to_pdf

    own = html_to_pdf(
        "<style>@page { size: A4; margin: 0 } .a { position: absolute; left: 26mm; "
        "top: 46mm; font: 10pt sans-serif }</style><div class='a'>Ada Lovelace<br>"
        "12 Rue de la Paix<br>75002 Paris<br>France</div>")
    options = LetterOptions(include_document=False, uploads=[("letter.pdf", own)],
                            duplex=False)
    preview = services.prepare(customer, actor=bob, partner=customer, options=options)
    assert preview.notes == [] and preview.problems == []
    letter = services.send_by_post(customer, actor=bob, partner=customer, options=options)
    assert not letter.cover_page and letter.pages == 1


def test_a_letter_being_handed_to_the_provider_cannot_be_cancelled_meanwhile(bob, mia, invoice):
    from mailroom.letters import tasks

    letter = services.send_by_post(invoice, actor=bob)
    assert tasks.claim("worker-a") == [letter.pk]
    with pytest.raises(ValidationError) as refused:
        lifecycle.cancel(letter, actor=mia)
    assert "right now" in str(refused.value)


def test_a_letter_a_provider_may_already_have_cannot_be_cancelled_blindly(bob, mia, invoice,
                                                                         acme):
    """An attempt that got no answer (a timeout, a worker killed after the provider accepted)
    may have left the letter with Pingen or Lob: cancelling only in Mailroom would let it be
    posted. The refusal says why; a letter never tried cancels at once."""
    from datetime import timedelta

    from django.utils import timezone

    remote = PostalProvider.objects.create(company=acme, name="Remote", kind="pingen")
    options = LetterOptions(provider=remote)
    tried = services.send_by_post(invoice, actor=bob, options=options)
    Letter.objects.filter(pk=tried.pk).update(  # what a timed-out attempt leaves
        attempts=1, error_code="TIMEOUT", next_attempt_at=timezone.now() + timedelta(minutes=5))
    with pytest.raises(ValidationError) as refused:
        lifecycle.cancel(tried, actor=mia)
    assert "may already have this letter" in str(refused.value)
    crashed = services.send_by_post(invoice, actor=bob, options=options)
    Letter.objects.filter(pk=crashed.pk).update(  # a worker died holding it
        lease_owner="dead-worker", lease_expires_at=timezone.now() - timedelta(minutes=1))
    with pytest.raises(ValidationError):
        lifecycle.cancel(crashed, actor=mia)
    fresh = services.send_by_post(invoice, actor=bob, options=options)
    assert lifecycle.cancel(fresh, actor=mia).state == "cancelled"

"""Sending letters: a record by post (one or many), its address checked and snapshotted.

Cancel, retry, provider news and the print room's batches are in lifecycle.py.

Each function is one transaction with an explicit actor. Rendering the PDF (slow) happens
before the transaction opens; blobs are content-addressed, so one stored for a letter that
then fails validation costs nothing but disk that the same bytes would take anyway.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from mailroom.chatter.models import MailThread
from mailroom.chatter.services import can_access, log_note, store_attachment
from mailroom.core.access import require
from mailroom.core.blobs import store_bytes
from mailroom.documents.pdf import NoDocument, document_source
from mailroom.documents.registry import document_for
from mailroom.letters.lifecycle import add_event
from mailroom.letters.models import (
    Letter,
    LetterEvent,
    PostalProvider,
    paper_for_country,
)
from mailroom.letters.provider_services import default_provider
from mailroom.letters.providers import ProviderError, provider_for
from mailroom.letters.render_jobs import JobDocument, RenderJob, RenderOutcome
from mailroom.letters.render_jobs import run as run_job
from mailroom.letters.render_pool import Renderer
from mailroom.letters.rendering import RenderedLetter, letter_spec

State = Letter.State
# the address fields a letter cannot go without, with the words a person reads
REQUIRED_ADDRESS = (("street", "street"), ("city", "city"), ("zip", "postcode (ZIP)"),
                    ("country", "country"))


@dataclass
class LetterOptions:
    color: bool = False
    duplex: bool = True
    cover_page: bool = False
    postage: str = Letter.Postage.STANDARD
    include_document: bool = True  # the record's own PDF from the document registry
    uploads: list[tuple[str, bytes]] = field(default_factory=list)  # PDFs instead of/after it
    attachments: list[tuple[str, bytes]] = field(default_factory=list)  # merged after (T&Cs)
    provider: PostalProvider | None = None
    # printed on a cover page below the address (an automation's reminder): text or HTML
    message: str = ""


@dataclass
class LetterPreview:
    address_lines: list[str]
    pages: int
    sheets: int
    price: Decimal | None
    currency: str
    problems: list[str]
    provider: PostalProvider | None = None
    paper: str = ""
    notes: list[str] = field(default_factory=list)  # worth knowing, not stopping the letter


# ---------------------------------------------------------------- address


def address_source(partner):
    """The contact whose postal address is printed: their own, else their organisation's."""
    if any(getattr(partner, name) for name, _ in REQUIRED_ADDRESS):
        return partner
    parent = partner.parent if partner.parent_id else None
    return parent if parent is not None else partner


def check_address(partner) -> list[str]:
    """The missing address fields of `partner`, in plain words ("street", "postcode (ZIP)")."""
    if partner is None:
        return ["recipient"]
    source = address_source(partner)
    return [label for name, label in REQUIRED_ADDRESS
            if not str(getattr(source, name) or "").strip()]


def missing_address_message(partner, missing: list[str]) -> str:
    if missing == ["recipient"]:
        return "The letter has no recipient: choose a contact with a postal address."
    return f"The address of {partner.name} has no {', no '.join(missing)}."


def address_snapshot(partner) -> tuple[str, list[str], str]:
    """(name, lines as printed, country code), frozen into the letter."""
    source = address_source(partner)
    lines = [partner.name]
    if source is not partner:
        lines.append(source.name)
    lines += source.address_lines
    return partner.name, lines, str(source.country.code if source.country else "")


# ---------------------------------------------------------------- send


def _record_label(record) -> str:
    spec = document_for(record)
    if spec is not None:
        try:
            return spec.filename(record).removesuffix(".pdf")[:200]
        except Exception:  # noqa: BLE001 - a label is cosmetic; the record's str() will do
            pass
    return str(record)[:200]


def _job_documents(record, options: LetterOptions) -> tuple[JobDocument, ...]:
    """What goes in the envelope, in the order it prints: the record's own document (its HTML,
    rendered by the job), then uploads, then attachments."""
    docs: list[JobDocument] = []
    if options.include_document and document_for(record) is not None:
        try:
            source = document_source(record)
        except NoDocument:
            pass
        else:
            docs.append(JobDocument("record", source.filename, source=source))
    docs += [JobDocument("upload", name, pdf=content) for name, content in options.uploads]
    docs += [JobDocument("attachment", name, pdf=content)
             for name, content in options.attachments]
    return tuple(docs)


def _job(letter: Letter, docs: tuple[JobDocument, ...]) -> RenderJob:
    return RenderJob(spec=letter_spec(letter, []), documents=docs,
                     address_name=letter.address_name)


COVER_NOTE = ("The document's first page does not show {name} in the envelope window: a "
              "cover page with the address goes in front of it.")


ADDRESS_PARTS = ("street", "street2", "zip", "city", "state")


def address_parts(partner) -> dict[str, str]:
    """The printed address field by field (providers such as Lob take it that way)."""
    source = address_source(partner)
    parts = {name: str(getattr(source, name) or "") for name in ADDRESS_PARTS}
    parts["name"] = partner.name
    parts["organisation"] = source.name if source is not partner else ""
    parts["country"] = str(source.country.code if source.country else "")
    return parts


def _draft(record, partner, options: LetterOptions, provider: PostalProvider) -> Letter:
    name, lines, country = address_snapshot(partner)
    company = record.company
    letter = Letter(
        company=company, content_type=ContentType.objects.get_for_model(record),
        object_id=record.pk, record_label=_record_label(record), partner=partner,
        address_name=name, address_lines=lines, address_country=country,
        address_parts=address_parts(partner), color=options.color, duplex=options.duplex,
        cover_page=options.cover_page,
        postage=options.postage, paper=paper_for_country(str(company.country or "")),
        provider=provider)
    # not a column: the PDF that prints it is rendered once, when the letter is queued
    letter.cover_message = options.message
    if options.message.strip():
        letter.cover_page = True
    return letter


def _check_sender(actor, record) -> None:
    require(actor, "letters.add_letter", record,
            denied="Your roles do not allow you to send letters.",
            elsewhere="This record belongs to another company.")
    if not can_access(actor, record):
        raise PermissionDenied("You cannot access this record.")


def _provider(record, options: LetterOptions, actor, *, create: bool = True) -> PostalProvider:
    provider = options.provider or default_provider(record.company, actor=actor, create=create)
    if provider.company_id != record.company_id:
        raise ValidationError({"provider": "The postal provider belongs to another company."})
    return provider


def prepare(record, *, actor, partner=None, options: LetterOptions | None = None
            ) -> LetterPreview:
    """What the letter will be before it is sent: the address as printed, the page and sheet
    count, the price estimate and the problems that would stop it (red lines)."""
    _check_sender(actor, record)
    options = options or LetterOptions()
    partner = partner if partner is not None else getattr(record, "partner", None)
    missing = check_address(partner)
    problems = [missing_address_message(partner, missing)] if missing else []
    provider = _provider(record, options, actor, create=False)
    if not provider.active:
        problems.append(f"The postal provider {provider.name} is switched off.")
    notes = []
    if provider.is_paused():
        notes.append(f"The postal provider {provider.name} is paused: "
                        f"{provider.paused_reason} Letters wait in the queue until it resumes.")
    if partner is None:
        return LetterPreview([], 0, 0, None, "", problems, provider, notes=notes)
    letter = _draft(record, partner, options, provider)
    docs = _job_documents(record, options)
    if not docs and not options.cover_page:
        problems.append("There is nothing to post: this record has no document; "
                        "upload a PDF.")
        return LetterPreview(letter.address_lines, 0, 0, None, "", problems, provider,
                             letter.paper, notes)
    outcome = run_job(_job(letter, docs))
    if outcome.cover_added:
        letter.cover_page = True
        notes.append(COVER_NOTE.format(name=letter.address_name))
    if outcome.letter is None:
        problems.append(outcome.error)
        return LetterPreview(letter.address_lines, 0, 0, None, "", problems, provider,
                             letter.paper, notes)
    rendered = outcome.letter
    letter.pages, letter.sheets = rendered.pages, rendered.sheets
    letter.paper = rendered.paper or letter.paper
    try:
        price, currency = provider_for(provider).price(letter)
    except ProviderError as exc:
        price, currency = None, ""
        problems.append(exc.message)
    return LetterPreview(letter.address_lines, rendered.pages, rendered.sheets, price, currency,
                         problems, provider, letter.paper, notes)


@dataclass
class _Planned:
    """A letter checked and snapshotted, waiting for its PDF."""

    record: models.Model
    letter: Letter
    job: RenderJob


def _plan(record, *, actor, partner, options: LetterOptions | None,
          idempotency_key: uuid.UUID | None) -> Letter | _Planned:
    """Everything before the PDF: permission, the address (a missing field is a
    ValidationError naming it), the provider, the snapshot. An idempotency key already used
    gives the letter made with it."""
    _check_sender(actor, record)
    if idempotency_key is not None:
        existing = Letter.objects.filter(idempotency_key=idempotency_key,
                                         company_id=record.company_id).first()
        if existing is not None:
            return existing
    options = options or LetterOptions()
    partner = partner if partner is not None else getattr(record, "partner", None)
    missing = check_address(partner)
    if missing:
        raise ValidationError({"partner": missing_address_message(partner, missing)})
    if partner.company_id != record.company_id:
        raise ValidationError({"partner": "The contact belongs to another company."})
    provider = _provider(record, options, actor)
    if not provider.active:
        raise ValidationError({"provider": f"The postal provider {provider.name} is switched off."})
    letter = _draft(record, partner, options, provider)
    if idempotency_key is not None:
        letter.idempotency_key = idempotency_key
    docs = _job_documents(record, options)
    if not docs and not options.cover_page:
        raise ValidationError({"documents": "There is nothing to post: this record has no "
                                            "document; upload a PDF."})
    return _Planned(record, letter, _job(letter, docs))


def _finish(planned: _Planned, outcome: RenderOutcome, *, actor) -> Letter:
    """Store the rendered letter and queue it (one transaction)."""
    record, letter = planned.record, planned.letter
    if outcome.letter is None:
        raise ValidationError({"documents": outcome.error})
    rendered = outcome.letter
    letter.cover_page = letter.cover_page or outcome.cover_added
    letter.pdf_sha256, letter.pdf_size = store_bytes(rendered.pdf)
    letter.pages, letter.sheets = rendered.pages, rendered.sheets
    letter.paper = rendered.paper or letter.paper
    letter.documents = []
    for kind, name, content in outcome.documents:
        sha256, size = store_bytes(content)
        letter.documents.append({"kind": kind, "name": name, "sha256": sha256, "size": size})
    provider = letter.provider
    try:
        letter.price, letter.currency = provider_for(provider).price(letter)
    except ProviderError:
        letter.price, letter.currency = None, ""
    now = timezone.now()
    key = letter.idempotency_key
    try:
        with transaction.atomic():
            _queue(letter, record, provider, rendered, actor, now)
    except IntegrityError:
        existing = Letter.objects.filter(idempotency_key=key).first()
        if existing is None:
            raise
        if existing.company_id != record.company_id:
            raise ValidationError("This idempotency key was used for another letter.") from None
        return existing
    return letter


def send_by_post(record, *, actor, partner=None, options: LetterOptions | None = None,
                 idempotency_key: uuid.UUID | None = None) -> Letter:
    """Queue `record` as a letter to `partner` (default: the record's customer).

    Validated now — a missing address is a ValidationError naming the field, never a failed
    letter later. The final PDF is rendered and stored now (content-addressed), the letter is
    queued for the worker, and the record's chatter gets a note with the PDF.

    `idempotency_key`: a repeated call with the same key (a mass send's chunk posted twice, an
    API client retrying) returns the letter already made instead of a second one."""
    planned = _plan(record, actor=actor, partner=partner, options=options,
                    idempotency_key=idempotency_key)
    if isinstance(planned, Letter):
        return planned
    return _finish(planned, run_job(planned.job), actor=actor)


def send_many_by_post(records, *, actor, options: LetterOptions | None = None,
                      keys: dict | None = None) -> list[Letter | Exception]:
    """One letter per record (the list action), rendered on every core by the render pool
    while the finished ones are stored and queued, each in its own transaction. Returns, per
    record and in order, its Letter or the ValidationError/PermissionDenied that stopped it
    (in plain words; the other letters go on). `keys`: record pk → idempotency key."""
    keys = keys or {}
    records = list(records)
    results: list[Letter | Exception | None] = []
    planned: list[tuple[int, _Planned]] = []
    renderer = Renderer(len(records))
    for record in records:
        try:
            plan = _plan(record, actor=actor, partner=None, options=options,
                         idempotency_key=keys.get(record.pk))
        except (ValidationError, PermissionDenied) as exc:
            results.append(exc)
            continue
        if isinstance(plan, Letter):
            results.append(plan)
        else:
            renderer.submit(plan.job)  # rendering starts while the next record is planned
            planned.append((len(results), plan))
            results.append(None)
    for (index, plan), outcome in zip(planned, renderer.results(), strict=True):
        try:
            results[index] = _finish(plan, outcome, actor=actor)
        except (ValidationError, PermissionDenied) as exc:
            results[index] = exc
    return [result for result in results if result is not None]


def _queue(letter: Letter, record, provider: PostalProvider, rendered: RenderedLetter, actor,
           now) -> None:
    """Write the queued letter, its first event and the note on the record (one transaction,
    the caller's)."""
    letter.state = State.QUEUED
    letter.next_attempt_at = now
    letter.created_by = actor if actor is not None and actor.pk else None
    letter.created_at = letter.updated_at = now
    letter.save()
    add_event(letter, State.QUEUED, f"Queued for {provider.name}.",
              source=LetterEvent.Source.USER if actor else LetterEvent.Source.MAILROOM)
    if isinstance(record, MailThread):
        filename = f"Letter – {letter.record_label or record.pk}.pdf"
        attachment = store_attachment(record, actor=actor, name=filename,
                                      stream=io.BytesIO(rendered.pdf),
                                      mimetype="application/pdf")
        log_note(record, actor=actor, attachments=[attachment],
                 body_text=f"Letter queued for posting to {letter.address_name} "
                           f"({', '.join(letter.address_lines[1:])}) – {letter.pages} "
                           f"page(s), {letter.sheets} sheet(s), through {provider.name}.")

"""The local print room: letters pile up in today's open batch for their paper; a person
prints the batch PDF (a cover sheet listing its letters, then every letter, each starting on
a new sheet) and marks it printed, then dispatched.

Never twice: `submit` looks the letter's idempotency key up in the batches first, so a worker
that crashed after adding the letter but before recording it finds it there and returns the
same answer. Optionally `print_batch` sends the batch PDF to a CUPS queue with `lp` when the
provider's settings name one (`{"cups_queue": "office-laser"}`); a failure is a plain error
on the batch, never a traceback.
"""

from __future__ import annotations

import html
import shutil
import subprocess
from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from mailroom.core.blobs import BlobError, local_copy, read_blob, store_bytes
from mailroom.letters.models import Letter, PrintBatch
from mailroom.letters.providers.base import Provider, ProviderError, SubmitResult, register_provider
from mailroom.letters.rendering import html_to_pdf, merge_pdfs

PAPER_CSS = {"a4": "A4", "letter": "letter"}


def _decimal(value, default: str = "0") -> Decimal:
    try:
        return Decimal(str(value if value not in (None, "") else default))
    except InvalidOperation:
        return Decimal(default)


def _reference(letter) -> str:
    return f"local-{letter.idempotency_key}"


@register_provider
class LocalPrintRoom(Provider):
    kind = "local"

    def submit(self, letter, pdf: bytes) -> SubmitResult:
        with transaction.atomic():
            known = (Letter.objects.filter(idempotency_key=letter.idempotency_key,
                                           batch__isnull=False)
                     .values_list("batch_id", flat=True).first())
            if known is not None:  # submitted before a crash: the same answer, no second copy
                return SubmitResult(provider_id=_reference(letter), price=self._price(letter),
                                    currency=letter.company.currency,
                                    message=f"Already in print batch #{known}.")
            batch, _ = PrintBatch.objects.get_or_create(
                provider=self.row, state=PrintBatch.State.OPEN, paper=letter.paper,
                day=timezone.localdate(), defaults={"company_id": letter.company_id})
            Letter.objects.filter(pk=letter.pk).update(batch=batch)
            batch_changed(batch)
        return SubmitResult(provider_id=_reference(letter), price=self._price(letter),
                            currency=letter.company.currency,
                            message=f"Added to print batch #{batch.pk}.")

    def cancel(self, letter) -> None:
        batch = PrintBatch.objects.filter(pk=letter.batch_id).first()
        if batch is not None and batch.state != PrintBatch.State.OPEN:
            raise ProviderError("ALREADY_PRINTED", "This letter is already printed.",
                                action="Take it out of the printed pile by hand.")
        Letter.objects.filter(pk=letter.pk).update(batch=None)
        if batch is not None:
            batch_changed(batch)

    def test_connection(self) -> str:
        queue = (self.row.settings or {}).get("cups_queue", "")
        if not queue:
            return ("The print room works offline: batches wait in Letters › Print batches "
                    "to be printed by hand.")
        if shutil.which("lpstat") is None:
            raise ProviderError("NO_CUPS", "The CUPS commands (lp, lpstat) are not installed on "
                                "this server.", action="Install CUPS, or clear cups_queue.")
        try:
            done = subprocess.run(["lpstat", "-p", str(queue)], capture_output=True, text=True,
                                  timeout=15, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ProviderError("NO_CUPS", f"CUPS did not answer ({exc}).") from None
        if done.returncode != 0:
            raise ProviderError("UNKNOWN_QUEUE", f"The printer queue {queue} is unknown to CUPS: "
                                f"{(done.stderr or done.stdout).strip()[:200]}",
                                action="Check the queue name with lpstat -p.")
        return f"The printer queue {queue} answers: {done.stdout.strip()[:200]}"

    def _price(self, letter) -> Decimal:
        settings = self.row.settings or {}
        return (_decimal(settings.get("price_per_letter"))
                + _decimal(settings.get("price_per_sheet")) * letter.sheets
                ).quantize(Decimal("0.01"))

    def price(self, letter):
        return self._price(letter), letter.company.currency


def _cover_sheet(batch, letters) -> bytes:
    rows = "".join(
        f"<tr><td>{i}</td><td>{html.escape(letter.address_name)}</td>"
        f"<td>{html.escape(letter.address_country)}</td>"
        f"<td>{html.escape(letter.record_label)}</td><td>{letter.pages}</td>"
        f"<td>{letter.sheets}</td><td>{html.escape(letter.get_postage_display())}</td></tr>"
        for i, letter in enumerate(letters, start=1))
    markup = f"""<!doctype html><html><head><meta charset="utf-8"><style>
@page {{ size: {PAPER_CSS.get(batch.paper, "A4")}; margin: 15mm; }}
body {{ font-family: sans-serif; font-size: 9pt; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-bottom: 0.3pt solid #999; padding: 1.5mm; text-align: left; }}
</style></head><body>
<h1>Print batch #{batch.pk} – {batch.day:%Y-%m-%d}</h1>
<p>{html.escape(batch.company.name)} · {len(letters)} letter(s) · paper
{html.escape(batch.get_paper_display())}</p>
<table><tr><th>#</th><th>Recipient</th><th>Country</th><th>Document</th><th>Pages</th>
<th>Sheets</th><th>Postage</th></tr>{rows}</table></body></html>"""
    return html_to_pdf(markup)


def _batch_letters(batch: PrintBatch) -> list[Letter]:
    return list(batch.letters.exclude(state=Letter.State.CANCELLED).order_by("id"))


def batch_changed(batch: PrintBatch) -> None:
    """A letter joined or left: new counts now, a new PDF when somebody asks for it."""
    letters = _batch_letters(batch)
    PrintBatch.objects.filter(pk=batch.pk).update(
        letter_count=len(letters), sheet_count=sum(letter.sheets for letter in letters) + 1,
        pdf_revision=F("pdf_revision") + 1)


def batch_pdf(batch: PrintBatch) -> PrintBatch:
    """The batch with an up-to-date PDF: the cover sheet listing its letters, then each letter
    (each on its own sheets). Rebuilt only when letters changed since the last build; a build
    that raced with a new letter is not kept as current."""
    batch.refresh_from_db()
    if batch.pdf_sha256 and batch.pdf_built_revision == batch.pdf_revision:
        return batch
    revision = batch.pdf_revision
    letters = _batch_letters(batch)
    parts = [_cover_sheet(batch, letters)]
    parts += [read_blob(letter.pdf_sha256) for letter in letters]
    pdf, _pages = merge_pdfs(parts, duplex=True)
    sha256, size = store_bytes(pdf, max_bytes=1 << 34)
    PrintBatch.objects.filter(pk=batch.pk, pdf_revision=revision).update(
        pdf_sha256=sha256, pdf_size=size, pdf_built_revision=revision)
    batch.refresh_from_db()
    if batch.pdf_built_revision != batch.pdf_revision:  # changed meanwhile: build again
        return batch_pdf(batch)
    return batch


def print_batch(batch: PrintBatch) -> str:
    """Send the batch PDF to the CUPS queue named in the provider's settings. Returns "" on
    success, else the plain-words error (also kept on the batch)."""
    queue = (batch.provider.settings or {}).get("cups_queue", "")
    batch = batch_pdf(batch)
    error = ""
    if not queue:
        error = "No printer queue is set for this print room (settings: cups_queue)."
    elif shutil.which("lp") is None:
        error = "The lp command (CUPS) is not installed on this server."
    else:
        try:
            with local_copy(batch.pdf_sha256, suffix=".pdf") as path:
                done = subprocess.run(["lp", "-d", str(queue), str(path)],
                                      capture_output=True, text=True, timeout=60, check=False)
        except BlobError as exc:
            error = f"The batch PDF could not be read from the file store ({exc})."
        except (OSError, subprocess.TimeoutExpired) as exc:
            error = f"The printer queue {queue} did not answer ({exc})."
        else:
            if done.returncode != 0:
                error = (f"The printer queue {queue} refused the batch: "
                         f"{(done.stderr or done.stdout).strip()[:300]}")
    PrintBatch.objects.filter(pk=batch.pk).update(print_error=error)
    return error
